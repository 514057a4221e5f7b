import type { Config, RateLimitTier } from "../config";
import type { ChatCompletionRequestBody } from "../dashscope/client";
import type { TextPart } from "../dashscope/schema/content";
import type { GenerationParameters } from "../dashscope/schema/parameters";
import { parseGenerationParameters } from "../dashscope/schema/parse";
import { findRuleIssues, type RuleInput } from "../dashscope/schema/rules";
import { thinks } from "../dashscope/thinking";
import type { ToolCall } from "../dashscope/types";
import { invalidRequest } from "../errors/api-error";
import type { FileRef } from "../store/file-lookup";
import type { HistoryRow, PromptSource } from "../store/turns";
import { completeToolCalls } from "../text/tool-call-arguments";
import { explicitCachePays, markPrefixes } from "./cache-markers";
import type { TurnContent } from "./file-parts";
import {
  type AssembledMessages,
  answerableToolCalls,
  assembleMessages,
  ContextOverflowError,
  type HistoryMessage,
  type LayoutSummary,
  type SummaryRequest,
  type UpstreamMessage,
} from "./history";
import { cannotSeeImages, hasImage } from "./images";
import { contextTokensFor, imageRuleFor, maxInputTokensFor } from "./models";
import { summaryMessage } from "./summary-message";
import { estimateMessageTokens, estimateParameterTokens, replyReserve } from "./tokens";

/**
 * How far below the fold (`HISTORY_FOLD`'s first share) a turn asks for the running summary the
 * fold will carry: at 80% of the budget with 90/50. A turn adds at most about 7% of a 16k window
 * (a 2,000-character paste and a 450-token answer, the token-economy script's longest), so the
 * summary is asked for at least one turn before the fold, and made in the background meanwhile.
 */
const SUMMARY_AHEAD = 0.1;

/** A tool's output answering one call of the conversation's latest answer. */
export interface ToolResult {
  toolCallId: string;
  content: string | TextPart[];
}

/** What a turn sends: a user message, or the results answering the latest answer's tool calls. */
export type TurnMessage =
  | {
      role: "user";
      /** As stored: file parts stay references; a data URL image becomes one when the turn stores it. */
      content: TurnContent;
      /** The caller's files the content's file parts name, each once (checked by `checkTurnImages`). */
      files: FileRef[];
    }
  | {
      role: "tool";
      /** As the client sent them: at least one, each call at most once, in any order. */
      toolResults: ToolResult[];
      /** The field they came in, named by errors: `tool_call_id` (one result) or `tool_results`. */
      toolResultsField: "tool_call_id" | "tool_results";
    }
  | {
      /**
       * A new answer to the message `parentId` already answered (a sibling of that answer): no
       * new message; the model sees the path to `parentId`.
       */
      role: "regenerate";
    };

/** A validated chat turn, as the route hands it to the conversation's owner. */
export type TurnInput = TurnMessage & {
  userId: string;
  conversationId: string;
  requestId: string;
  /** Retry-safe sends: the same id with the same body is the same turn. */
  clientMessageId: string | null;
  /** Fingerprint of the send (see `request-hash.ts`). */
  requestHash: string | null;
  model: string | null;
  /**
   * The message the new one follows: `undefined` for the active path's leaf; another message of
   * the conversation starts a new branch (an edit; the model sees the path to it); `null` starts
   * the tree anew (an edit of the first message). A user message only.
   */
  parentId?: string | null;
  /** This turn's parameters; they override the conversation's defaults. */
  parameters: GenerationParameters;
  stream: boolean;
  /** Stop the answer when its last listener disconnects (off by default: a disconnect is not a stop). */
  cancelOnDisconnect: boolean;
  /** The user's rate-limit tier: the turn counts against it (null: not limited). */
  rateLimitTier: RateLimitTier | null;
};

export interface PreparedTurn {
  request: ChatCompletionRequestBody;
  /** The model the answer is asked of: the turn's, else the conversation's, else the default. */
  model: string;
  /** The request's parameters: the conversation's defaults overridden by the turn's. */
  parameters: GenerationParameters;
  /** A tool turn's results in the order of the calls they answer (empty for a user message). */
  toolResults: ToolResult[];
  /** Estimated prompt tokens of the assembled request. */
  estimatedPromptTokens: number;
  historyIncluded: number;
  historyOmitted: number;
  /**
   * The block of history sent (with `HISTORY_FOLD` on): its first stored message, the message
   * that ends its stable prefix (`anchor`, where the explicit marker goes), and whether this turn
   * folded (then the caller records the new block). Null with the layout off.
   */
  block: {
    start: string | null;
    anchor: string | null;
    folded: boolean;
    /** The running summary the prompt carries (the message it covers through), or null. */
    summary: string | null;
    /** The summary to make after this turn (null: none needed). */
    summarize: SummaryRequest | null;
  } | null;
  /** How many `cache_control` markers the request carries (0 unless the model takes them and they pay). */
  cacheMarkers: number;
}

