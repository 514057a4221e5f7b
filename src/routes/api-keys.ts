import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { generateApiKey } from "../auth/api-keys";
import { ApiError, notFound } from "../errors/api-error";
import { jsonBody } from "../middleware/json-body";
import { requireSignInToken } from "../middleware/sign-in-token";
import { createApiKeyBody } from "../openapi/bodies";
import type { ApiKeyList, CreatedApiKey } from "../resources/api-key";
import {
  apiKeyCacheKey,
  apiKeyFromRow,
  insertApiKey,
  listApiKeys,
  MAX_ACTIVE_KEYS_PER_USER,
  revokeApiKey,
} from "../store/api-keys";
import { isId } from "../store/ids";
import { toIso } from "../store/time";

/** Keys are for servers acting for the user; they must not mint or revoke keys. */
const signInTokenOnly = requireSignInToken(
  "API keys cannot create or revoke API keys; use the app's sign-in token.",
);

/**
 * API key routes, mounted at `/v1` behind auth: `POST /api-keys {name?}` → 201 with the key
 * (shown only here), `GET /api-keys` (newest first, never the key), `DELETE /api-keys/{id}` → 204.
 * Creating and revoking require a sign-in JWT (403 `forbidden` with an API key); another
 * user's key is 404.
 */
export const apiKeyRoutes = new Hono<AppEnv>()
  // A create request may have no body at all (no name).
  .post("/api-keys", signInTokenOnly, jsonBody(createApiKeyBody, { optional: true }), async (c) => {
    const { name } = c.req.valid("json");
    const made = await generateApiKey(c.get("userId"));
    const inserted = await insertApiKey(c.get("userD1").db, c.get("userId"), {
      name: name ?? null,
      prefix: made.prefix,
      keyHash: made.keyHash,
    });
    if (!inserted.ok && inserted.reason === "blocked") {
      // As for turns: a blocked account may read its data but not act.
      throw new ApiError(403, "forbidden", "This account may not create API keys.");
    }
    if (!inserted.ok) {
      throw new ApiError(
        409,
        "conflict",
        `At most ${MAX_ACTIVE_KEYS_PER_USER} API keys can be active at once; revoke one first.`,
      );
    }
    const { row } = inserted;
    const created: CreatedApiKey = {
      id: row.id,
      name: row.name,
      prefix: row.prefix,
      key: made.key,
      created_at: toIso(row.created_at),
    };
    return c.json(created, 201);
  })
  .get("/api-keys", async (c) => {
    const rows = await listApiKeys(c.get("userD1").db, c.get("userId"));
    const list: ApiKeyList = { data: rows.map(apiKeyFromRow) };
    return c.json(list);
  })
  .delete("/api-keys/:id", signInTokenOnly, async (c) => {
    const id = c.req.param("id");
    if (!isId(id)) throw notFound("API key");
    const row = await revokeApiKey(c.get("userD1").db, c.get("userId"), id);
    if (!row) throw notFound("API key");
    // Other locations keep their cached lookup until it expires (API_KEY_CACHE_TTL_SECONDS).
    await c.env.CACHE.delete(apiKeyCacheKey(row.key_hash));
    return c.body(null, 204);
  });
