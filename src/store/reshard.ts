import { routingHash } from "./shards";

/*
 * The mover of a reshard (`npm run reshard`, `POST /admin/v1/reshard`; store/SCHEMA.md
 * "Shards"). Per user whose shard differs between the old count (`RESHARD_FROM`) and the new
 * one: mark `moving` in the old shard (only when no answer is in flight: no live quota
 * reservation, no `streaming` message; in the same statement, so a turn cannot start between the
 * check and the mark), clear whatever an earlier cut-off run left in the target, copy every row
 * with SQL, verify (per table: row count and a SHA-256 over the rows, both sides), switch to
 * `moved`, delete the old rows. Every step can be cut off and run again.
 *
 * Rows travel as one JSON array per statement (`INSERT … SELECT … FROM json_each(?)`): one bound
 * parameter whatever the column count (D1 binds at most 100), a few statements per page.
 */

/** A table of a user's rows: how to select them and in which order to page through them. */
interface TableSpec {
  name: string;
  /** The primary key (or a unique order), paged through as a row value. */
  keys: readonly string[];
  /** The user's rows, with `?` standing for the user id. */
  owner: string;
}

const byUser = (name: string, ...keys: string[]): TableSpec => ({ name, keys, owner: "user_id = ?" });

/**
 * Every table with a user's rows, parents before children (foreign keys: conversations before
 * messages, account_deletions before their items). `changes` and the search index are written by
 * the triggers of the copied rows too; they are replaced by the source's after the copy
 * ({@link copyUser}). `test/reshard.test.ts` checks that this list and the search index cover
 * every table of the schema.
 */
export const USER_TABLES: readonly TableSpec[] = [
  { name: "users", keys: ["id"], owner: "id = ?" },
  byUser("conversations", "id"),
  byUser("messages", "id"),
  byUser("message_files", "message_id", "file_id"),
  byUser("files", "id"),
  byUser("api_keys", "id"),
  byUser("usage_records", "id"),
  byUser("usage_daily", "day", "model"),
  byUser("quota_reservations", "id"),
  byUser("account_deletions", "id"),
  {
    name: "account_deletion_items",
    keys: ["deletion_id", "kind", "ref"],
    owner: "deletion_id IN (SELECT id FROM account_deletions WHERE user_id = ?)",
  },
  byUser("webhook_outbox", "id"),
  byUser("changes", "seq"),
];

/**
 * The search index of a user's texts, `search_docs` with each one's `search_text` body, without
 * `doc_id`: that is the target's own rowid (a user's ids cannot be kept, another user of the
 * target may hold them), and nothing outside the index refers to it.
 */
const SEARCH: TableSpec = { name: "search_docs", keys: ["ref_id"], owner: "d.user_id = ?" };
const SEARCH_COLUMNS = ["user_id", "conversation_id", "message_id", "ref_id", "role", "created_at"] as const;

/**
 * Rows per page read; a page is written in statements of at most {@link MAX_JSON_BYTES}. 250 rows
 * of 3 KB messages are 750 KB, far below D1's 50 MB result limit.
 */
const PAGE_ROWS = 250;
/** D1 allows 2 MB per string or row (developers.cloudflare.com/d1/platform/limits/); half of it. */
const MAX_JSON_BYTES = 1_000_000;
/** Messages deleted per statement: each fires the search and version triggers. */
const DELETE_CHUNK = 500;

type Row = Record<string, unknown>;

/** Counts the statements a step runs. */
export interface QueryCounter {
  queries: number;
}

/**
 * Most statements one step may run: D1 allows 1,000 per Worker invocation on the paid plan
 * (developers.cloudflare.com/d1/platform/limits/, "Queries per Worker invocation"); the rest is
 * left for undoing a move that did not fit ({@link moveUser}).
 */
const MAX_STATEMENTS = 940;

/** A move that would need more statements than one step may run. */
class StepBudgetError extends Error {}

/** Counts `k` statements about to run, or throws {@link StepBudgetError} when they do not fit. */
function spend(n: QueryCounter, k = 1): void {
  if (n.queries + k > MAX_STATEMENTS) {
    throw new StepBudgetError(
      `the move needs more than the ${MAX_STATEMENTS} statements one step may run; left in the old shard`,
    );
  }
  n.queries += k;
}

