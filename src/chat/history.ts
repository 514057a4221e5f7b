import type { ToolCall } from "../dashscope/types";
import { withSummary } from "./summary-message";
import { estimateMessageTokens, type MediaOptions, REQUEST_OVERHEAD_TOKENS } from "./tokens";

/** A stored message as history assembly sees it. */
export interface HistoryMessage {
  id: string;
  role: "system" | "user" | "assistant" | "tool";
  content: unknown;
  /** Complete calls with JSON object arguments only (see `completeToolCalls`). */
  tool_calls: ToolCall[] | null;
  tool_call_id: string | null;
  status: string;
}

/** A message of the upstream request's `messages` array. */
export type UpstreamMessage =
  | { role: "system"; content: unknown }
  | { role: "user"; content: unknown }
  | { role: "assistant"; content: unknown; tool_calls?: ToolCall[] }
  | { role: "tool"; content: unknown; tool_call_id: string };

/** A part of the request that takes room in the model's window, named for the error that it overflows. */
export interface PromptPart {
  /** What it is, in words ("tool definitions"). */
  label: string;
  /** The request field that sets it ("parameters.tools"); `null` when the caller cannot change it. */
  param: string | null;
  tokens: number;
}

export interface AssembleInput {
  systemPrompt: string | null;
  /** Stored history, newest first (as read by the turn's first batch). */
  history: HistoryMessage[];
  /**
   * The turn's new messages, oldest first: a user message, or the tool results answering the
   * calls of the newest answer in `history` (one `tool` message per call).
   */
  newMessages: UpstreamMessage[];
  /** The prompt the request's parameters add besides the messages (tool definitions, a response schema). */
  parameterParts: PromptPart[];
  /** The room reserved for the reply (the answer, the reasoning). */
  replyParts: PromptPart[];
  /** The model's context window in tokens. */
  contextTokens: number;
  /** The model's name, for the error message. */
  model?: string;
  /** A lower cap on the prompt alone (the model's maximum input, `max_input_tokens`), if any. */
  inputLimit?: { tokens: number; label: string } | null;
  /** How media parts of the messages are counted. */
  media?: MediaOptions;
  /**
   * Block layout (`chat/fold-layout.ts`): history is dropped in blocks from a stored start rather
   * than one message per turn. Without it, the oldest messages that do not fit are dropped.
   */
  layout?: FoldLayout;
}

/** How history is dropped in blocks (see {@link assembleMessages}). */
export interface FoldLayout {
  /** Fold when the prompt with the whole current block would exceed this share of the budget (0.9). */
  foldAt: number;
  /** A fold keeps the newest history that fits in this share of the budget (0.5). */
  foldTo: number;
  /** Newest user turns kept by a fold even beyond `foldTo`, as long as they fit the budget. */
  minVerbatimTurns: number;
  /** The first stored message of the current block (ids of the path), or null before any fold. */
  start: string | null;
  /** The running summary the current block carries (sent inside the system message), or null. */
  blockSummary?: LayoutSummary | null;
  /**
   * The newest summary made on this path (it may be the block's own), or null: a fold carries it
   * (and keeps the turns after what it covers), a block whose summary lagged behind takes it on.
   */
  readySummary?: LayoutSummary | null;
  /**
   * Prompt share from which a turn asks for the summary the coming fold needs (0.8 with 90/50),
   * or null when summaries are off.
   */
  summaryAt?: number | null;
}

/** A running summary as the layout places it: one message, covering the path through `through`. */
export interface LayoutSummary {
  /** The newest message the summary covers (with all of the path before it). */
  through: string;
  message: UpstreamMessage;
  tokens: number;
}

/**
 * What a turn asks summarised after it: the path's messages after `previous` (the summary it
 * extends, null for the first) through `through`, oldest first, whole tool exchanges.
 */
export interface SummaryRequest {
  through: string;
  previous: string | null;
  messages: UpstreamMessage[];
}

