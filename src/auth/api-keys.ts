import { logError } from "../log/log";
import { type ApiKeyRow, apiKeyCacheKey, findApiKeyByHash, touchApiKey } from "../store/api-keys";
import { fnv1a64, routingHash } from "../store/shards";
import { invalidToken } from "./auth-errors";

/*
 * API keys for server-to-server use: `ec_` + 32 random bytes in base64url (43 characters) + `_` +
 * the owner's routing hash (16 hex digits, store/shards.ts `routingHash`), which names the shard
 * holding the key without a lookup (store/SCHEMA.md "Shards"). Keys made before shards have no
 * routing hash and are looked up on every shard at once.
 * The recognisable prefix lets auth tell a key from a JWT without parsing it, and lets secret
 * scanners spot leaked keys. D1 stores only the SHA-256 of the key; a key's lookup is cached in
 * KV under `apikey:<sha256 hex>`, so authenticating with a warm key costs one KV read.
 *
 * A revoked key is refused at once where it was revoked (its KV entry is deleted), but other
 * Cloudflare locations may serve the cached lookup until it expires: up to the cache TTL
 * (`API_KEY_CACHE_TTL_SECONDS`) plus KV's own propagation delay of about a minute.
 */

/** Every API key starts with this. */
export const API_KEY_PREFIX = "ec_";
/** Random bytes in a key: 256 bits, so keys cannot be guessed and a fast hash is enough. */
export const API_KEY_RANDOM_BYTES = 32;
/** Characters of a key shown in lists (`ec_` and 8 more), enough to tell keys apart. */
export const API_KEY_DISPLAY_CHARS = 11;
/** Unknown keys are remembered this long, so guessing costs KV reads rather than D1 reads. KV's minimum. */
export const NEGATIVE_CACHE_TTL_SECONDS = 60;
/** `last_used_at` is written at most once per this interval per key. */
export const LAST_USED_INTERVAL_MS = 3_600_000;
/** Isolate memory of keys whose use was recorded; cleared when it grows past this. */
const MAX_TOUCHED_KEYS = 10_000;

/** A key; group 1 is the routing hash (absent in keys made before shards). */
const API_KEY_PATTERN = /^ec_[A-Za-z0-9_-]{43}(?:_([0-9a-f]{16}))?$/;
const API_KEY_BEARER = /^\s*Bearer[ ]+ec_/i;

/** A key's lookup as cached in KV. */
export type CachedApiKey =
  | { user_id: string; key_id: string; revoked: boolean; last_used_at: number | null }
  | { unknown: true };

/** A freshly made key: `key` is shown to its owner once and never stored. */
export interface NewApiKey {
  key: string;
  prefix: string;
  keyHash: string;
}

/** Whether the `Authorization` header carries an API key (rather than a JWT). */
export function hasApiKeyBearer(header: string | undefined): boolean {
  return header !== undefined && API_KEY_BEARER.test(header);
}

/** Lowercase hex SHA-256 of the UTF-8 text. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let hex = "";
  for (const byte of digest) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** Makes a new random key for `userId` (its routing hash at the end) with its display prefix and hash. */
export async function generateApiKey(userId: string): Promise<NewApiKey> {
  const bytes = crypto.getRandomValues(new Uint8Array(API_KEY_RANDOM_BYTES));
  const base64url = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  const key = `${API_KEY_PREFIX}${base64url}_${routingHash(userId)}`;
  return { key, prefix: key.slice(0, API_KEY_DISPLAY_CHARS), keyHash: await sha256Hex(key) };
}