function pageSql(t: TableSpec, after: readonly unknown[] | null): string {
  const keys = t.keys.join(", ");
  const range = after ? ` AND (${keys}) > (${t.keys.map(() => "?").join(", ")})` : "";
  if (t === SEARCH) {
    return `SELECT ${SEARCH_COLUMNS.map((c) => `d.${c}`).join(", ")}, s.body FROM search_docs d
            LEFT JOIN search_text s ON s.rowid = d.doc_id
            WHERE ${t.owner}${range.replace(/\(ref_id\)/, "(d.ref_id)")} ORDER BY d.ref_id LIMIT ${PAGE_ROWS}`;
  }
  return `SELECT * FROM ${t.name} WHERE ${t.owner}${range} ORDER BY ${keys} LIMIT ${PAGE_ROWS}`;
}

/** Every page of `userId`'s rows of table `t` on `db`, in key order. */
async function* pages(db: D1Database, t: TableSpec, userId: string, n: QueryCounter): AsyncGenerator<Row[]> {
  let after: unknown[] | null = null;
  for (;;) {
    spend(n);
    const { results }: D1Result<Row> = await db
      .prepare(pageSql(t, after))
      .bind(userId, ...(after ?? []))
      .all<Row>();
    if (results.length > 0) yield results;
    if (results.length < PAGE_ROWS) return;
    const last: Row = results.at(-1)!;
    after = t.keys.map((k) => last[k]);
  }
}

/** `rows` as JSON arrays of at most {@link MAX_JSON_BYTES} each (a bigger single row goes alone). */
function jsonChunks(rows: readonly Row[]): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (current.length > 0 && bytes + json.length > MAX_JSON_BYTES) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      bytes = 0;
    }
    current.push(json);
    bytes += json.length + 1;
  }
  if (current.length > 0) chunks.push(`[${current.join(",")}]`);
  return chunks;
}

/** `INSERT INTO t (a, b) SELECT value ->> '$.a', value ->> '$.b' FROM json_each(?)`. */
function insertFromJson(table: string, columns: readonly string[]): string {
  const picks = columns.map((c) => `json_extract(value, '$.${c}')`).join(", ");
  return `INSERT INTO ${table} (${columns.join(", ")}) SELECT ${picks} FROM json_each(?)`;
}

/** Writes one page of table `t` into `db`. */
async function writePage(db: D1Database, t: TableSpec, rows: readonly Row[], n: QueryCounter): Promise<void> {
  const statements: D1PreparedStatement[] = [];
  for (const json of jsonChunks(rows)) {
    if (t === SEARCH) {
      statements.push(
        db.prepare(insertFromJson("search_docs", SEARCH_COLUMNS)).bind(json),
        db
          .prepare(
            `INSERT INTO search_text (rowid, body)
             SELECT d.doc_id, json_extract(j.value, '$.body') FROM json_each(?) AS j
             JOIN search_docs AS d ON d.ref_id = json_extract(j.value, '$.ref_id')
             WHERE json_extract(j.value, '$.body') IS NOT NULL`,
          )
          .bind(json),
      );
    } else {
      statements.push(db.prepare(insertFromJson(t.name, Object.keys(rows[0]!))).bind(json));
    }
  }
  spend(n, statements.length);
  await db.batch(statements);
}

/**
 * Deletes every row of `userId` from `db`: the messages a chunk at a time (each fires the search
 * and version triggers), then the rest in one batch, the user's `changes` (the deletes log
 * tombstones there) and `users` row last.
 */
export async function deleteUserRows(db: D1Database, userId: string, n: QueryCounter): Promise<void> {
  for (;;) {
    spend(n);
    const r = await db
      .prepare(
        `DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE user_id = ? LIMIT ${DELETE_CHUNK})`,
      )
      .bind(userId)
      .run();
    if (r.meta.changes < DELETE_CHUNK) break;
  }
  const last = ["search_docs", "changes", "users"];
  const tables = [...USER_TABLES].reverse().filter((t) => !last.includes(t.name));
  const statements = [
    ...tables.map((t) => db.prepare(`DELETE FROM ${t.name} WHERE ${t.owner}`).bind(userId)),
    db
      .prepare("DELETE FROM search_text WHERE rowid IN (SELECT doc_id FROM search_docs WHERE user_id = ?)")
      .bind(userId),
    db.prepare("DELETE FROM search_docs WHERE user_id = ?").bind(userId),
    db.prepare("DELETE FROM changes WHERE user_id = ?").bind(userId),
    db.prepare("DELETE FROM users WHERE id = ?").bind(userId),
  ];
  spend(n, statements.length);
  await db.batch(statements);
}

/**
 * Copies `userId`'s rows from `from` to `to` (which holds none of them). The copied
 * conversations and messages fire the target's triggers: the version bumps (undone by writing
 * each conversation's source version back), the change log and the search index (both replaced
 * by the source's), so that the copy ends equal to the source ({@link digestUser}).
 */
