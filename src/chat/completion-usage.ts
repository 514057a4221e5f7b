import type { Config } from "../config";
import type { ChatCompletionRequest } from "../dashscope/schema";
import { newId } from "../store/ids";
import type { D1Queries } from "../store/sessions";
import type { CacheUsage, TokenUsage } from "../store/types";
import { releaseQuery, reserveQuota, settleUsage, utcDay } from "../store/usage";
import { type CompletionFiles, withFileParts } from "./completion-files";
import { imageRuleFor } from "./models";
import { estimateRequestTokens } from "./tokens";
import {
  estimatedUsage,
  type GrantedReply,
  grantedReply,
  ledgerEntry,
  quotaRefusal,
  replyBounds,
  reportedUsage,
  reservationAsk,
} from "./usage";

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
  /** Tokens reserved: the call's whole worst case, or what remained of the budget. */
  granted: number;
  /** What the call may generate, and the upstream parameters that tell DashScope so. */
  reply: GrantedReply;
}

/**
 * Reserves the call's worst case: the prompt estimate of the whole request (messages, tool
 * definitions, response schema) plus every choice's reply bounds (`replyBounds`: `max_tokens`
 * or the model's maximum output, and the chain of thought whenever the model thinks); when the
 * budget holds less, what remains of it, if that leaves each choice `MIN_REPLY_TOKENS`. Throws
 * the 429 `quota_exceeded` (403 for a blocked user) of a refused reservation.
 */
export async function reserveCompletion(
  db: D1Queries,
  config: Config,
  userId: string,
  request: ChatCompletionRequest,
  now = Date.now(),
  files: CompletionFiles | null = null,
): Promise<CompletionReservation> {
  // Images by their pixel size and the model's rule: an upload's stored size, a data URL's header.
  const promptEstimate = estimateRequestTokens(
    { ...request, messages: withFileParts(request.messages, files?.parts ?? []) },
    {
      imageRule: imageRuleFor(request.model),
      files: new Map(
        [...(files?.files.values() ?? [])].map((f) => [
          f.id,
          f.width !== null && f.height !== null ? { width: f.width, height: f.height } : null,
        ]),
      ),
    },
  );
  const id = newId();
  const day = utcDay(now);
  const bounds = replyBounds(request, request.model, config);
  const ask = reservationAsk(promptEstimate, bounds, request.n ?? 1);
  const { granted, state } = await reserveQuota(
    db,
    id,
    {
      userId,
      day,
      tokens: ask.wanted,
      minimumTokens: ask.minimum,
      now,
      defaultBudget: config.dailyTokenBudget,
    },
    now + config.quotaReservationTtlMs,
  );
  if (granted === null) throw quotaRefusal(state, now, "make requests to the model");
  const reply = grantedReply(granted, promptEstimate, request, request.model, bounds, config);
  return { id, userId, day, promptEstimate, granted, reply };
}

/** How a call ended, for its usage record. */
export interface CompletionOutcome {
  /** The model as the upstream reported it (a dated snapshot may differ from the requested name). */
  model: string;
  /** DashScope's usage; `null` when the call ended before the usage chunk. */
  usage: TokenUsage | null;
  /** The explicit-cache part of that usage (`cacheUsage` in chat/usage.ts), for the cost. */
  cache?: CacheUsage;
  status: "completed" | "failed" | "cancelled";
  /** Estimated tokens of what was received, for a call without usage. */
  outputTokens: number;
}

/** Settles a call's usage once (or only releases its reservation when it never reached DashScope). */
export async function settleCompletion(
  db: D1Queries,
  config: Config,
  reservation: CompletionReservation,
  outcome: CompletionOutcome | null,
  now = Date.now(),
): Promise<void> {
  if (!outcome) {
    await releaseQuery(db, reservation.id).statement.run();
    return;
  }
  const usage = outcome.usage
    ? reportedUsage(outcome.usage)
    : estimatedUsage(reservation.promptEstimate, outcome.outputTokens);
  await settleUsage(db, {
    id: reservation.id,
    userId: reservation.userId,
    conversationId: null,
    status: outcome.status,
    usage,
    ...ledgerEntry(
      { day: reservation.day, model: outcome.model, usage, cache: outcome.cache },
      config.modelPrices,
    ),
    now,
  });
}
