import type { ToolCall } from "../dashscope/types";
import { estimateMessageTokens } from "./tokens";

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

export interface AssembleInput {
  systemPrompt: string | null;
  /** Stored history, newest first (as read by the turn's first batch). */
  history: HistoryMessage[];
  /** The turn's new message (a user message, or a tool result answering the last tool call). */
  newMessage: UpstreamMessage;
  /** The model's context window in tokens. */
  contextTokens: number;
  /** Tokens reserved for the reply. */
  replyTokens: number;
}

export interface AssembledMessages {
  messages: UpstreamMessage[];
  /** Ids of the stored messages that made it into `messages`, oldest first. */
  includedIds: string[];
  /** Stored messages left out (too old for the budget, or unusable). */
  omitted: number;
  /** Estimated prompt tokens of `messages`. */
  estimatedTokens: number;
}

/** Why a turn cannot be assembled at all. */
export class ContextOverflowError extends Error {}

/**
 * Builds the messages array of a turn: the system prompt, then as much recent history as fits
 * the model's context window minus the reply budget (newest kept), then the new message.
 *
 * History is taken in units, never split: an assistant message with `tool_calls` travels with
 * the tool results answering it. A tool call whose results are missing is never sent as a
 * dangling half (DashScope rejects it): its text is kept without the calls, or it is dropped.
 * Failed answers and answers without content are skipped; interrupted or cancelled answers
 * keep the part the user saw.
 */
export function assembleMessages(input: AssembleInput): AssembledMessages {
  const system: UpstreamMessage[] = input.systemPrompt
    ? [{ role: "system", content: input.systemPrompt }]
    : [];
  let used = input.newMessage ? estimateMessageTokens(input.newMessage) : 0;
  for (const m of system) used += estimateMessageTokens(m);
  const budget = input.contextTokens - input.replyTokens;
  if (used > budget) {
    throw new ContextOverflowError(
      `The message needs about ${used} tokens, more than the ${budget} the model's context leaves after the reply budget.`,
    );
  }

  const units = toUnits(input.history, input.newMessage);
  const chosen: Unit[] = [];
  let omitted = input.history.length - units.reduce((n, u) => n + u.ids.length, 0);
  let full = false;
  for (const unit of units) {
    if (!full && used + unit.tokens <= budget) {
      chosen.push(unit);
      used += unit.tokens;
    } else {
      if (unit.required) {
        throw new ContextOverflowError(
          "The tool call this result answers no longer fits the model's context.",
        );
      }
      full = true;
      omitted += unit.ids.length;
    }
  }

  const messages: UpstreamMessage[] = [...system];
  const includedIds: string[] = [];
  for (let i = chosen.length - 1; i >= 0; i--) {
    messages.push(...chosen[i]!.messages);
    includedIds.push(...chosen[i]!.ids);
  }
  messages.push(input.newMessage);
  return { messages, includedIds, omitted, estimatedTokens: used };
}

interface Unit {
  messages: UpstreamMessage[];
  ids: string[];
  tokens: number;
  /** The tool call answered by the new message: it must be sent. */
  required: boolean;
}

/** Groups history (newest first) into sendable units, newest first. */
function toUnits(history: HistoryMessage[], newMessage: UpstreamMessage): Unit[] {
  const units: Unit[] = [];
  let pendingTools: HistoryMessage[] = [];
  // A tool result in the new message answers the newest assistant tool call.
  const answeringNow = newMessage.role === "tool" ? newMessage.tool_call_id : null;
  let first = true;

  for (const m of history) {
    if (m.role === "tool") {
      pendingTools.unshift(m);
      continue;
    }
    if (m.role === "assistant") {
      const unit = assistantUnit(m, pendingTools, first ? answeringNow : null);
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
      units.push({ messages: [msg], ids: [m.id], tokens: estimateMessageTokens(msg), required: false });
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

function assistantUnit(m: HistoryMessage, tools: HistoryMessage[], answeringNow: string | null): Unit | null {
  const usable = m.status === "completed" || m.status === "interrupted" || m.status === "cancelled";
  if (!usable) return null;
  const text = typeof m.content === "string" ? m.content : m.content == null ? "" : m.content;
  const answerable = answerableToolCalls(m);
  const calls = answerable.length ? answerable : null;

  if (calls) {
    const answered = new Set(tools.map((t) => t.tool_call_id));
    if (answeringNow) answered.add(answeringNow);
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
        tokens: msgs.reduce((n, x) => n + estimateMessageTokens(x), 0),
        required: answeringNow !== null && calls.some((c) => c.id === answeringNow),
      };
    }
  }
  if (text === "" || (Array.isArray(text) && text.length === 0)) return null;
  const msg: UpstreamMessage = { role: "assistant", content: text };
  return { messages: [msg], ids: [m.id], tokens: estimateMessageTokens(msg), required: false };
}
