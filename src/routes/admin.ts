import { type Context, Hono } from "hono";
import type { AppEnv } from "../app-env";
import { isAcceptableSubject } from "../auth/verify-jwt";
import { type Config, DEFAULT_RATE_LIMIT_TIER, RATE_LIMIT_TIERS, type RateLimitTier } from "../config";
import { notFound } from "../errors/api-error";
import { requireAdmin } from "../middleware/admin-auth";
import { jsonBody } from "../middleware/json-body";
import { budgetBody, rateLimitBody } from "../openapi/bodies";
import type { UserLimitsView } from "../resources/user-limits";
import { cacheRateLimitTier } from "../store/rate-tier";
import { toIso } from "../store/time";
import { getUsage } from "../store/usage";
import {
  getUserLimits,
  setBlocked,
  setDailyTokenBudget,
  setRateLimitTier,
  type UserLimitsRow,
} from "../store/user-limits";
import { parseUsageRange } from "./usage";

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
 * a user's JWT or API key never passes). Every write upserts the user's row and answers with
 * the user's limits:
 * - `GET /users/{userId}`: limits and block state (404 for a user never seen nor configured);
 * - `PUT /users/{userId}/budget {daily_token_budget}`;
 * - `PUT /users/{userId}/rate-limit {tier}`: also updates the tier cached in KV;
 * - `POST` / `DELETE /users/{userId}/block`: the turn path refuses a blocked user's turns;
 * - `GET /users/{userId}/usage?from=&to=`: the same report as the user's `GET /v1/usage`.
 */
export const adminRoutes = new Hono<AppEnv>()
  .use("*", requireAdmin)
  .get("/users/:userId", async (c) => {
    const row = await getUserLimits(c.env.DB, userIdParam(c));
    if (!row) throw notFound("User");
    return c.json(view(row, c.get("config")));
  })
  .put("/users/:userId/budget", jsonBody(budgetBody), async (c) => {
    const userId = userIdParam(c);
    const { daily_token_budget } = c.req.valid("json");
    return c.json(view(await setDailyTokenBudget(c.env.DB, userId, daily_token_budget), c.get("config")));
  })
  .put("/users/:userId/rate-limit", jsonBody(rateLimitBody), async (c) => {
    const userId = userIdParam(c);
    const { tier } = c.req.valid("json");
    const row = await setRateLimitTier(c.env.DB, userId, tier);
    // This location sees the new tier at once; others within KV's propagation delay.
    await cacheRateLimitTier(c.env.CACHE, userId, tier);
    return c.json(view(row, c.get("config")));
  })
  .post("/users/:userId/block", async (c) =>
    c.json(view(await setBlocked(c.env.DB, userIdParam(c), true), c.get("config"))),
  )
  .delete("/users/:userId/block", async (c) =>
    c.json(view(await setBlocked(c.env.DB, userIdParam(c), false), c.get("config"))),
  )
  .get("/users/:userId/usage", async (c) => {
    const userId = userIdParam(c);
    const { from, to } = parseUsageRange({ from: c.req.query("from"), to: c.req.query("to") });
    return c.json(await getUsage(c.env.DB, userId, from, to));
  });
