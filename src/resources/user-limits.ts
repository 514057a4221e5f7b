import * as z from "zod";
import { RATE_LIMIT_TIERS } from "../config";
import { isoTime } from "./common";

/** A user's limits as operators see them. */
export const userLimitsSchema = z.object({
  id: z.string().describe("The user's id (the identity provider's `sub`)."),
  created_at: isoTime,
  daily_token_budget: z.int().nullable().describe("`null`: the configured default applies; -1: unlimited."),
  rate_limit_tier: z
    .enum(RATE_LIMIT_TIERS)
    .nullable()
    .describe("As set by an operator; `null` for the default."),
  effective_rate_limit_tier: z.enum(RATE_LIMIT_TIERS),
  rate_limit_per_minute: z.int(),
  blocked: z.boolean(),
  blocked_at: isoTime.nullable(),
});

export type UserLimitsView = z.infer<typeof userLimitsSchema>;

/** A page of `GET /admin/v1/users`: users of every shard in id order. */
export const userLimitsPageSchema = z.object({
  data: z.array(userLimitsSchema),
  next_cursor: z.string().nullable().describe("Pass as `cursor` for the next page; `null` on the last page."),
  incomplete: z.boolean().describe("`true` when a shard failed: its users are missing from this page."),
  failed_shards: z.array(z.int()).describe("Indexes of the shards that failed (0 is `DB`)."),
});