/**
 * The blocks recorded for a conversation: first message id → the id that ends its stable prefix
 * and the running summary its prompts carry (the message it covers through, or null).
 */
export type BlockStarts = ReadonlyMap<string, { anchor: string; summary: string | null }>;

/** The running summaries made for a conversation: the message each covers through → its text. */
export type SummaryTexts = ReadonlyMap<string, string>;

/**
 * Builds the DashScope request of a turn from the conversation's prompt state (`source`, as the
 * conversation's object holds it, before anything is stored): the conversation's defaults
 * overridden by the turn's parameters, the system prompt, the history that fits, the new
 * message. Throws a 400 `ApiError` when the result breaks a rule that only the stored context
 * could reveal; nothing has been written then.
 */
export function prepareTurn(
  source: PromptSource,
  input: TurnInput,
  config: Config,
  files: ReadonlyMap<string, FileRef> = new Map(),
  blocks: BlockStarts = new Map(),
  summaries: SummaryTexts = new Map(),
): PreparedTurn {
  const defaults = storedDefaults(source.conversation.params_json, source.conversation.id);
  const parameters: GenerationParameters = { ...defaults, ...input.parameters };
  const model = input.model ?? source.conversation.model ?? config.defaultModel;
  const imageRule = imageRuleFor(model);
  const contextTokens = contextTokensFor(model, config.defaultContextTokens, config.modelContextTokens);
  const reply = replyReserve(
    parameters,
    thinks(model, parameters.enable_thinking),
    config.defaultReplyTokens,
    contextTokens,
  );
  const toolResults =
    input.role === "tool" ? inCallOrder(source.history, input.toolResults, input.toolResultsField) : [];
  // A regenerated answer's question is the path's newest message (a tool turn's: its results).
  const asked = input.role === "regenerate" ? askedOf(source.history) : 0;
  const history = source.history.slice(asked);
  const newMessages: UpstreamMessage[] =
    input.role === "tool"
      ? toolResults.map((r) => ({ role: "tool", content: r.content, tool_call_id: r.toolCallId }))
      : input.role === "user"
        ? [{ role: "user", content: input.content }]
        : source.history.slice(0, asked).reverse().map(historyMessage).map(upstreamMessage);
  const prompt = estimateParameterTokens(parameters);
  // The path's current block: the newest recorded block start on it (each branch has its own).
  const start = config.historyFold ? (history.find((m) => blocks.has(m.id))?.id ?? null) : null;
  // Summaries are per path: the newest one naming a message of this path.
  const summarizing = config.historyFold !== null && config.summaryModel !== null;
  const layoutSummary = (through: string | null | undefined): LayoutSummary | null => {
    const text = through == null ? undefined : summaries.get(through);
    if (!summarizing || through == null || text === undefined) return null;
    const message = summaryMessage(text);
    return { through, message, tokens: estimateMessageTokens(message) };
  };
  const blockSummary = layoutSummary(start === null ? null : blocks.get(start)?.summary);
  const readySummary = layoutSummary(history.find((m) => summaries.has(m.id))?.id);
  let assembled: AssembledMessages;
  try {
    assembled = assembleMessages({
      systemPrompt: source.conversation.system_prompt ?? (config.defaultSystemPrompt || null),
      history: history.map(historyMessage),
      newMessages,
      parameterParts: [
        { label: "tool definitions", param: "parameters.tools", tokens: prompt.tools },
        { label: "response schema", param: "parameters.response_format", tokens: prompt.responseFormat },
      ],
      replyParts: [
        { label: "reply budget", param: "parameters.max_tokens", tokens: reply.answer },
        { label: "reasoning budget", param: "parameters.thinking_budget", tokens: reply.reasoning },
      ],
      contextTokens,
      model,
      inputLimit: inputLimit(model, parameters.max_input_tokens, config),
      media: {
        highResolutionImages: parameters.vl_high_resolution_images === true,
        imageRule,
        files: new Map([...files.values()].map((f) => [f.id, dimensionsOf(f)])),
      },
      ...(config.historyFold
        ? {
            layout: {
              foldAt: config.historyFold.at,
              foldTo: config.historyFold.to,
              minVerbatimTurns: config.minVerbatimTurns,
              start,
              blockSummary,
              readySummary,
              summaryAt: summarizing ? config.historyFold.at - SUMMARY_AHEAD : null,
            },
          }
        : {}),
    });
  } catch (err) {
    if (err instanceof ContextOverflowError) {
      const patch = `PATCH /v1/conversations/${source.conversation.id}`;
      const key = err.param.startsWith("parameters.") ? err.param.slice("parameters.".length) : null;
      const hint =
        err.param === "system_prompt"
          ? ` It is this conversation's system prompt: change it with ${patch}.`
          : key !== null && key in defaults && !(key in input.parameters)
            ? ` It is a default of this conversation: override it in this turn's parameters or change it with ${patch}.`
            : "";
      throw invalidRequest(err.message + hint, err.param);
    }
    throw err;
  }

  if (imageRule === null && assembled.messages.some((m) => hasImage(m.content))) throw cannotSeeImages(model);
  const laid = layoutOf(assembled, newMessages.length, blocks, explicitCachePays(model, config));
  const request = { model, messages: laid.messages, ...parameters } as ChatCompletionRequestBody;
  const issue = findRuleIssues({ ...(request as unknown as RuleInput), stream: true })[0];
  if (issue) {
    const [head] = issue.path;
    const param = head === "messages" ? "content" : `parameters.${issue.path.join(".")}`;
    throw invalidRequest(`"${issue.path.join(".")}" ${issue.message}.`, param);
  }
  return {
    request,
    model,
    parameters,
    toolResults,
    estimatedPromptTokens: assembled.estimatedTokens,
    historyIncluded: assembled.includedIds.length,
    historyOmitted: assembled.omitted,
    block: laid.block,
    cacheMarkers: laid.markers,
  };
}