export async function copyUser(
  from: D1Database,
  to: D1Database,
  userId: string,
  n: QueryCounter,
): Promise<void> {
  for (const t of USER_TABLES) {
    if (t.name === "changes") continue;
    for await (const rows of pages(from, t, userId, n)) await writePage(to, t, rows, n);
  }
  // The source's versions, and nothing the triggers wrote: their change-log rows, their index.
  const versions: TableSpec = { name: "conversations", keys: ["id"], owner: "user_id = ?" };
  for await (const rows of pages(from, versions, userId, n)) {
    spend(n);
    await to
      .prepare(
        `UPDATE conversations SET version = json_extract(j.value, '$.version')
         FROM json_each(?) AS j WHERE conversations.id = json_extract(j.value, '$.id')`,
      )
      .bind(JSON.stringify(rows.map((r) => ({ id: r.id, version: r.version }))))
      .run();
  }
  spend(n, 3);
  await to.batch([
    to
      .prepare("DELETE FROM search_text WHERE rowid IN (SELECT doc_id FROM search_docs WHERE user_id = ?)")
      .bind(userId),
    to.prepare("DELETE FROM search_docs WHERE user_id = ?").bind(userId),
    to.prepare("DELETE FROM changes WHERE user_id = ?").bind(userId),
  ]);
  const changes = USER_TABLES.find((t) => t.name === "changes")!;
  for await (const rows of pages(from, changes, userId, n)) await writePage(to, changes, rows, n);
  for await (const rows of pages(from, SEARCH, userId, n)) await writePage(to, SEARCH, rows, n);
}

/** Per table (and `search_docs` with its bodies): how many rows, and a SHA-256 over them in key order. */
export type UserDigest = Record<string, { rows: number; sha256: string }>;

/** {@link UserDigest} of `userId` on `db`: what {@link copyUser} must leave equal on both sides. */
export async function digestUser(db: D1Database, userId: string, n: QueryCounter): Promise<UserDigest> {
  const encoder = new TextEncoder();
  const out: UserDigest = {};
  for (const t of [...USER_TABLES, SEARCH]) {
    let rows = 0;
    let hash = new Uint8Array(32);
    for await (const page of pages(db, t, userId, n)) {
      rows += page.length;
      // Chained: SHA-256(previous digest ‖ the page's JSON); D1 returns columns in schema order.
      const json = encoder.encode(JSON.stringify(page));
      const input = new Uint8Array(hash.length + json.length);
      input.set(hash);
      input.set(json, hash.length);
      hash = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
    }
    out[t.name] = { rows, sha256: [...hash].map((b) => b.toString(16).padStart(2, "0")).join("") };
  }
  return out;
}

/** The tables whose count or digest differ between `a` and `b`. */
function differences(a: UserDigest, b: UserDigest): string[] {
  return Object.keys(a).filter((t) => a[t]!.rows !== b[t]?.rows || a[t]!.sha256 !== b[t]?.sha256);
}

/** A user's forwarding row (migration 0017), or null. */
export interface ShardMove {
  state: "moving" | "moved";
  target_shard: number;
}

/** `userId`'s forwarding row in their old shard. */
export async function readMove(db: D1Database, userId: string): Promise<ShardMove | null> {
  return db
    .prepare("SELECT state, target_shard FROM shard_moves WHERE routing_hash = ?")
    .bind(routingHash(userId))
    .first<ShardMove>();
}

/** The reshard a move belongs to: the old and new shard counts and the user's new shard. */
export interface MoveTarget {
  fromCount: number;
  toCount: number;
  targetShard: number;
}

/**
 * Marks `userId` `moving` in their old shard `db`, unless an answer of theirs is in flight (a
 * live quota reservation, which every turn and completion holds from before its upstream call
 * until its usage is stored, or a `streaming` message). One statement: a turn's first batch
 * either commits before it (and is seen) or after it (and is refused by the write guard).
 * Returns whether the user is marked (also when an earlier run had marked them).
 */
export async function markMoving(
  db: D1Database,
  userId: string,
  target: MoveTarget,
  now: number,
): Promise<boolean> {
  const hash = routingHash(userId);
  await db
    .prepare(
      `INSERT OR IGNORE INTO shard_moves
         (routing_hash, user_id, state, from_count, to_count, target_shard, updated_at)
       SELECT ?, ?, 'moving', ?, ?, ?, ?
       WHERE NOT EXISTS (SELECT 1 FROM quota_reservations WHERE user_id = ? AND expires_at > ?)
         AND NOT EXISTS (SELECT 1 FROM messages WHERE user_id = ? AND status = 'streaming')`,
    )
    .bind(hash, userId, target.fromCount, target.toCount, target.targetShard, now, userId, now, userId)
    .run();
  const move = await readMove(db, userId);
  return move !== null;
}

