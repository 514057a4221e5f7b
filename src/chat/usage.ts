import type { ModelPrice } from "../config";
import { thinks } from "../dashscope/thinking";
import type { Usage } from "../dashscope/types";
import { ApiError } from "../errors/api-error";
import { newId } from "../store/ids";
import type { MessageUsage, TokenUsage } from "../store/types";
import { type LedgerEntry, type QuotaState, secondsUntilNextUtcDay } from "../store/usage";
import { costUsd } from "./pricing";
import { estimateTextTokens, replyReserve } from "./tokens";

/**
 * Usage and quota arithmetic, one home for every upstream call (conversation turns and
 * `/v1/chat/completions`): how many tokens a call holds against the user's daily budget while
 * it runs, what a refused call gets, and the usage it is settled with afterwards. The SQL that
 * reserves and settles lives in `store/usage.ts`.
 */

/**
 * Tokens a call reserves against the user's daily budget until its usage is settled: the
 * prompt estimate plus, for each of its `n` choices, the reply's uncapped worst case
 * ({@link replyReserve}: the answer, and the reasoning whenever `model` thinks).
 */
export function reservationTokens(
  promptTokens: number,
  p: { max_tokens?: number; thinking_budget?: number; enable_thinking?: boolean; n?: number },
  model: string,
  defaultReplyTokens: number,
): number {
  const thinking = thinks(model, p.enable_thinking);
  const reply = replyReserve(p, thinking, defaultReplyTokens, Number.POSITIVE_INFINITY);
  return promptTokens + (reply.answer + reply.reasoning) * (p.n ?? 1);
}

/**
 * The error of a call the daily quota refused: 403 `forbidden` for a blocked user (`refused`
 * says what they may not do), else 429 `quota_exceeded` with `Retry-After` in seconds until
 * the budget resets at 00:00 UTC.
 */
export function quotaRefusal(state: QuotaState, now: number, refused: string): ApiError {
  if (state.blocked_at !== null) return new ApiError(403, "forbidden", `This account may not ${refused}.`);
  return new ApiError(
    429,
    "quota_exceeded",
    `The daily token budget (${state.budget}) would be exceeded; it resets at 00:00 UTC.`,
    undefined,
    { "retry-after": String(secondsUntilNextUtcDay(now)) },
  );
}

/** The usage DashScope reported for a call (flattened by {@link usageSummary}), marked as not estimated. */
export function reportedUsage(reported: TokenUsage): MessageUsage {
  return { ...reported, estimated: false };
}

/**
 * The usage of a call DashScope reported none for (stopped or cut off before its usage chunk),
 * marked as an estimate: nothing counts as cached.
 */
export function estimatedUsage(
  promptTokens: number,
  completionTokens: number,
  reasoningTokens = 0,
): MessageUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    cached_tokens: 0,
    reasoning_tokens: reasoningTokens,
    estimated: true,
  };
}

/** {@link estimatedUsage} of an answer from the prompt estimate and what was received of it. */
export function estimateAnswerUsage(
  promptTokens: number,
  content: string | undefined,
  reasoning: string | undefined,
  toolCalls: unknown[] | null,
): MessageUsage {
  const reasoningTokens = estimateTextTokens(reasoning ?? "");
  const completion =
    estimateTextTokens(content ?? "") +
    reasoningTokens +
    (toolCalls ? estimateTextTokens(JSON.stringify(toolCalls)) : 0);
  return estimatedUsage(promptTokens, completion, reasoningTokens);
}

/**
 * The ledger fields of a call's settlement: the UTC `day` and the `model` it counts under, its
 * cost priced for `pricedModel` (the model DashScope reported, when it differs), nothing for a
 * call without usage, and a fresh settle id.
 */
export function ledgerEntry(
  e: { day: string; model: string; usage: TokenUsage | null; pricedModel?: string | null },
  prices: Record<string, ModelPrice>,
): LedgerEntry {
  return {
    day: e.day,
    model: e.model,
    settleId: newId(),
    costUsd: e.usage ? costUsd(e.pricedModel ?? e.model, e.usage, prices) : 0,
  };
}

/**
 * Flattens DashScope's usage into the five counters we bill and report; absent detail objects
 * count as zero. Returns null when the stream carried no usage (no
 * `stream_options.include_usage`, or interrupted).
 */
export function usageSummary(u: Usage | null): TokenUsage | null {
  if (u === null || u === undefined) return null;
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.total_tokens,
    cached_tokens: detailCount(u.prompt_tokens_details, "cached_tokens"),
    reasoning_tokens: detailCount(u.completion_tokens_details, "reasoning_tokens"),
  };
}

function detailCount(details: Record<string, unknown> | null | undefined, key: string): number {
  const value = details?.[key];
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}
