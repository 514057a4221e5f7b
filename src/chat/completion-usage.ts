import type { Config } from "../config";
import type { UsageSummary } from "../dashscope/accumulator";
import type { ChatCompletionRequest } from "../dashscope/schema";
import { thinks } from "../dashscope/thinking";
import { ApiError } from "../errors/api-error";
import { newId } from "../store/ids";
import { releaseStatement, reserveQuota, secondsUntilNextUtcDay, settleUsage, utcDay } from "../store/usage";
import { costUsd } from "./pricing";
import { estimateRequestTokens, replyReserve } from "./tokens";

/**
 * The ledger and quota of `/v1/chat/completions`, exactly as for a conversation turn: the
 * worst case is reserved before the upstream call (one D1 round trip), and the real usage
 * (or, when DashScope reported none, an estimate marked as such) is settled once afterwards.
 */
export interface CompletionReservation {
  /** The usage record's id (one per call). */
  id: string;
  userId: string;
  day: string;
  promptEstimate: number;
}

/**
 * Reserves the call's worst case: the prompt estimate of the whole request (messages, tool
 * definitions, response schema) plus the reply budget of every choice, reasoning included
 * whenever the model thinks.
 */
export async function reserveCompletion(
  db: D1Database,
  config: Config,
  userId: string,
  request: ChatCompletionRequest,
  now = Date.now(),
): Promise<CompletionReservation> {
  const promptEstimate = estimateRequestTokens(request);
  const budget = replyReserve(
    request,
    thinks(request.model, request.enable_thinking),
    config.defaultReplyTokens,
    Number.POSITIVE_INFINITY,
  );
  const reply = (budget.answer + budget.reasoning) * (request.n ?? 1);
  const reservation = { id: newId(), userId, day: utcDay(now), promptEstimate };
  const { reserved, state } = await reserveQuota(
    db,
    reservation.id,
    {
      userId,
      day: reservation.day,
      tokens: promptEstimate + reply,
      now,
      defaultBudget: config.dailyTokenBudget,
    },
    now + config.quotaReservationTtlMs,
  );
  if (reserved) return reservation;
  if (state.blocked_at !== null)
    throw new ApiError(403, "forbidden", "This account may not make requests to the model.");
  throw new ApiError(
    429,
    "quota_exceeded",
    `The daily token budget (${state.budget}) would be exceeded; it resets at 00:00 UTC.`,
    undefined,
    { "retry-after": String(secondsUntilNextUtcDay(now)) },
  );
}

/** How a call ended, for its usage record. */
export interface CompletionOutcome {
  /** The model as the upstream reported it (a dated snapshot may differ from the requested name). */
  model: string;
  /** DashScope's usage; `null` when the call ended before the usage chunk. */
  usage: UsageSummary | null;
  status: "completed" | "failed" | "cancelled";
  /** Estimated tokens of what was received, for a call without usage. */
  outputTokens: number;
}

/** Settles a call's usage once (or only releases its reservation when it never reached DashScope). */
export async function settleCompletion(
  db: D1Database,
  config: Config,
  reservation: CompletionReservation,
  outcome: CompletionOutcome | null,
  now = Date.now(),
): Promise<void> {
  if (!outcome) {
    await releaseStatement(db, reservation.id).run();
    return;
  }
  const usage = outcome.usage
    ? { ...outcome.usage, estimated: false }
    : {
        prompt_tokens: reservation.promptEstimate,
        completion_tokens: outcome.outputTokens,
        total_tokens: reservation.promptEstimate + outcome.outputTokens,
        cached_tokens: 0,
        reasoning_tokens: 0,
        estimated: true,
      };
  await settleUsage(db, {
    id: reservation.id,
    userId: reservation.userId,
    conversationId: null,
    model: outcome.model,
    status: outcome.status,
    day: reservation.day,
    usage,
    costUsd: costUsd(outcome.model, usage, config.modelPrices),
    settleId: newId(),
    now,
  });
}
