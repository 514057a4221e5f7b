import { createPrng } from "../determinism.mjs";
import { intOption } from "../directives.mjs";
import { wantsAudio } from "../validate.mjs";
import { audioPieces } from "./audio.mjs";
import { digestPieces, isDigestModel } from "./digest.mjs";
import { echoPieces } from "./echo.mjs";
import { jsonObjectPieces } from "./json-object.mjs";
import { logprobEntry } from "./logprobs.mjs";
import { fragmentPattern, planToolCalls, toolCallFragments } from "./tool-calls.mjs";
import { wordTokens } from "./words.mjs";

export const DEFAULT_CONTENT_TOKENS = 12;
export const DEFAULT_REASONING_TOKENS = 8;
export const DEFAULT_AUDIO_DELTAS = 4;
/** What `lone_surrogate` puts into content and tool arguments (high half of 😀) and reasoning (a low half). */
export const LONE_HIGH_SURROGATE = "\ud83d";
export const LONE_LOW_SURROGATE = "\ude00";

/**
 * With the `lone_surrogate` directive, `token` goes in as the second piece: an upstream whose
 * tokenizer emits half a surrogate pair, sent as the escape `"\ud83d"` that `JSON.stringify` writes.
 * @param {string[]} pieces
 * @param {Record<string, unknown>} directive
 * @param {string} token
 * @returns {string[]}
 */
function withLoneSurrogate(pieces, directive, token) {
  if (directive.lone_surrogate !== true) return pieces;
  return [...pieces.slice(0, 1), ` ${token}`, ...pieces.slice(1)];
}

/**
 * Tool arguments with a lone surrogate inside a string value (`lone_surrogate` directive).
 * @param {import("./tool-calls.mjs").ToolCall[] | null} calls
 * @param {Record<string, unknown>} directive
 * @returns {import("./tool-calls.mjs").ToolCall[] | null}
 */
function argumentsWithLoneSurrogate(calls, directive) {
  if (!calls || directive.lone_surrogate !== true) return calls;
  const note = `"note": "${LONE_HIGH_SURROGATE}"`;
  return calls.map((call) => ({
    ...call,
    arguments: call.arguments === "{}" ? `{${note}}` : `${call.arguments.slice(0, -1)}, ${note}}`,
  }));
}

/**
 * One SSE chunk's worth of a single choice.
 * `kind` drives token accounting and fault injection; `bare` drops `finish_reason`/`logprobs` from the choice,
 * as in the captured first tool-call continuation.
 * @typedef {{ kind: "role" | "reasoning" | "content" | "tool" | "audio" | "finish", delta: Record<string, unknown>,
 *   logprobs?: unknown, finishReason?: string, bare?: boolean }} Step
 */

/**
 * Everything the stand-in will say for one choice, usable by both the streaming and non-streaming paths.
 * @typedef {{ index: number, steps: Step[], finishReason: string, content: string, reasoning: string,
 *   toolCalls: import("./tool-calls.mjs").ToolCall[] | null, logprobs: unknown[] | null,
 *   counts: { reasoning: number, content: number, tool: number, audio: number } }} ChoicePlan
 */

/**
 * Builds the per-choice answer for a validated request.
 * @param {{ body: any, directive: Record<string, unknown>, bodyHash: string, thinking: boolean, ids: { chatUuid: string, created: number } }} ctx
 * @returns {ChoicePlan[]}
 */
export function planChoices(ctx) {
  const { body, directive, bodyHash } = ctx;
  const n = Number.isInteger(body.n) ? body.n : 1;
  const toolPrng = createPrng(bodyHash, 1000);
  const toolCalls = argumentsWithLoneSurrogate(planToolCalls(body, directive, bodyHash, toolPrng), directive);
  const choices = [];
  for (let index = 0; index < (toolCalls ? 1 : n); index++) {
    choices.push(planChoice(ctx, index, toolCalls));
  }
  return choices;
}

