/**
 * User shards: every user's rows live in one D1 database, chosen from the user id.
 *
 * The shard bindings are `DB` (shard 0), `DB_1`, `DB_2`, … in `wrangler.toml`, read in that order
 * up to the first missing number. One binding (`DB` alone) is the default and behaves as a single
 * database.
 *
 * The shard of a user is Jump Consistent Hash (Lamping & Veach, "A Fast, Minimal Memory,
 * Consistent Hash Algorithm", 2014, arXiv:1406.2294) of a 64-bit FNV-1a hash of the user id's UTF-8
 * bytes: going from N to N+1 shards moves ~1/(N+1) of the users, all of them to the new shard, and
 * none between the old ones.
 */

import { movingUserDb } from "./reshard-routing";

/** What the shard functions read of a Worker's env: `DB`, and `DB_1`, … when bound (and `RESHARD_FROM`). */
export type ShardEnv = Pick<Env, "DB">;

/** The shard databases of this deployment, shard 0 (`DB`) first. */
export function shardDatabases(env: ShardEnv): D1Database[] {
  const shards: D1Database[] = [env.DB];
  // Extra shards are bound by name (`DB_1`, …) and are not in the generated Env type unless
  // wrangler.toml lists them, so they are read as plain properties and checked for the D1 shape.
  const bindings: Record<string, unknown> = { ...env };
  for (let i = 1; ; i++) {
    const binding = bindings[`DB_${i}`];
    if (!isD1Database(binding)) return shards;
    shards.push(binding);
  }
}

function isD1Database(value: unknown): value is D1Database {
  return typeof value === "object" && value !== null && "prepare" in value && "batch" in value;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;
const encoder = new TextEncoder();

/** 64-bit FNV-1a of the UTF-8 bytes of `text` (FNV: http://www.isthe.com/chongo/tech/comp/fnv/). */
export function fnv1a64(text: string): bigint {
  let hash = FNV_OFFSET;
  for (const byte of encoder.encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * FNV_PRIME) & MASK_64;
  }
  return hash;
}

/** Jump Consistent Hash: the bucket in [0, buckets) of a 64-bit key (arXiv:1406.2294, Figure 1). */
export function jumpHash(key: bigint, buckets: number): number {
  let b = -1;
  let j = 0;
  let k = key;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK_64;
    j = Math.floor((b + 1) * (2 ** 31 / (Number(k >> 33n) + 1)));
  }
  return b;
}

/**
 * The index of the shard that holds `userId`'s rows among `count` shards. Queries are routed by
 * {@link routedDb}; the reshard's mover (reshard-pass.ts) uses this to find a user's new shard.
 */
export function shardIndex(userId: string, count: number): number {
  return count <= 1 ? 0 : jumpHash(fnv1a64(userId), count);
}

/** Shard lists by `env` object: reading the bindings copies `env`, once per isolate and env. */
const shardLists = new WeakMap<object, D1Database[]>();

function shardsOf(env: ShardEnv): D1Database[] {
  let shards = shardLists.get(env);
  if (!shards) {
    shards = shardDatabases(env);
    shardLists.set(env, shards);
  }
  return shards;
}

/** Every shard database, shard 0 first, for work that spans users (crons, operator views). */
export function allShards(env: ShardEnv): readonly D1Database[] {
  return shardsOf(env);
}

/** A user's 64-bit routing hash: what {@link shardIndex} hashes, 16 lowercase hex digits. */
export function routingHash(userId: string): string {
  return fnv1a64(userId).toString(16).padStart(16, "0");
}

/**
 * The database of the user whose routing hash is `hash` ({@link routingHash}). The one place that
 * decides where a user lives: every user's query reaches D1 through here (or {@link userDb}),
 * so a reshard changes this function alone (store/SCHEMA.md "Shards").
 */
export function routedDb(env: ShardEnv, hash: bigint): D1Database {
  const shards = shardsOf(env);
  const now = shards.length <= 1 ? 0 : jumpHash(hash, shards.length);
  const from = reshardFrom(env, shards.length);
  if (from === null) return shards[now]!;
  // During a reshard only the users whose shard differs between the two counts are forwarded
  // (reshard-routing.ts); everyone else is routed as above, with no lookup.
  const old = from <= 1 ? 0 : jumpHash(hash, from);
  if (old === now) return shards[now]!;
  const forwarding = forwardingOf(shards);
  const key = hash.toString(16).padStart(16, "0");
  let db = forwarding.databases.get(key);
  if (!db) {
    // The cache only saves objects (a caller may key its own state by the database, as the
    // conversation's object counts round trips per shard); forgetting them all costs nothing.
    if (forwarding.databases.size >= MAX_FORWARDED) forwarding.databases.clear();
    // Forgetting a `moved` hash costs its user one wasted batch on the old shard, once.
    if (forwarding.moved.size >= MAX_FORWARDED) forwarding.moved.clear();
    db = movingUserDb({ from: shards[old]!, to: shards[now]!, hash: key, moved: forwarding.moved });
    forwarding.databases.set(key, db);
  }
  return db;
}

/** Forwarded users' databases, and `moved` hashes, kept per isolate and shard list. */
const MAX_FORWARDED = 10_000;

/**
 * Per shard list: the forwarded users' databases by routing hash, and the hashes found `moved`
 * (final for a reshard, so the old shard is not asked again).
 */
const forwardingByShards = new WeakMap<object, { databases: Map<string, D1Database>; moved: Set<string> }>();

function forwardingOf(shards: D1Database[]) {
  let forwarding = forwardingByShards.get(shards);
  if (!forwarding) {
    forwarding = { databases: new Map(), moved: new Set() };
    forwardingByShards.set(shards, forwarding);
  }
  return forwarding;
}

/**
 * The old shard count of a reshard in progress (`RESHARD_FROM`, README "Adding shards"), or null
 * when none is: unset or empty. It must be a whole number from 1 to one less than the shards
 * bound; anything else is a deployment error, thrown on the first query.
 */
export function reshardFrom(env: ShardEnv, count: number): number | null {
  // Like `DB_1`, not in the generated Env type unless wrangler.toml sets it.
  const value: unknown = Reflect.get(env, "RESHARD_FROM");
  if (value === undefined || value === "") return null;
  const from = Number(value);
  if (!Number.isInteger(from) || from < 1 || from >= count) {
    throw new Error(`RESHARD_FROM must be a whole number from 1 to ${count - 1} (${count} shards bound)`);
  }
  return from;
}

/**
 * The shard `userId`'s bookmarks are tagged with and read at (store/sessions.ts `tagBookmark`,
 * `readBookmark`): `index` is the binding index of their shard, `count` the shards bound.
 *
 * During a reshard, a user forwarded between shards (reshard-routing.ts) gets the OLD shard's
 * index, whichever database served the request: the forwarding database starts every such
 * session at the primary whatever the client sent, and once the reshard ends the user routes to
 * the new shard, where an old-shard tag is ignored. So a bookmark handed out while the user's
 * rows could be in either database is never used as a read position (costing one request at the
 * primary after the reshard), and no bookmark reaches a database it is not of.
 */
export function bookmarkShard(env: ShardEnv, userId: string): { index: number; count: number } {
  const count = shardsOf(env).length;
  const hash = fnv1a64(userId);
  const now = count <= 1 ? 0 : jumpHash(hash, count);
  const from = reshardFrom(env, count);
  return { index: from === null ? now : from <= 1 ? 0 : jumpHash(hash, from), count };
}

/** The database holding `userId`'s rows (their shard). */
export function userDb(env: ShardEnv, userId: string): D1Database {
  return routedDb(env, fnv1a64(userId));
}
