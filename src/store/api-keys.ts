import type { ApiKeyView } from "../resources/api-key";
import { newId } from "./ids";
import type { D1Queries } from "./sessions";
import { nowMs, toIso } from "./time";

/** A row of `api_keys`. */
export interface ApiKeyRow {
  id: string;
  user_id: string;
  name: string | null;
  prefix: string;
  key_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** Most keys a user may hold unrevoked at once. */
export const MAX_ACTIVE_KEYS_PER_USER = 20;
/** Most keys a list returns (newest first); revoked keys beyond it drop off the list. */
export const MAX_LISTED_KEYS = 100;

/** The KV key of a key's cached lookup (`auth/api-keys.ts`), by the key's SHA-256 hex. */
export const apiKeyCacheKey = (keyHash: string): string => `apikey:${keyHash}`;

/** Maps a row to the listed shape. */
export function apiKeyFromRow(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    created_at: toIso(row.created_at),
    last_used_at: toIso(row.last_used_at),
    revoked_at: toIso(row.revoked_at),
  };
}

/** What {@link insertApiKey} did: stored the key, or refused it and why. */
export type InsertApiKeyResult =
  | { ok: true; row: ApiKeyRow }
  /** `blocked`: an operator blocked the user; `limit`: {@link MAX_ACTIVE_KEYS_PER_USER} keys are active. */
  | { ok: false; reason: "blocked" | "limit" };

/**
 * Stores a new key for `userId` by its hash, unless the user is blocked or already holds
 * {@link MAX_ACTIVE_KEYS_PER_USER} unrevoked keys: the checks and the insert are one statement,
 * so concurrent creations cannot pass the cap together, nor a block that lands meanwhile.
 * A refusal costs a second read to tell its reason.
 */
export async function insertApiKey(
  db: D1Queries,
  userId: string,
  key: { name: string | null; prefix: string; keyHash: string },
): Promise<InsertApiKeyResult> {
  const row = await db
    .prepare(
      `INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6
       WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2 AND revoked_at IS NULL) < ?7
         AND (SELECT blocked_at FROM users WHERE id = ?2) IS NULL
       RETURNING *`,
    )
    .bind(newId(), userId, key.name, key.prefix, key.keyHash, nowMs(), MAX_ACTIVE_KEYS_PER_USER)
    .first<ApiKeyRow>();
  if (row) return { ok: true, row };
  const blocked = await db
    .prepare("SELECT blocked_at FROM users WHERE id = ?")
    .bind(userId)
    .first<number | null>("blocked_at");
  return { ok: false, reason: blocked !== null && blocked !== undefined ? "blocked" : "limit" };
}

/** The user's keys, newest first, revoked ones included (at most {@link MAX_LISTED_KEYS}). */
export async function listApiKeys(db: D1Queries, userId: string): Promise<ApiKeyRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM api_keys WHERE user_id = ? ORDER BY id DESC LIMIT ?")
    .bind(userId, MAX_LISTED_KEYS)
    .all<ApiKeyRow>();
  return results;
}

/**
 * Revokes the user's key (keeping the first `revoked_at` if it was revoked already) and returns
 * its row, or `null` if the user has no key with that id.
 */
export async function revokeApiKey(db: D1Queries, userId: string, id: string): Promise<ApiKeyRow | null> {
  return db
    .prepare(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
       WHERE id = ? AND user_id = ? RETURNING *`,
    )
    .bind(nowMs(), id, userId)
    .first<ApiKeyRow>();
}

/** The key whose SHA-256 is `keyHash`, revoked or not, or `null`. */
export async function findApiKeyByHash(db: D1Queries, keyHash: string): Promise<ApiKeyRow | null> {
  return db.prepare("SELECT * FROM api_keys WHERE key_hash = ?").bind(keyHash).first<ApiKeyRow>();
}

/**
 * Records a use of the key at `at` unless a use at or after `notBefore` is already recorded,
 * so concurrent isolates write at most once per interval.
 */
export async function touchApiKey(db: D1Queries, id: string, at: number, notBefore: number): Promise<void> {
  await db
    .prepare(
      "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    )
    .bind(at, id, notBefore)
    .run();
}