/**
 * @param {{ body: any, directive: Record<string, unknown>, bodyHash: string, thinking: boolean, ids: { chatUuid: string, created: number } }} ctx
 * @param {number} index
 * @param {import("./tool-calls.mjs").ToolCall[] | null} toolCalls
 * @returns {ChoicePlan}
 */
function planChoice(ctx, index, toolCalls) {
  const { body, directive, bodyHash, thinking, ids } = ctx;
  const prng = createPrng(bodyHash, index);
  const audio = wantsAudio(body);
  /** @type {Step[]} */
  const steps = [];
  const counts = { reasoning: 0, content: 0, tool: 0, audio: 0 };

  let reasoning = "";
  if (thinking) {
    steps.push({ kind: "role", delta: { content: null, role: "assistant", reasoning_content: "" } });
    // `thinking_budget` caps the chain of thought; the answer follows as usual (PROTOCOL.md §2.6).
    const budget =
      Number.isInteger(body.thinking_budget) && body.thinking_budget >= 0 ? body.thinking_budget : null;
    const wanted = intOption(directive, "reasoning", DEFAULT_REASONING_TOKENS);
    const reasoningTokens = wordTokens(prng, budget === null ? wanted : Math.min(wanted, budget));
    for (const token of withLoneSurrogate(reasoningTokens, directive, LONE_LOW_SURROGATE)) {
      steps.push({ kind: "reasoning", delta: { content: null, reasoning_content: token } });
      reasoning += token;
      counts.reasoning++;
    }
  }

  const maxTokens = body.max_tokens;
  const tokenLimit = Number.isInteger(maxTokens) && maxTokens >= 0 ? maxTokens : null;

  if (toolCalls) {
    const pattern = fragmentPattern(directive.fragments);
    /** @type {{ callIndex: number, fragmentIndex: number, fragment: Record<string, any> }[]} */
    let fragments = [];
    toolCalls.forEach((call, callIndex) => {
      toolCallFragments(call, callIndex, pattern).forEach((fragment, fragmentIndex) => {
        fragments.push({ callIndex, fragmentIndex, fragment });
      });
    });
    // Each fragment is one token: `max_tokens` cuts the calls off mid-arguments, as it cuts text.
    let finishReason = "tool_calls";
    let calls = toolCalls;
    if (tokenLimit !== null && fragments.length > tokenLimit) {
      fragments = fragments.slice(0, tokenLimit);
      finishReason = "length";
      calls = truncatedCalls(toolCalls, fragments);
    }
    let first = !thinking;
    for (const { callIndex, fragmentIndex, fragment } of fragments) {
      // The first chunk of a non-thinking tool answer carries the role, as captured on qwen-plus.
      const delta = first
        ? { content: null, tool_calls: [fragment], role: "assistant" }
        : { tool_calls: [fragment] };
      steps.push({ kind: "tool", delta, bare: pattern === 1 && fragmentIndex === 1 && callIndex === 0 });
      first = false;
      counts.tool++;
    }
    steps.push({ kind: "finish", delta: {}, finishReason });
    return {
      index,
      steps,
      finishReason,
      content: "",
      reasoning,
      toolCalls: calls,
      logprobs: null,
      counts,
    };
  }

  // Omni streams start straight with text (T9); plain answers open with an empty-content role chunk.
  if (!thinking && !audio) steps.push({ kind: "role", delta: { content: "", role: "assistant" } });

  let pieces = withLoneSurrogate(contentPieces(body, directive, prng), directive, LONE_HIGH_SURROGATE);
  let finishReason = "stop";
  if (tokenLimit !== null && pieces.length > tokenLimit) {
    pieces = pieces.slice(0, tokenLimit);
    finishReason = "length";
  }
  const wantLogprobs = body.logprobs === true;
  const topLogprobs = Number.isInteger(body.top_logprobs) ? body.top_logprobs : 0;
  /** @type {unknown[]} */
  const logprobs = [];
  let content = "";
  for (const token of pieces) {
    const entry = wantLogprobs ? logprobEntry(prng, token, topLogprobs) : null;
    if (entry) logprobs.push(entry);
    steps.push({
      kind: "content",
      delta: thinking ? { content: token, reasoning_content: null } : { content: token },
      logprobs: entry ? { content: [entry] } : null,
    });
    content += token;
    counts.content++;
  }

  if (audio) {
    const audioCount = intOption(directive, "audio", DEFAULT_AUDIO_DELTAS);
    for (const data of audioPieces(prng, audioCount)) {
      steps.push({
        kind: "audio",
        delta: { audio: { data, expires_at: ids.created + 86_400, id: `audio_${ids.chatUuid}` } },
      });
      counts.audio++;
    }
  }

  steps.push({
    kind: "finish",
    delta: thinking ? { content: "", reasoning_content: null } : { content: "" },
    finishReason,
  });
  return {
    index,
    steps,
    finishReason,
    content,
    reasoning,
    toolCalls: null,
    logprobs: wantLogprobs ? logprobs : null,
    counts,
  };
}

