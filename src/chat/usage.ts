import type { Config, ModelPrice } from "../config";
import { takesThinkingBudget, thinks } from "../dashscope/thinking";
import type { Usage } from "../dashscope/types";
import { ApiError } from "../errors/api-error";
import { newId } from "../store/ids";
import type { CacheUsage, MessageUsage, TokenUsage } from "../store/types";
import { type LedgerEntry, type QuotaState, secondsUntilNextUtcDay } from "../store/usage";
import { knownMaxOutputTokens, maxReasoningTokensFor } from "./models";
import { costUsd } from "./pricing";
import { estimateTextTokens } from "./tokens";

/**
 * Usage and quota arithmetic, one home for every upstream call (conversation turns and
 * `/v1/chat/completions`): how many tokens a call holds against the user's daily budget while
 * it runs, what a refused call gets, and the usage it is settled with afterwards. The SQL that
 * reserves and settles lives in `store/usage.ts`.
 */

/**
 * The fewest reply tokens per choice a call is started with when the budget cannot hold its
 * whole worst case. 256 tokens hold a short answer (about 1,000 Latin characters) or a tool
 * call with its arguments; a smaller grant would start answers only to cut them almost at once,
 * at the price of their whole prompt. It is also the most a day's settled usage can exceed the
 * budget by per call beyond the prompt estimate's error, so it stays small.
 */
export const MIN_REPLY_TOKENS = 256;

/** How much a call may generate per choice, in tokens, by what bounds it. */
export interface ReplyBounds {
  /** The answer: the call's `max_tokens`, else the model's maximum output. */
  answer: number;
  /** The chain of thought (0 when the model does not think): `thinking_budget`, else the model's maximum. */
  reasoning: number;
}

/** The generation parameters that bound a reply. */
export interface ReplyParameters {
  max_tokens?: number;
  thinking_budget?: number;
  enable_thinking?: boolean;
  n?: number;
}

/**
 * The reply bounds of one choice of a call to `model`: what DashScope lets it generate given
 * the call's parameters. Without `max_tokens` the answer may reach the model's maximum output
 * (DashScope's default, PROTOCOL.md §6; `MODEL_MAX_OUTPUT_TOKENS`, else
 * `DEFAULT_MAX_OUTPUT_TOKENS`); when the model thinks without a `thinking_budget`, the reasoning
 * may reach its maximum chain of thought (`max_tokens` does not bound it, §2.6;
 * `MODEL_MAX_REASONING_TOKENS`, else `DEFAULT_MAX_REASONING_TOKENS`).
 */
export function replyBounds(
  p: ReplyParameters,
  model: string,
  config: Pick<
    Config,
    | "defaultMaxOutputTokens"
    | "modelMaxOutputTokens"
    | "defaultMaxReasoningTokens"
    | "modelMaxReasoningTokens"
  >,
): ReplyBounds {
  const answer =
    p.max_tokens ?? knownMaxOutputTokens(model, config.modelMaxOutputTokens) ?? config.defaultMaxOutputTokens;
  const reasoning = thinks(model, p.enable_thinking)
    ? (p.thinking_budget ??
      maxReasoningTokensFor(model, config.defaultMaxReasoningTokens, config.modelMaxReasoningTokens))
    : 0;
  return { answer, reasoning };
}

/** What a call asks of the daily budget ({@link reservationQuery}'s `tokens` and `minimumTokens`). */
export interface ReservationAsk {
  /** The prompt plus every choice's whole reply bounds. */
  wanted: number;
  /** The prompt plus {@link MIN_REPLY_TOKENS} per choice (never above `wanted`). */
  minimum: number;
}

/**
 * What a call with prompt estimate `promptTokens` and `n` choices bounded by `bounds` asks to
 * reserve: `wanted = prompt + (answer + reasoning) × n`, accepting at least
 * `minimum = prompt + MIN_REPLY_TOKENS × n`.
 */
export function reservationAsk(promptTokens: number, bounds: ReplyBounds, n = 1): ReservationAsk {
  const wanted = promptTokens + (bounds.answer + bounds.reasoning) * n;
  return { wanted, minimum: Math.min(wanted, promptTokens + MIN_REPLY_TOKENS * n) };
}

