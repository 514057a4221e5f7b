import { DEFAULT_RATE_LIMIT_TIER, RATE_LIMIT_TIERS, type RateLimitTier } from "../config";
import { logError } from "../log/log";
import type { D1Queries } from "./sessions";
import { getRateLimitTier } from "./user-limits";

/*
 * A user's rate-limit tier lives in D1 (`users.rate_limit_tier`), but reading D1 on every turn
 * only to pick a limiter is too expensive, so it is cached in KV as `ratetier:<userId>`. Users
 * without a tier are cached too (as "default"). The operator route writes KV as it writes D1;
 * other locations see the change within KV's propagation delay (about a minute).
 */

/** Lifetime of a cached tier, in seconds. */
export const RATE_TIER_CACHE_TTL_SECONDS = 300;
const NO_TIER = "default";

/** The KV key of a user's cached tier. */
export const rateTierCacheKey = (userId: string): string => `ratetier:${userId}`;

function asTier(value: string | null): RateLimitTier {
  return (RATE_LIMIT_TIERS as readonly string[]).includes(value ?? "")
    ? (value as RateLimitTier)
    : DEFAULT_RATE_LIMIT_TIER;
}

/**
 * The user's tier: from isolate memory, else one KV read; when KV has none, the default tier,
 * while the stored tier is read from D1 into KV under `waitUntil`. Unknown stored values fall
 * back to the default tier.
 */
export async function resolveRateLimitTier(
  db: D1Queries,
  kv: Pick<KVNamespace, "get" | "put">,
  userId: string,
  waitUntil: (promise: Promise<unknown>) => void,
  now = Date.now(),
): Promise<RateLimitTier> {
  const remembered = isolateTiers.get(userId);
  if (remembered && remembered.until > now) return remembered.tier;
  const cached = await kv.get(rateTierCacheKey(userId));
  if (cached !== null) {
    remember(userId, asTier(cached), now);
    return asTier(cached);
  }
  // Not cached: this request counts against the default tier, and the stored tier is fetched
  // into KV after the response. A turn's only D1 round trip before the upstream call is its
  // batch; the price is that a tier set by an operator may apply one request late.
  waitUntil(
    getRateLimitTier(db, userId)
      .then((stored) => cacheRateLimitTier(kv, userId, stored === null ? null : asTier(stored)))
      .catch((err: unknown) => {
        logError("rate_tier.cache_failed", { message: "caching a rate-limit tier failed", error: err });
      }),
  );
  return DEFAULT_RATE_LIMIT_TIER;
}

/** Caches the user's tier (`null`: no tier set, i.e. the default). */
/**
 * A warm isolate keeps tiers it has read for {@link MEMORY_TTL_MS}, so a user's turns cost no KV
 * read at all for the limiter; an operator's change reaches every isolate within that time.
 */
const MEMORY_TTL_MS = 30_000;
/** Bounds the memory an isolate spends on this (the oldest entries go first). */
const MEMORY_MAX_USERS = 10_000;
const isolateTiers = new Map<string, { tier: RateLimitTier; until: number }>();

function remember(userId: string, tier: RateLimitTier, now: number): void {
  isolateTiers.delete(userId);
  if (isolateTiers.size >= MEMORY_MAX_USERS) isolateTiers.delete(isolateTiers.keys().next().value!);
  isolateTiers.set(userId, { tier, until: now + MEMORY_TTL_MS });
}

export async function cacheRateLimitTier(
  kv: Pick<KVNamespace, "put">,
  userId: string,
  tier: RateLimitTier | null,
): Promise<void> {
  isolateTiers.delete(userId);
  await kv.put(rateTierCacheKey(userId), tier ?? NO_TIER, { expirationTtl: RATE_TIER_CACHE_TTL_SECONDS });
}
