/**
 * zod schemas of the API-key and operator shapes (`src/routes/api-keys.ts`, `src/routes/admin.ts`)
 * for the OpenAPI document.
 */
import * as z from "zod";
import { RATE_LIMIT_TIERS } from "../config";

const isoTime = z.iso.datetime().describe("ISO 8601, UTC");

export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string().describe("The key's first characters, to tell keys apart; never the key."),
  created_at: isoTime,
  last_used_at: isoTime.nullable(),
  revoked_at: isoTime.nullable(),
});

export const createdApiKeySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string(),
  key: z.string().describe("The secret key. Shown only in this response; store it now."),
  created_at: isoTime,
});

export const apiKeyListSchema = z.object({ data: z.array(apiKeySchema) });

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

// Request bodies: the schemas the routes validate with (one source).
export {
  budgetBody as budgetBodySchema,
  createApiKeyBody as createApiKeyBodySchema,
  rateLimitBody as rateLimitBodySchema,
} from "./bodies";
