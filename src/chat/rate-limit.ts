import type { RateLimitTier } from "../config";
import { ApiError } from "../errors/api-error";
import { logError } from "../log/log";

/*
 * Requests per minute per user, with the Workers Rate Limiting binding: one binding per tier
 * (`RATE_LIMIT_STANDARD`, `_RELAXED`, `_STRICT`), keyed by user id. The binding is approximate
 * by design: counters are kept per Cloudflare location and synchronised eventually, so a user
 * spread over locations can exceed the limit somewhat. It tells neither the remaining count nor
 * when the window resets, so `x-ratelimit-remaining-requests` is sent only on a 429 (where it
 * is 0), and the reset and `Retry-After` are the binding's period, an upper bound.
 */

/** The period configured on every tier's binding (`simple.period`), in seconds. */
export const RATE_LIMIT_PERIOD_SECONDS = 60;
/** {@link RATE_LIMIT_PERIOD_SECONDS} in OpenAI's duration style (`6m0s`, `1s`). */
const RESET_HEADER_VALUE = "1m0s";

const TIER_BINDINGS = {
  standard: "RATE_LIMIT_STANDARD",
  relaxed: "RATE_LIMIT_RELAXED",
  strict: "RATE_LIMIT_STRICT",
} as const satisfies Record<RateLimitTier, keyof Env>;

const warnedMissing = new Set<RateLimitTier>();

/**
 * Counts one request of `userId` against their tier's binding; true when it is within the
 * limit. Without the tier's binding, or if the binding fails, the request is allowed (the error
 * is logged): the limiter protects, it must not take turns down.
 */
export async function withinRateLimit(env: Env, tier: RateLimitTier, userId: string): Promise<boolean> {
  const limiter = env[TIER_BINDINGS[tier]];
  if (!limiter) {
    if (!warnedMissing.has(tier)) {
      warnedMissing.add(tier);
      logError("rate_limit.binding_missing", {
        message: "rate-limit binding missing; turns of this tier are not limited",
        binding: TIER_BINDINGS[tier],
      });
    }
    return true;
  }
  try {
    return (await limiter.limit({ key: userId })).success;
  } catch (err) {
    logError("rate_limit.binding_failed", {
      message: "rate-limit binding failed; letting the request through",
      binding: TIER_BINDINGS[tier],
      error: err,
    });
    return true;
  }
}

/** The headers every limited response carries, in OpenAI's style. */
export function rateLimitHeaders(limitPerMinute: number): Record<string, string> {
  return {
    "x-ratelimit-limit-requests": String(limitPerMinute),
    "x-ratelimit-reset-requests": RESET_HEADER_VALUE,
  };
}

/** 429 `rate_limited` with `Retry-After`. */
export function rateLimited(limitPerMinute: number): ApiError {
  return new ApiError(
    429,
    "rate_limited",
    `Too many requests: at most ${limitPerMinute} a minute. Try again in a minute.`,
    undefined,
    {
      ...rateLimitHeaders(limitPerMinute),
      "x-ratelimit-remaining-requests": "0",
      "retry-after": String(RATE_LIMIT_PERIOD_SECONDS),
    },
  );
}