/**
 * The calls as far as `kept` fragments carry them (what a client assembles from a cut-off stream): each call's
 * arguments are its kept fragments' text; calls with no kept fragment are gone.
 * @param {import("./tool-calls.mjs").ToolCall[]} calls
 * @param {{ callIndex: number, fragment: Record<string, any> }[]} kept
 * @returns {import("./tool-calls.mjs").ToolCall[] | null}
 */
function truncatedCalls(calls, kept) {
  /** @type {Map<number, string>} */
  const args = new Map();
  for (const { callIndex, fragment } of kept) {
    const piece = fragment.function?.arguments;
    args.set(callIndex, (args.get(callIndex) ?? "") + (typeof piece === "string" ? piece : ""));
  }
  const out = [...args].map(([callIndex, text]) => ({ ...calls[callIndex], arguments: text }));
  return out.length > 0 ? /** @type {import("./tool-calls.mjs").ToolCall[]} */ (out) : null;
}

/**
 * Content tokens: a digest model's digest beats `echo`, which beats `json_object`, which beats plain words.
 * @param {any} body
 * @param {Record<string, unknown>} directive
 * @param {ReturnType<typeof createPrng>} prng
 * @returns {string[]}
 */
function contentPieces(body, directive, prng) {
  if (isDigestModel(body.model)) return digestPieces(body.messages);
  if (directive.echo === true) return echoPieces(body.messages);
  if (body.response_format?.type === "json_object") return jsonObjectPieces(prng);
  return wordTokens(prng, intOption(directive, "tokens", DEFAULT_CONTENT_TOKENS));
}

/**
 * The `usage` object for a set of planned choices.
 * @param {ChoicePlan[]} choices
 * @param {number} promptTokens
 * @param {{ thinking: boolean, audio: boolean }} flags
 * @returns {{ prompt_tokens: number, completion_tokens: number, total_tokens: number } & Record<string, unknown>}
 */
export function usageFor(choices, promptTokens, { thinking, audio }) {
  const sum = (/** @type {keyof ChoicePlan["counts"]} */ k) =>
    choices.reduce((acc, c) => acc + c.counts[k], 0);
  const reasoning = sum("reasoning");
  const text = sum("content") + sum("tool");
  const audioTokens = sum("audio");
  const completion = reasoning + text + audioTokens;
  /** @type {{ prompt_tokens: number, completion_tokens: number, total_tokens: number } & Record<string, unknown>} */
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
  };
  if (audio) {
    usage.completion_tokens_details = { audio_tokens: audioTokens, text_tokens: text };
    usage.prompt_tokens_details = { text_tokens: promptTokens };
    return usage;
  }
  if (thinking) usage.completion_tokens_details = { reasoning_tokens: reasoning };
  usage.prompt_tokens_details = { cached_tokens: 0 };
  return usage;
}