/** What {@link authenticateApiKey} reads and writes. */
export interface ApiKeyAuthDeps {
  shards: {
    /** The database of the user with this routing hash (store/shards.ts `routedDb`). */
    routed: (routingHash: bigint) => D1Database;
    /** Every shard: where a key without a routing hash is looked for. */
    all: readonly D1Database[];
  };
  kv: Pick<KVNamespace, "get" | "put">;
  /** Lifetime of a cached lookup of an existing key, in seconds (at least 60). */
  cacheTtlSeconds: number;
  /** Runs work after the response (`ExecutionContext.waitUntil`). */
  waitUntil: (promise: Promise<unknown>) => void;
  now?: () => number;
}

/** Keys whose use this isolate recorded, with when; spares repeated writes before caches refresh. */
const touchedAt = new Map<string, number>();

/**
 * Authenticates a bearer API key and returns its owner. Throws 401 `unauthorized` for a
 * malformed, unknown or revoked key. Does not check whether the user is blocked: the turn path
 * enforces that on every turn, including those made with a key.
 */
export async function authenticateApiKey(
  token: string,
  deps: ApiKeyAuthDeps,
): Promise<{ userId: string; keyId: string }> {
  const match = API_KEY_PATTERN.exec(token);
  if (!match) throw invalidToken("The API key is malformed.");
  const hint = match[1];
  const keyHash = await sha256Hex(token);
  const cacheKey = apiKeyCacheKey(keyHash);
  let record = await deps.kv.get<CachedApiKey>(cacheKey, "json");
  if (record === null) {
    const row = await findKey(deps.shards, keyHash, hint === undefined ? null : BigInt(`0x${hint}`));
    record = row ? cachedRecord(row) : { unknown: true };
    const expirationTtl = row ? deps.cacheTtlSeconds : NEGATIVE_CACHE_TTL_SECONDS;
    deps.waitUntil(deps.kv.put(cacheKey, JSON.stringify(record), { expirationTtl }).catch(logKvFailure));
  }
  if ("unknown" in record || record.revoked)
    throw invalidToken("The API key is invalid or has been revoked.");

  const now = (deps.now ?? Date.now)();
  // The cached `last_used_at` is at most one cache TTL old, so once a use is written every
  // location sees it within that time and stops writing.
  const seen = Math.max(record.last_used_at ?? 0, touchedAt.get(record.key_id) ?? 0);
  if (now - seen >= LAST_USED_INTERVAL_MS) {
    if (touchedAt.size >= MAX_TOUCHED_KEYS) touchedAt.clear();
    touchedAt.set(record.key_id, now);
    const db = deps.shards.routed(fnv1a64(record.user_id));
    deps.waitUntil(touchApiKey(db, record.key_id, now, now - LAST_USED_INTERVAL_MS).catch(logD1Failure));
  }
  return { userId: record.user_id, keyId: record.key_id };
}

/**
 * The key's row: one read on its owner's shard when the key carries a routing hash; otherwise
 * (a key made before shards) one read on every shard at once, so one round trip of latency.
 * A failed shard fails the lookup (a 500) rather than calling an existing key unknown, which
 * would be cached as unknown for a minute.
 */
async function findKey(
  shards: ApiKeyAuthDeps["shards"],
  keyHash: string,
  hash: bigint | null,
): Promise<ApiKeyRow | null> {
  if (hash !== null) return findApiKeyByHash(shards.routed(hash), keyHash);
  const rows = await Promise.all(shards.all.map((db) => findApiKeyByHash(db, keyHash)));
  return rows.find((row) => row !== null) ?? null;
}

function cachedRecord(row: ApiKeyRow): CachedApiKey {
  return {
    user_id: row.user_id,
    key_id: row.id,
    revoked: row.revoked_at !== null,
    last_used_at: row.last_used_at,
  };
}

// Neither failure affects the request: a missed cache write costs a D1 read next time, a missed
// touch leaves `last_used_at` older than it should be.
function logKvFailure(err: unknown): void {
  logError("api_key.cache_failed", { message: "caching an API key lookup failed", error: err });
}

function logD1Failure(err: unknown): void {
  logError("api_key.touch_failed", { message: "recording an API key's use failed", error: err });
}