export interface AssembledMessages {
  messages: UpstreamMessage[];
  /** Ids of the stored messages that made it into `messages`, oldest first. */
  includedIds: string[];
  /** Stored messages left out (too old for the budget, or unusable). */
  omitted: number;
  /** Estimated prompt tokens of the whole request: `messages`, the parameter parts and the reply priming. */
  estimatedTokens: number;
  /**
   * With a layout: the first stored message of the block sent (null when the whole history is
   * sent), whether this turn moved it or changed its summary (a fold), the summary sent (its
   * `through`, null for none) and the summary to make after the turn (null for none).
   */
  block?: {
    start: string | null;
    folded: boolean;
    summary: string | null;
    summarize: SummaryRequest | null;
  };
}

/** Why a turn cannot be assembled at all; `param` names the request field to change. */
export class ContextOverflowError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/**
 * Builds the messages array of a turn: the system prompt, then as much recent history as fits,
 * then the new message. What fits is the model's context window minus everything else the
 * request takes there: the reply's room, the system prompt, the parameters read as prompt
 * (tool definitions, a response schema), the new message and the template's overhead; and at
 * most `inputLimit` for the prompt. History is what gives way: however long the conversation,
 * a turn fails only when this turn's own parts do not fit, and the error says which to shrink.
 *
 * History is taken in units, never split: an assistant message with `tool_calls` travels with
 * the tool results answering it. A tool call whose results are missing is never sent as a
 * dangling half (DashScope rejects it): its text is kept without the calls, or it is dropped.
 * Failed answers and answers without content are skipped; interrupted or cancelled answers
 * keep the part the user saw. Throws {@link ContextOverflowError} when this turn's parts (with
 * the answer whose tool calls the new tool results answer) do not fit.
 */
export function assembleMessages(input: AssembleInput): AssembledMessages {
  const media = input.media ?? {};
  const system: UpstreamMessage[] = input.systemPrompt
    ? [{ role: "system", content: input.systemPrompt }]
    : [];
  const fixed: PromptPart[] = [
    ...input.parameterParts,
    ...system.map((m) => ({
      label: "system prompt",
      param: "system_prompt",
      tokens: estimateMessageTokens(m),
    })),
    newMessagesPart(input.newMessages, media),
    { label: "message template", param: null, tokens: REQUEST_OVERHEAD_TOKENS },
  ];
  const units = toUnits(input.history, input.newMessages, media);
  // Tool results travel with the calls they answer: that answer is part of this turn, not history.
  const required = units.filter((u) => u.required);
  const answered =
    input.newMessages.length > 1
      ? "the tool calls these results answer"
      : "the tool call this result answers";
  for (const unit of required) fixed.push({ label: answered, param: null, tokens: unit.tokens });
  const budget = promptBudget(input);
  let used = sum(fixed);
  if (used > budget) throw overflow(input, fixed);

  const chosen: Unit[] = [...required];
  let omitted = input.history.length - units.reduce((n, u) => n + u.ids.length, 0);
  const optional = units.filter((u) => !u.required);
  const layout = input.layout;
  let block: AssembledMessages["block"];
  let take: number;
  let summary: LayoutSummary | null = null;
  if (layout) {
    const laid = blockOf(optional, layout, used, budget);
    take = laid.take;
    summary = laid.summary;
    if (summary) used += summary.tokens;
    block = {
      start: laid.start,
      folded: laid.folded,
      summary: summary?.through ?? null,
      summarize: laid.summarize,
    };
  } else {
    take = 0;
    let room = used;
    while (take < optional.length && room + optional[take]!.tokens <= budget)
      room += optional[take++]!.tokens;
  }
  for (const [i, unit] of optional.entries()) {
    if (i < take) {
      chosen.push(unit);
      used += unit.tokens;
    } else omitted += unit.ids.length;
  }
  // Newest first, as the units came.
  chosen.sort((a, b) => units.indexOf(a) - units.indexOf(b));

  const messages: UpstreamMessage[] = summary ? withSummary(system, summary.message) : [...system];
  const includedIds: string[] = [];
  for (let i = chosen.length - 1; i >= 0; i--) {
    messages.push(...chosen[i]!.messages);
    includedIds.push(...chosen[i]!.ids);
  }
  messages.push(...input.newMessages);
  return { messages, includedIds, omitted, estimatedTokens: used, ...(block ? { block } : {}) };
}

