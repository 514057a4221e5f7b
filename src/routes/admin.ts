import { type Context, Hono } from "hono";
import type { AppEnv } from "../app-env";
import { isAcceptableSubject } from "../auth/verify-jwt";
import { type Config, DEFAULT_RATE_LIMIT_TIER, RATE_LIMIT_TIERS, type RateLimitTier } from "../config";
import { ApiError, notFound } from "../errors/api-error";
import { logError } from "../log/log";
import { requireAdmin } from "../middleware/admin-auth";
import { jsonBody } from "../middleware/json-body";
import { budgetBody, rateLimitBody, reshardBody } from "../openapi/bodies";
import type { UserLimitsView } from "../resources/user-limits";
import { decodeUserCursor, encodeUserCursor } from "../store/cursor";
import { onEveryShard } from "../store/fan-out";
import { cacheRateLimitTier } from "../store/rate-tier";
import { allShards, userDb } from "../store/shards";
import { toIso } from "../store/time";
import { getShardUsage, getUsage, mergeUsage } from "../store/usage";
import {
  compareIds,
  getUserLimits,
  listUserLimits,
  setBlocked,
  setDailyTokenBudget,
  setRateLimitTier,
  type UserLimitsRow,
} from "../store/user-limits";
import { reshardHandler } from "./reshard";
import { parseUsageRange } from "./usage";
import { parseCursor, parsePageLimit } from "./validation";

function view(row: UserLimitsRow, config: Config): UserLimitsView {
  const tier = (RATE_LIMIT_TIERS as readonly string[]).includes(row.rate_limit_tier ?? "")
    ? (row.rate_limit_tier as RateLimitTier)
    : null;
  const effective = tier ?? DEFAULT_RATE_LIMIT_TIER;
  return {
    id: row.id,
    created_at: toIso(row.created_at),
    daily_token_budget: row.daily_token_budget,
    rate_limit_tier: tier,
    effective_rate_limit_tier: effective,
    rate_limit_per_minute: config.rateLimitPerMinute[effective],
    blocked: row.blocked_at !== null,
    blocked_at: toIso(row.blocked_at),
  };
}

/** The `{userId}` path segment (an identity provider `sub`, as in a JWT), or 404. */
function userIdParam(c: Context<AppEnv>): string {
  const id = c.req.param("userId") ?? "";
  if (!isAcceptableSubject(id)) throw notFound("User");
  return id;
}

/**
 * Operator routes, mounted at `/admin/v1` and guarded by the admin token ({@link requireAdmin};
 * a user's JWT or API key never passes). A user's row is in the user's shard (store/shards.ts);
 * the two routes over all users ask every shard at once and merge:
 * - `GET /users?limit=&cursor=`: users in id order, `{data, next_cursor, incomplete,
 *   failed_shards}`; a shard that failed is named in `failed_shards` (`incomplete: true`) and its
 *   users are missing from the page, so a page never silently undercounts;
 * - `GET /usage?from=&to=`: everyone's usage by day and model with totals; 503
 *   `shard_unavailable` when a shard fails (a total without a shard would be wrong).
 * Every write upserts the user's row and answers with the user's limits:
 * - `GET /users/{userId}`: limits and block state (404 for a user never seen nor configured);
 * - `PUT /users/{userId}/budget {daily_token_budget}`;
 * - `PUT /users/{userId}/rate-limit {tier}`: also updates the tier cached in KV;
 * - `POST` / `DELETE /users/{userId}/block`: the turn path refuses a blocked user's turns;
 * - `GET /users/{userId}/usage?from=&to=`: the same report as the user's `GET /v1/usage`.
 * - `POST /reshard {cursor?, max_users?}`: one step of a reshard (routes/reshard.ts).
 */
export const adminRoutes = new Hono<AppEnv>()
  .use("*", requireAdmin)
  .get("/users", async (c) => {
    const limit = parsePageLimit(c.req.query("limit"));
    const after = parseCursor(c.req.query("cursor"), decodeUserCursor)?.i ?? null;
    // Each shard's first `limit + 1` users after the cursor hold the first `limit + 1` of all.
    const { results, failed } = await onEveryShard(allShards(c.env), (db) =>
      listUserLimits(db, after, limit + 1),
    );
    const merged = results.flat().sort((a, b) => compareIds(a.id, b.id));
    const page = merged.slice(0, limit);
    const config = c.get("config");
    if (failed.length > 0) logError("admin.shard_failed", { shards: failed, message: "listing users" });
    return c.json({
      data: page.map((row) => view(row, config)),
      next_cursor: merged.length > limit ? encodeUserCursor(page.at(-1)!.id) : null,
      incomplete: failed.length > 0,
      failed_shards: failed,
    });
  })
  .get("/usage", async (c) => {
    const { from, to } = parseUsageRange({ from: c.req.query("from"), to: c.req.query("to") });
    const { results, failed } = await onEveryShard(allShards(c.env), (db) => getShardUsage(db, from, to));
    if (failed.length > 0) {
      logError("admin.shard_failed", { shards: failed, message: "totalling usage" });
      // A total missing a shard is a wrong number, not a partial page: refuse it.
      throw new ApiError(
        503,
        "shard_unavailable",
        `Usage could not be read from shard(s) ${failed.join(", ")}; try again shortly.`,
      );
    }
    return c.json(mergeUsage(from, to, results));
  })
  .get("/users/:userId", async (c) => {
    const userId = userIdParam(c);
    const row = await getUserLimits(userDb(c.env, userId), userId);
    if (!row) throw notFound("User");
    return c.json(view(row, c.get("config")));
  })
  .put("/users/:userId/budget", jsonBody(budgetBody), async (c) => {
    const userId = userIdParam(c);
    const { daily_token_budget } = c.req.valid("json");
    return c.json(
      view(await setDailyTokenBudget(userDb(c.env, userId), userId, daily_token_budget), c.get("config")),
    );
  })
  .put("/users/:userId/rate-limit", jsonBody(rateLimitBody), async (c) => {
    const userId = userIdParam(c);
    const { tier } = c.req.valid("json");
    const row = await setRateLimitTier(userDb(c.env, userId), userId, tier);
    // This location sees the new tier at once; others within KV's propagation delay.
    await cacheRateLimitTier(c.env.CACHE, userId, tier);
    return c.json(view(row, c.get("config")));
  })
  .post("/users/:userId/block", async (c) => {
    const userId = userIdParam(c);
    return c.json(view(await setBlocked(userDb(c.env, userId), userId, true), c.get("config")));
  })
  .delete("/users/:userId/block", async (c) => {
    const userId = userIdParam(c);
    return c.json(view(await setBlocked(userDb(c.env, userId), userId, false), c.get("config")));
  })
  .get("/users/:userId/usage", async (c) => {
    const userId = userIdParam(c);
    const { from, to } = parseUsageRange({ from: c.req.query("from"), to: c.req.query("to") });
    return c.json(await getUsage(userDb(c.env, userId), userId, from, to));
  })
  .post("/reshard", jsonBody(reshardBody, { optional: true }), reshardHandler);
