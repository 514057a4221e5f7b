import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import {
  RATE_LIMIT_PERIOD_SECONDS,
  rateLimited,
  rateLimitHeaders,
  withinRateLimit,
} from "../chat/rate-limit";
import { ApiError } from "../errors/api-error";
import { resolveRateLimitTier } from "../store/rate-tier";

/**
 * Users this isolate saw over their limit, until when: their requests are refused here at once,
 * so a flood costs no further work (a turn's limit is checked inside its Durable Object, see
 * {@link rateLimitTurns}).
 */
const limitedUntil = new Map<string, number>();
/** Bounds the memory an isolate spends on this. */
const LIMITED_MAX_USERS = 10_000;

function rememberLimited(userId: string, now = Date.now()): void {
  if (limitedUntil.size >= LIMITED_MAX_USERS) limitedUntil.delete(limitedUntil.keys().next().value!);
  limitedUntil.set(userId, now + RATE_LIMIT_PERIOD_SECONDS * 1000);
}

function knownLimited(userId: string, now = Date.now()): boolean {
  const until = limitedUntil.get(userId);
  if (until === undefined) return false;
  if (until > now) return true;
  limitedUntil.delete(userId);
  return false;
}

/**
 * Limits the authenticated user's POSTs on the route it is registered for (turns and
 * completions, which cost money) to their tier's requests per minute: over it, 429
 * `rate_limited` with `Retry-After`. Responses carry `x-ratelimit-limit-requests` and
 * `x-ratelimit-reset-requests`. Register it after the auth middleware.
 *
 * With `deferToTurn`, the count is not taken here: the route hands the tier to the turn, whose
 * Durable Object counts the request while its D1 batch is in flight (the two waits overlap
 * instead of adding up) and takes the stored turn back if the user is over the limit.
 */
export function rateLimitTurns(options: { deferToTurn?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.method !== "POST") return next();
    const userId = c.get("userId");
    const tier = await resolveRateLimitTier(c.get("userD1").db, c.env.CACHE, userId, (p) =>
      c.executionCtx.waitUntil(p),
    );
    const limit = c.get("config").rateLimitPerMinute[tier];
    if (knownLimited(userId)) throw rateLimited(limit);
    c.set("rateLimitTier", tier);
    if (!options.deferToTurn && !(await withinRateLimit(c.env, tier, userId))) {
      rememberLimited(userId);
      throw rateLimited(limit);
    }
    try {
      await next();
    } catch (err) {
      if (err instanceof ApiError && err.code === "rate_limited") rememberLimited(userId);
      throw err;
    }
    if (c.res.status === 429 && c.res.headers.get("x-ratelimit-remaining-requests") === "0")
      rememberLimited(userId);
    for (const [name, value] of Object.entries(rateLimitHeaders(limit))) c.header(name, value);
  };
}
