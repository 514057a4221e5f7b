import { DEFAULT_RATE_LIMIT_TIER, RATE_LIMIT_TIERS, type RateLimitTier } from "../config";
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
  return (RATE_LIMIT_TIERS as readonly string[]).includes(value ?? "") ? (value as RateLimitTier) : DEFAULT_RATE_LIMIT_TIER;
}

/**
 * The user's tier: one KV read when cached, else a D1 read whose result is cached under
 * `waitUntil`. Unknown stored values fall back to the default tier.
 */
export async function resolveRateLimitTier(
  db: D1Database,
  kv: Pick<KVNamespace, "get" | "put">,
  userId: string,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<RateLimitTier> {
  const cached = await kv.get(rateTierCacheKey(userId));
  if (cached !== null) return asTier(cached);
  const stored = await getRateLimitTier(db, userId);
  waitUntil(
    cacheRateLimitTier(kv, userId, stored === null ? null : asTier(stored)).catch((err: unknown) => {
      console.error(JSON.stringify({ level: "error", message: "caching a rate-limit tier failed", cause: String(err) }));
    }),
  );
  return asTier(stored);
}

/** Caches the user's tier (`null`: no tier set, i.e. the default). */
export async function cacheRateLimitTier(kv: Pick<KVNamespace, "put">, userId: string, tier: RateLimitTier | null): Promise<void> {
  await kv.put(rateTierCacheKey(userId), tier ?? NO_TIER, { expirationTtl: RATE_TIER_CACHE_TTL_SECONDS });
}