/** The reply limits of a granted call: what it may generate, and what to tell DashScope of it. */
export interface GrantedReply {
  /** Reply tokens of all choices together that the grant holds (granted − prompt estimate). */
  roomTokens: number;
  /**
   * `max_tokens` to send upstream: the caller's, lowered to the grant's share of each choice;
   * absent when the call set none and the grant holds the model's whole maximum output, or
   * when the model's maximum output is unknown (a value above it would be a 400).
   */
  maxTokens?: number;
  /**
   * `thinking_budget` to send upstream when the model thinks, takes one
   * ({@link takesThinkingBudget}), the call set none and the grant holds less than the model's
   * whole chain of thought; the caller's own otherwise (absent when it set none).
   */
  thinkingBudget?: number;
  /**
   * Whether DashScope itself keeps the call within its grant: the grant holds the whole reply
   * bounds, or every bound it lowers is sent upstream. When not, only counting what streams in
   * enforces it (`ReplyLimit`), so a call that would not be streamed must be streamed upstream.
   */
  enforcedUpstream: boolean;
}

/**
 * The limits of a call granted `granted` tokens for a prompt estimated at `promptTokens`:
 * each choice's share of the room is split between answer and reasoning in proportion to
 * their bounds, and each upstream parameter is lowered to its share (never raised). Whatever
 * DashScope is not told is enforced while streaming (`ReplyLimit`).
 */
export function grantedReply(
  granted: number,
  promptTokens: number,
  p: ReplyParameters,
  model: string,
  bounds: ReplyBounds,
  config: Pick<Config, "modelMaxOutputTokens">,
): GrantedReply {
  const n = p.n ?? 1;
  const roomTokens = Math.max(0, granted - promptTokens);
  const perChoice = Math.floor(roomTokens / n);
  const whole = bounds.answer + bounds.reasoning;
  const reasoningShare =
    bounds.reasoning > 0 ? Math.max(1, Math.floor((perChoice * bounds.reasoning) / whole)) : 0;
  const answerShare = Math.max(1, Math.min(bounds.answer, perChoice - reasoningShare));
  const result: GrantedReply = { roomTokens, enforcedUpstream: true };
  if (p.max_tokens !== undefined) result.maxTokens = Math.min(p.max_tokens, answerShare);
  else if (answerShare < bounds.answer && knownMaxOutputTokens(model, config.modelMaxOutputTokens) !== null)
    result.maxTokens = answerShare;
  if (bounds.reasoning === 0) {
    // Not thinking: a `thinking_budget` bounds nothing and goes upstream as the caller sent it.
    if (p.thinking_budget !== undefined) result.thinkingBudget = p.thinking_budget;
  } else if (p.thinking_budget !== undefined) {
    result.thinkingBudget = Math.min(p.thinking_budget, reasoningShare);
  } else if (reasoningShare < bounds.reasoning && takesThinkingBudget(model)) {
    result.thinkingBudget = reasoningShare;
  }
  if (roomTokens < whole * n) {
    result.enforcedUpstream =
      result.maxTokens !== undefined && (bounds.reasoning === 0 || result.thinkingBudget !== undefined);
  }
  return result;
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
  e: {
    day: string;
    model: string;
    usage: TokenUsage | null;
    pricedModel?: string | null;
    /** The call's explicit-cache report ({@link cacheUsage}); absent: none. */
    cache?: CacheUsage | undefined;
  },
  prices: Record<string, ModelPrice>,
): LedgerEntry {
  return {
    day: e.day,
    model: e.model,
    settleId: newId(),
    costUsd: e.usage ? costUsd(e.pricedModel ?? e.model, e.usage, prices, e.cache) : 0,
  };
}

/**
 * What DashScope's usage says of the explicit context cache (PROTOCOL.md §8): tokens written to
 * it (`prompt_tokens_details.cache_creation_input_tokens`) and whether the call used it
 * (`cache_type: "ephemeral"`, sent with explicit creations; a call that created tokens used it
 * too). Absent details: no creation, implicit hits.
 */
export function cacheUsage(u: Usage | null): CacheUsage {
  const details = u?.prompt_tokens_details;
  const created = detailCount(details, "cache_creation_input_tokens");
  return { creation_tokens: created, explicit: details?.cache_type === "ephemeral" || created > 0 };
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