/** Switches `userId` to `moved`: from this commit on, every query of theirs goes to the new shard. */
export async function markMoved(db: D1Database, userId: string, now: number): Promise<void> {
  await db
    .prepare(
      "UPDATE shard_moves SET state = 'moved', updated_at = ? WHERE routing_hash = ? AND state = 'moving'",
    )
    .bind(now, routingHash(userId))
    .run();
}

/** Removes a `moving` mark (a move that failed): the user lives in the old shard again. */
async function unmark(db: D1Database, userId: string): Promise<void> {
  await db
    .prepare("DELETE FROM shard_moves WHERE routing_hash = ? AND state = 'moving'")
    .bind(routingHash(userId))
    .run();
}

/** What became of one user in a {@link moveUser}. */
export type MoveOutcome =
  | { status: "moved"; ms: number; rows: number }
  | { status: "busy" }
  | { status: "failed"; message: string };

/**
 * Moves `userId` from `from` (their old shard) to `to` (shard `target.targetShard`), or finishes
 * a move an earlier run left: `moving` is copied afresh (the target's partial rows cleared
 * first), `moved` only has its old rows deleted. A user with an answer in flight is left alone
 * (`busy`) for a later pass. A failed copy or verification leaves the user in the old shard.
 */
export async function moveUser(
  from: D1Database,
  to: D1Database,
  userId: string,
  target: MoveTarget,
  n: QueryCounter,
): Promise<MoveOutcome> {
  const started = Date.now();
  spend(n);
  let move = await readMove(from, userId);
  if (move === null) {
    spend(n, 2);
    if (!(await markMoving(from, userId, target, Date.now()))) return { status: "busy" };
    move = { state: "moving", target_shard: target.targetShard };
  }
  if (move.state === "moving") {
    try {
      await deleteUserRows(to, userId, n);
      await copyUser(from, to, userId, n);
      const [source, copy] = await Promise.all([digestUser(from, userId, n), digestUser(to, userId, n)]);
      const differ = differences(source, copy);
      if (differ.length > 0) throw new Error(`the copy differs from the source in ${differ.join(", ")}`);
      spend(n);
      await markMoved(from, userId, Date.now());
    } catch (err) {
      // Back to the old shard, where nothing of the user was deleted: first the mark (one
      // statement, within what MAX_STATEMENTS leaves), then the target's partial rows, which a
      // later attempt also clears first.
      n.queries += 1;
      await unmark(from, userId);
      await deleteUserRows(to, userId, { queries: 0 }).catch(() => undefined);
      return { status: "failed", message: err instanceof Error ? err.message : String(err) };
    }
  }
  try {
    const rows = await countRows(from, userId, n);
    await deleteUserRows(from, userId, n);
    return { status: "moved", ms: Date.now() - started, rows };
  } catch (err) {
    // Moved, its old rows not all deleted: the next pass finds the user `moved` and deletes them.
    const message = err instanceof Error ? err.message : String(err);
    return { status: "failed", message: `moved; deleting the old rows: ${message}` };
  }
}

async function countRows(db: D1Database, userId: string, n: QueryCounter): Promise<number> {
  spend(n);
  const parts = USER_TABLES.map((t) => `(SELECT COUNT(*) FROM ${t.name} WHERE ${t.owner})`);
  const row = await db
    .prepare(`SELECT ${parts.join(" + ")} AS n`)
    .bind(...USER_TABLES.map(() => userId))
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/**
 * The next `limit` user ids of shard `db` after `after`, in id order: every id with a row in any
 * of the user tables (a user may have usage or a deletion left without a `users` row). One batch
 * of one read per table (D1 refuses a compound SELECT of this many UNIONs: "too many terms in
 * compound SELECT"), each the table's first `limit` ids, which hold the first `limit` of all.
 */
export async function usersAfter(
  db: D1Database,
  after: string,
  limit: number,
  n: QueryCounter,
): Promise<string[]> {
  const reads = USER_TABLES.filter((t) => t.name !== "account_deletion_items").map((t) => {
    const id = t.name === "users" ? "id" : "user_id";
    return db
      .prepare(`SELECT DISTINCT ${id} AS id FROM ${t.name} WHERE ${id} > ? ORDER BY ${id} LIMIT ${limit}`)
      .bind(after);
  });
  spend(n, reads.length);
  const pages = await db.batch<{ id: string }>(reads);
  const ids = [...new Set(pages.flatMap((p) => p.results.map((r) => r.id)))];
  // Ids are compared as SQLite's BINARY collation does: by UTF-8 bytes, which for strings
  // without lone surrogates is the order of code points.
  return ids.sort(compareBinary).slice(0, limit);
}

function compareBinary(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