/**
 * The block sent and its explicit-cache markers. The block's anchor is the newest history message
 * of the turn that opened it (a fold): the end of a prefix every later prompt of the block repeats
 * byte for byte, so its marker stays put until the next fold. A second marker ends the history of
 * this turn: the next turn repeats that prefix too and hits it through DashScope's lookback (the
 * ≤ 20 blocks before a marker, PROTOCOL.md §8), so each turn creates (at 125%) only what it added.
 *
 * Why two markers where issue 17 asks for one that does not move: a marked request gets no
 * implicit hit at all (explicit and implicit caching are exclusive per request, §8), so with the
 * anchor alone everything a block added after its fold is billed at the full input price on every
 * turn. Measured with `npm run bench -- --only token-economy` (2026-11-30, BENCHMARKS.md): the
 * anchor alone bills $0.348 of input for the 200 turns, 35.2% of drop oldest's (target ≤ 35%:
 * missed), 1.31 M cached tokens; anchor and newest bill $0.197, 19.9%, 1.74 M cached. The anchor
 * still does not move within a block; the second marker moves by one exchange a turn.
 */
function layoutOf(
  assembled: AssembledMessages,
  newCount: number,
  blocks: BlockStarts,
  mark: boolean,
): { messages: UpstreamMessage[]; block: PreparedTurn["block"]; markers: number } {
  if (!assembled.block) return { messages: assembled.messages, block: null, markers: 0 };
  const { start, folded, summary, summarize } = assembled.block;
  const ids = assembled.includedIds;
  const newest = ids.at(-1) ?? null;
  const anchor = folded ? newest : start === null ? null : (blocks.get(start)?.anchor ?? null);
  const block = { start, anchor, folded, summary, summarize };
  if (!mark) return { messages: assembled.messages, block, markers: 0 };
  const first = assembled.messages.length - newCount - ids.length;
  const at = (id: string | null) => (id === null || !ids.includes(id) ? [] : [first + ids.indexOf(id)]);
  const marked = markPrefixes(assembled.messages, [...new Set([...at(anchor), ...at(newest)])]);
  return { messages: marked.messages, block, markers: marked.marked.length };
}

/**
 * How many of the path's newest messages a regenerated answer answers: the user message, or the
 * tool results after the answer that called the tools. 400 when the path ends otherwise.
 */
