/** Operations of the API-key routes (`/v1/api-keys`) and the operator routes (`/admin/v1`). */
import { errorResponses, json, jsonBody, pathId, usageRangeParameters } from "./operations";

const ADMIN = { security: [{ adminToken: [] }] };

const userIdParam = {
  name: "userId",
  in: "path",
  required: true,
  description: "The user's id: the identity provider's `sub`.",
  schema: { type: "string", minLength: 1, maxLength: 255 },
};

const userLimits = (description: string) => ({
  200: { description, content: json("UserLimits") },
  ...errorResponses([401, 404], "Error"),
});

/** `paths` entries of the account, API keys and operator routes. */
export function accountPaths(): Record<string, Record<string, unknown>> {
  return {
    "/v1/account": {
      delete: {
        operationId: "deleteAccount",
        tags: ["Account"],
        summary: "Delete the caller's account and everything in it",
        description:
          "Needs the user's sign-in token: an API key cannot delete the account (403). Before the 202, every conversation, " +
          "message (every branch), uploaded file and API key of the caller is gone from every read: lists are empty, old ids are 404, the " +
          "API keys are 401 (where another location still caches a key's lookup: as for a revoked key, up to " +
          "`API_KEY_CACHE_TTL_SECONDS` plus KV's propagation delay), an answer in flight is stopped (its streams end with `message.failed`, `conversation_deleted`), " +
          "and a sync token from before is `410 sync_expired`. The rest (each conversation's answer logs, the files' bytes, " +
          "cached key lookups, the usage ledger before today) is purged in the background; a purge cut off is completed by a retry " +
          "or by the server on its own. Kept: the operator's settings for the user (a blocked user stays blocked; the " +
          "daily token budget and rate-limit tier stay) and today's usage, which still counts against the daily budget. " +
          "Afterwards the same user starts afresh. Repeating the call is safe: it deletes what is left (202 with zero " +
          "counts once the first went through).",
        responses: {
          202: { description: "Hidden; being purged.", content: json("AccountDeletion") },
          ...errorResponses([401, 403], "Error"),
        },
      },
    },
    "/v1/api-keys": {
      post: {
        operationId: "createApiKey",
        tags: ["API keys"],
        summary: "Create an API key",
        description:
          "For a server acting for the user. Needs the user's sign-in token: an API key cannot create keys (403).",
        requestBody: { required: false, content: json("CreateApiKeyRequest") },
        responses: {
          201: { description: "The new key; `key` is shown only here.", content: json("CreatedApiKey") },
          ...errorResponses([400, 401, 403, 409, 413, 415], "Error"),
        },
      },
      get: {
        operationId: "listApiKeys",
        tags: ["API keys"],
        summary: "List the caller's API keys, newest first (never the keys themselves)",
        responses: {
          200: { description: "The keys.", content: json("ApiKeyList") },
          ...errorResponses([401], "Error"),
        },
      },
    },
    "/v1/api-keys/{id}": {
      parameters: [pathId("API key")],
      delete: {
        operationId: "revokeApiKey",
        tags: ["API keys"],
        summary: "Revoke an API key",
        description: "Needs the user's sign-in token: an API key cannot revoke keys (403).",
        responses: { 204: { description: "Revoked." }, ...errorResponses([401, 403, 404], "Error") },
      },
    },
    "/admin/v1/users": {
      get: {
        operationId: "adminListUsers",
        tags: ["Operators"],
        summary: "Users of every shard, in id order",
        description:
          "Asks every shard at once and merges. A shard that fails is named in `failed_shards` (with `incomplete: true`) and its users are missing from the page.",
        ...ADMIN,
        parameters: [
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 100, default: 20 } },
          {
            name: "cursor",
            in: "query",
            schema: { type: "string" },
            description: "A `next_cursor`, unchanged.",
          },
        ],
        responses: {
          200: { description: "A page of users.", content: json("UserLimitsPage") },
          ...errorResponses([400, 401], "Error"),
        },
      },
    },
    "/admin/v1/usage": {
      get: {
        operationId: "adminGetUsage",
        tags: ["Operators"],
        summary: "Everyone's token usage by day and model, summed over every shard",
        description: "503 `shard_unavailable` when a shard fails: a total without it would be wrong.",
        ...ADMIN,
        parameters: usageRangeParameters,
        responses: {
          200: { description: "Usage.", content: json("UsageReport") },
          ...errorResponses([400, 401, 503], "Error"),
        },
      },
    },
    "/admin/v1/users/{userId}": {
      parameters: [userIdParam],
      get: {
        operationId: "adminGetUser",
        tags: ["Operators"],
        summary: "A user's limits and block state",
        ...ADMIN,
        responses: userLimits("The user's limits."),
      },
    },
    "/admin/v1/users/{userId}/budget": {
      parameters: [userIdParam],
      put: {
        operationId: "adminSetBudget",
        tags: ["Operators"],
        summary: "Set a user's daily token budget",
        ...ADMIN,
        requestBody: jsonBody("SetBudgetRequest"),
        responses: {
          ...userLimits("The user's limits."),
          ...errorResponses([400, 401, 404, 413, 415], "Error"),
        },
      },
    },
    "/admin/v1/users/{userId}/rate-limit": {
      parameters: [userIdParam],
      put: {
        operationId: "adminSetRateLimit",
        tags: ["Operators"],
        summary: "Set a user's rate-limit tier",
        ...ADMIN,
        requestBody: jsonBody("SetRateLimitRequest"),
        responses: {
          ...userLimits("The user's limits."),
          ...errorResponses([400, 401, 404, 413, 415], "Error"),
        },
      },
    },
    "/admin/v1/users/{userId}/block": {
      parameters: [userIdParam],
      post: {
        operationId: "adminBlockUser",
        tags: ["Operators"],
        summary: "Block a user: their turns are refused",
        ...ADMIN,
        responses: userLimits("The user's limits."),
      },
      delete: {
        operationId: "adminUnblockUser",
        tags: ["Operators"],
        summary: "Unblock a user",
        ...ADMIN,
        responses: userLimits("The user's limits."),
      },
    },
    "/admin/v1/reshard": {
      post: {
        operationId: "adminReshardStep",
        tags: ["Operators"],
        summary: "One step of a reshard: move users to the shards added (npm run reshard)",
        description:
          "Only while `RESHARD_FROM` is set (else 409 `conflict`). Walks the old shards' users from `cursor` and moves those whose shard changes (copy, verify, switch, delete), at most `max_users` per step. Repeat with the returned `cursor` until it is `null`; a pass that ended with `busy` or `failed` users needs another pass. Safe to stop and start again from no cursor at any point.",
        ...ADMIN,
        requestBody: { required: false, content: json("ReshardRequest") },
        responses: {
          200: { description: "What the step did.", content: json("ReshardStep") },
          ...errorResponses([400, 401, 409, 413, 415], "Error"),
        },
      },
    },
    "/admin/v1/users/{userId}/usage": {
      parameters: [userIdParam],
      get: {
        operationId: "adminGetUserUsage",
        tags: ["Operators"],
        summary: "A user's token usage by day and model (as `GET /v1/usage`)",
        ...ADMIN,
        parameters: usageRangeParameters,
        responses: {
          200: { description: "Usage.", content: json("UsageReport") },
          ...errorResponses([400, 401, 404], "Error"),
        },
      },
    },
  };
}