/**
 * The history units (newest first, none required) a block layout sends, the block's start and
 * the running summary it carries. The current block (from `layout.start`, or the whole history
 * before any fold) is sent whole, after its summary, while the prompt stays within `foldAt` of
 * the budget; beyond, the turn folds. A fold with a summary ready keeps the units after what the
 * summary covers when they fit within `foldAt` (the summary was asked for at `summaryAt` so that
 * they do); otherwise it keeps the newest units that fit in `foldTo` of the budget and carries
 * whatever summary is ready (or none): what it drops uncovered waits for the next summary. Past
 * that, up to `minVerbatimTurns` user turns are kept as long as they fit the budget at all, and
 * the oldest kept message starts the next block. Between folds every prompt is the previous one
 * plus the new exchange: a byte-identical prefix, which is what the context cache bills at a
 * fraction (PROTOCOL.md §8). A block whose summary lags behind the block's start takes on the
 * newer one when it is ready (a fold that keeps the start). Units are whole tool exchanges, so a
 * fold never splits one.
 */
function blockOf(
  optional: Unit[],
  layout: FoldLayout,
  used: number,
  budget: number,
): {
  take: number;
  start: string | null;
  folded: boolean;
  summary: LayoutSummary | null;
  summarize: SummaryRequest | null;
} {
  const at = (id: string | null | undefined) =>
    id == null ? -1 : optional.findIndex((u) => u.ids.includes(id));
  const tokens = (from: number, to: number) => optional.slice(from, to).reduce((n, u) => n + u.tokens, 0);
  const found = at(layout.start);
  const current = found >= 0 ? found + 1 : optional.length;
  const carried = found >= 0 ? (layout.blockSummary ?? null) : null;
  const ready = layout.readySummary ?? null;
  const readyAt = at(ready?.through);
  // Older than every loaded unit when not among them.
  const position = (s: LayoutSummary | null) =>
    s === null ? Infinity : at(s.through) < 0 ? optional.length : at(s.through);
  const ask = (take: number, summary: LayoutSummary | null) =>
    summaryRequest(optional, layout, budget, used + (summary?.tokens ?? 0), take, summary, ready, at);

  // The block as it stands, or with the summary that caught up with its start.
  const catchUp = ready !== null && readyAt >= current && position(ready) < position(carried);
  const summary = catchUp ? ready : carried;
  if (used + (summary?.tokens ?? 0) + tokens(0, current) <= layout.foldAt * budget) {
    return {
      take: current,
      start: found >= 0 ? layout.start : null,
      folded: catchUp,
      summary,
      summarize: ask(current, summary),
    };
  }

  let take = 0;
  let room = used;
  let turns = 0;
  const fits = (limit: number) => take < optional.length && room + optional[take]!.tokens <= limit;
  const add = () => {
    const unit = optional[take++]!;
    room += unit.tokens;
    if (unit.messages[0]?.role === "user") turns++;
  };
  // A fold carries the newest summary there is; when what follows it fits, it keeps just that.
  const carry = ready;
  room += carry?.tokens ?? 0;
  if (carry !== null && readyAt >= 0 && room + tokens(0, readyAt) <= layout.foldAt * budget)
    while (take < readyAt) add();
  else while (fits(layout.foldTo * budget)) add();
  while (turns < layout.minVerbatimTurns && fits(budget)) add();
  return {
    take,
    start: take > 0 ? optional[take - 1]!.ids[0]! : null,
    folded: true,
    summary: carry,
    summarize: ask(take, carry),
  };
}

/**
 * The summary a turn asks for after it, if any. Past `summaryAt` of the budget, unless one made
 * ahead for this block is ready: one covering what a fold would drop to keep the newest units
 * within `foldTo − (foldAt − summaryAt)` (40% with 90/50 and 80), so that when the prompt reaches
 * `foldAt` the units after it fit about `foldTo`.
 * Below it, when the block's summary does not reach the block's start (a fold that found none
 * ready): one covering everything before the start. Null when the newest summary already covers
 * that much, or when summaries are off.
 */