function askedOf(newestFirst: HistoryRow[]): number {
  const newest = newestFirst[0];
  if (newest?.role === "user") return 1;
  let results = 0;
  while (newestFirst[results]?.role === "tool") results++;
  if (results === 0)
    throw invalidRequest("Only an answer to a user message or to tool results can be regenerated.");
  return results;
}

/** A finished history message as the upstream request carries it. */
function upstreamMessage(m: HistoryMessage): UpstreamMessage {
  if (m.role === "tool") return { role: "tool", content: m.content, tool_call_id: m.tool_call_id ?? "" };
  if (m.role === "assistant")
    return m.tool_calls
      ? { role: "assistant", content: m.content, tool_calls: m.tool_calls }
      : { role: "assistant", content: m.content };
  return { role: m.role, content: m.content };
}

/** The lower of the model's input limit and the request's `max_input_tokens`, or null when neither is set. */
function inputLimit(
  model: string,
  requested: number | undefined,
  config: Config,
): { tokens: number; label: string } | null {
  const own = maxInputTokensFor(model, config.modelMaxInputTokens);
  if (requested !== undefined && (own === null || requested < own))
    return { tokens: requested, label: '"max_input_tokens"' };
  return own === null ? null : { tokens: own, label: "the model's input limit" };
}

/**
 * A tool turn's results in the order of the calls they answer. They must answer every call of
 * the conversation's latest answer that the history sends, each once (the route has refused a
 * call named twice), or the turn is a 400 naming the field: `tool_call_id` or
 * `tool_results.N.tool_call_id` for a result that answers no such call, `tool_results` for calls
 * left unanswered (DashScope needs a result for every call of an assistant message it is sent).
 */
function inCallOrder(
  history: HistoryRow[],
  results: ToolResult[],
  field: "tool_call_id" | "tool_results",
): ToolResult[] {
  const latest = history.find((m) => m.role === "assistant");
  const calls = latest ? answerableToolCalls(historyMessage(latest)) : [];
  const position = new Map(calls.map((c, i) => [c.id, i]));
  results.forEach((r, i) => {
    if (position.has(r.toolCallId)) return;
    const param = field === "tool_call_id" ? field : `tool_results.${i}.tool_call_id`;
    const known = calls.length
      ? `its calls are ${calls.map((c) => `"${c.id}"`).join(", ")}`
      : "it made no tool call that can be answered";
    throw invalidRequest(
      `${param} "${r.toolCallId}" does not match a tool call of the conversation's latest answer (${known}).`,
      param,
    );
  });
  const answered = new Set(results.map((r) => r.toolCallId));
  const unanswered = calls.filter((c) => !answered.has(c.id)).map((c) => `"${c.id}"`);
  if (unanswered.length) {
    throw invalidRequest(
      `The conversation's latest answer made ${calls.length} tool calls; answer them all in one turn with ` +
        `tool_results. Unanswered: ${unanswered.join(", ")}.`,
      "tool_results",
    );
  }
  return [...results].sort((a, b) => position.get(a.toolCallId)! - position.get(b.toolCallId)!);
}

/**
 * A history row as assembly takes it. Tool calls are normalized on read, as answers are when
 * they are stored: rows stored before that rule may hold `""` arguments (now `"{}"`) or a call
 * cut off mid-arguments (now left out), which DashScope would reject in every later request.
 */
function historyMessage(row: HistoryRow): HistoryMessage {
  const calls =
    row.tool_calls_json === null ? [] : completeToolCalls(JSON.parse(row.tool_calls_json) as ToolCall[]);
  return {
    id: row.id,
    role: row.role,
    content: row.content_json === null ? null : JSON.parse(row.content_json),
    tool_calls: calls.length ? calls : null,
    tool_call_id: row.tool_call_id,
    status: row.status,
  };
}

/**
 * The conversation's default parameters, validated as a turn's own are. Defaults stored before
 * today's limits (nesting, size, caps) can break a rule; the turn is then a 400 that says how to
 * replace them, never an upstream failure or a crash on every turn.
 */
function storedDefaults(json: string, conversationId: string): GenerationParameters {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return {};
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return {};
  const parsed = parseGenerationParameters(value, "parameters");
  if (parsed.ok) return parsed.value;
  throw invalidRequest(
    `This conversation's default parameters can no longer be used: ${parsed.error.message} Replace them with PATCH /v1/conversations/${conversationId}.`,
    parsed.error.param || "parameters",
  );
}

/** An upload's pixel size, when its row has one. */
function dimensionsOf(file: FileRef) {
  return file.width !== null && file.height !== null ? { width: file.width, height: file.height } : null;
}