function summaryRequest(
  optional: Unit[],
  layout: FoldLayout,
  budget: number,
  used: number,
  take: number,
  sent: LayoutSummary | null,
  ready: LayoutSummary | null,
  at: (id: string | null | undefined) => number,
): SummaryRequest | null {
  if (layout.summaryAt == null) return null;
  const prompt = used + optional.slice(0, take).reduce((n, u) => n + u.tokens, 0);
  let newest: number;
  const readyAt = at(ready?.through);
  if (prompt > layout.summaryAt * budget) {
    // One made ahead for this block's fold is there: the fold keeps what follows it.
    if (ready !== null && readyAt >= 0 && readyAt < take) return null;
    const keep = (layout.foldTo - (layout.foldAt - layout.summaryAt)) * budget;
    let k = 0;
    let room = used;
    let turns = 0;
    while (k < take && room + optional[k]!.tokens <= keep) {
      room += optional[k]!.tokens;
      if (optional[k++]!.messages[0]?.role === "user") turns++;
    }
    while (turns < layout.minVerbatimTurns && k < take && room + optional[k]!.tokens <= budget) {
      room += optional[k]!.tokens;
      if (optional[k++]!.messages[0]?.role === "user") turns++;
    }
    newest = k;
  } else {
    const reach = sent === null ? -1 : at(sent.through);
    // A summary older than every loaded unit leaves a gap too.
    if (take >= optional.length || (sent !== null && reach >= 0 && reach <= take)) return null;
    newest = take;
  }
  if (newest >= optional.length) return null;
  // The newest summary covers it already (or more).
  if (ready !== null && readyAt >= 0 && readyAt <= newest) return null;
  const end = ready !== null && readyAt > newest ? readyAt : optional.length;
  const units = optional.slice(newest, end).reverse();
  return {
    through: optional[newest]!.ids.at(-1)!,
    previous: ready?.through ?? null,
    messages: units.flatMap((u) => u.messages),
  };
}

/** The turn's new messages as one part of the prompt; `param` is the field that carried them. */
function newMessagesPart(messages: UpstreamMessage[], media: MediaOptions): PromptPart {
  const tokens = messages.reduce((n, m) => n + estimateMessageTokens(m, media), 0);
  if (messages.some((m) => m.role === "tool")) {
    return messages.length > 1
      ? { label: "tool results", param: "tool_results", tokens }
      : { label: "tool result", param: "content", tokens };
  }
  return { label: "new message", param: "content", tokens };
}

const sum = (parts: readonly PromptPart[]) => parts.reduce((n, p) => n + p.tokens, 0);

/** The most prompt tokens the turn may send: the window minus the reply's room, or the input limit if lower. */
function promptBudget(input: AssembleInput): number {
  const window = input.contextTokens - sum(input.replyParts);
  return input.inputLimit ? Math.min(window, input.inputLimit.tokens) : window;
}

/**
 * The 400 of a turn whose own parts overflow: every part with its size, the limit they exceed,
 * and as `param` the largest part the caller can shrink.
 */
function overflow(input: AssembleInput, prompt: PromptPart[]): ContextOverflowError {
  const window = input.contextTokens - sum(input.replyParts);
  // Below the window minus the reply, the input limit binds and the reply's room is beside the point.
  const cap = input.inputLimit && input.inputLimit.tokens < window ? input.inputLimit : null;
  const parts = (cap ? prompt : [...prompt, ...input.replyParts]).filter((p) => p.tokens > 0);
  const limit = cap
    ? `${cap.label} of ${fmt(cap.tokens)} input tokens`
    : `${input.model ?? "the model"}'s context window of ${fmt(input.contextTokens)} tokens`;
  let largest: { param: string; tokens: number } | null = null;
  for (const p of parts) {
    if (p.param !== null && (largest === null || p.tokens > largest.tokens))
      largest = { param: p.param, tokens: p.tokens };
  }
  const list = [...parts]
    .sort((a, b) => b.tokens - a.tokens)
    .map((p) => `${p.label} ${fmt(p.tokens)}${p.param ? ` (${p.param})` : ""}`)
    .join(", ");
  const change = largest ? ` Reduce ${largest.param}, or use a model with a larger window.` : "";
  return new ContextOverflowError(
    `This turn needs about ${fmt(sum(parts))} tokens before any older history, more than ${limit}: ${list}.${change}`,
    largest?.param ?? "content",
  );
}

const fmt = (n: number) => n.toLocaleString("en-US");

interface Unit {
  messages: UpstreamMessage[];
  ids: string[];
  tokens: number;
  /** The answer whose tool calls the new messages answer: it must be sent. */
  required: boolean;
}

/** Groups history (newest first) into sendable units, newest first. */
function toUnits(history: HistoryMessage[], newMessages: UpstreamMessage[], media: MediaOptions): Unit[] {
  const units: Unit[] = [];
  let pendingTools: HistoryMessage[] = [];
  // Tool results among the new messages answer the calls of the newest answer.
  const answeringNow = new Set(newMessages.flatMap((m) => (m.role === "tool" ? [m.tool_call_id] : [])));
  let first = true;

  for (const m of history) {
    if (m.role === "tool") {
      pendingTools.unshift(m);
      continue;
    }
    if (m.role === "assistant") {
      const unit = assistantUnit(m, pendingTools, first ? answeringNow : null, media);
      pendingTools = [];
      first = false;
      if (unit) units.push(unit);
      continue;
    }
    // Tool results with no assistant call before them cannot be sent.
    pendingTools = [];
    first = false;
    if (m.role === "user" || m.role === "system") {
      const msg: UpstreamMessage = { role: m.role, content: m.content };
      units.push({
        messages: [msg],
        ids: [m.id],
        tokens: estimateMessageTokens(msg, media),
        required: false,
      });
    }
  }
  return units;
}

/**
 * The tool calls of an answer that the history sends, and so the only ones a tool result can
 * answer: those of a completed answer. A stopped, interrupted or failed answer keeps its text in
 * the history but not its calls (the model never finished them).
 */
export function answerableToolCalls(m: Pick<HistoryMessage, "status" | "tool_calls">): ToolCall[] {
  return m.status === "completed" && m.tool_calls ? m.tool_calls : [];
}

function assistantUnit(
  m: HistoryMessage,
  tools: HistoryMessage[],
  answeringNow: ReadonlySet<string> | null,
  media: MediaOptions,
): Unit | null {
  const usable = m.status === "completed" || m.status === "interrupted" || m.status === "cancelled";
  if (!usable) return null;
  const text = typeof m.content === "string" ? m.content : m.content == null ? "" : m.content;
  const answerable = answerableToolCalls(m);
  const calls = answerable.length ? answerable : null;

  if (calls) {
    const answered = new Set([...tools.map((t) => t.tool_call_id), ...(answeringNow ?? [])]);
    if (calls.every((c) => answered.has(c.id))) {
      const assistant: UpstreamMessage = {
        role: "assistant",
        content: text === "" ? "" : text,
        tool_calls: calls,
      };
      const results = tools
        .filter((t) => calls.some((c) => c.id === t.tool_call_id))
        .map((t): UpstreamMessage => ({ role: "tool", content: t.content, tool_call_id: t.tool_call_id! }));
      const msgs = [assistant, ...results];
      return {
        messages: msgs,
        ids: [m.id, ...tools.filter((t) => calls.some((c) => c.id === t.tool_call_id)).map((t) => t.id)],
        tokens: msgs.reduce((n, x) => n + estimateMessageTokens(x, media), 0),
        required: calls.some((c) => answeringNow?.has(c.id) === true),
      };
    }
  }
  if (text === "" || (Array.isArray(text) && text.length === 0)) return null;
  const msg: UpstreamMessage = { role: "assistant", content: text };
  return { messages: [msg], ids: [m.id], tokens: estimateMessageTokens(msg, media), required: false };
}
