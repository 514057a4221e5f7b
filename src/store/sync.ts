import { raw } from "sql-template-tag";
import type { Change, SyncPage } from "../resources/sync";
import { type WalkItem, walkPageOf, walkQueries } from "./account-walk";
import { conversationFromRow } from "./conversations";
import { encodeSyncCursor, type SyncCursor } from "./cursor";
import { messageFromRow, siblingColumns } from "./messages";
import type { D1Queries } from "./sessions";
import { batch, query, sql } from "./sql";
import type { ConversationRow, MessageRow } from "./types";

/** A `changes` row (migration 0008), as the page query reads it. */
interface ChangeRow {
  seq: number;
  type: "conversation" | "message";
  op: "upsert" | "delete";
  id: string;
  conversation_id: string;
  created_at: number;
}

/** The answer to a sync request: a page, or `expired` (the route's 410 `sync_expired`). */
export type SyncResult = { kind: "page"; page: SyncPage } | { kind: "expired" };

/** Rows older than the retention deleted by one sync request, at most (a bounded statement). */
const PRUNE_BATCH = 1000;

const epochQuery = (db: D1Queries, userId: string) =>
  query<{ sync_epoch: string | null }>(db, sql`SELECT sync_epoch FROM users WHERE id = ${userId}`);

const headQuery = (db: D1Queries, userId: string) =>
  query<{ head: number | null }>(db, sql`SELECT MAX(seq) AS head FROM changes WHERE user_id = ${userId}`);

/**
 * Deletes up to {@link PRUNE_BATCH} of the user's log rows older than `cutoff`, never the newest
 * one: the next change is numbered from it, so a user's numbering never starts over.
 */
const pruneQuery = (db: D1Queries, userId: string, cutoff: number) =>
  query(
    db,
    sql`DELETE FROM changes WHERE user_id = ${userId} AND seq IN (
          SELECT seq FROM changes
          WHERE user_id = ${userId} AND created_at < ${cutoff}
            AND seq < (SELECT MAX(seq) FROM changes WHERE user_id = ${userId})
          ORDER BY seq LIMIT ${PRUNE_BATCH})`,
  );

/** The ids a page of `limit + 1` changes after `since` names, of `type`: a subquery. */
const pageIds = (userId: string, since: number, limit: number, type: ChangeRow["type"]) =>
  sql`SELECT id FROM (SELECT id, type FROM changes WHERE user_id = ${userId} AND seq > ${since}
                      ORDER BY seq LIMIT ${limit + 1}) WHERE type = ${type}`;

/**
 * The user's changes after `since`, oldest first, at most `limit`: every change of the log's
 * page with, for an upsert, the conversation or message as it is now. One round trip (a
 * `batch()`, one transaction): the epoch, a bounded prune of rows past the retention, the log's
 * head, the page, and the rows it names. An upsert whose row is gone is left out (its
 * conversation's tombstone comes later in the log), as is a later upsert of an entity the page
 * already carries (its data is the same current row).
 *
 * `expired` when the token cannot be continued: another epoch (the account was deleted since),
 * a position past the log's head (not a token of this log), or changes after it that are gone
 * or older than `retentionMs` (pruned or about to be).
 */
export async function readChanges(
  db: D1Queries,
  userId: string,
  since: SyncCursor,
  limit: number,
  retentionMs: number,
  now: number,
): Promise<SyncResult> {
  const cutoff = now - retentionMs;
  const r = await batch(db, {
    epoch: epochQuery(db, userId),
    prune: pruneQuery(db, userId, cutoff),
    head: headQuery(db, userId),
    page: query<ChangeRow>(
      db,
      sql`SELECT seq, type, op, id, conversation_id, created_at FROM changes
          WHERE user_id = ${userId} AND seq > ${since.s} ORDER BY seq LIMIT ${limit + 1}`,
    ),
    conversations: query<ConversationRow>(
      db,
      sql`SELECT * FROM conversations
          WHERE user_id = ${userId} AND id IN (${pageIds(userId, since.s, limit, "conversation")})`,
    ),
    messages: query<MessageRow>(
      db,
      sql`SELECT m.*, ${raw(siblingColumns("m"))} FROM messages AS m
          WHERE m.user_id = ${userId} AND m.id IN (${pageIds(userId, since.s, limit, "message")})`,
    ),
  });
  const epoch = r.epoch.results[0]?.sync_epoch ?? "";
  // A token issued before the user had a row (nothing logged yet) names position 0 of any epoch.
  if (since.e !== epoch && !(since.e === "" && since.s === 0)) return { kind: "expired" };
  const head = r.head.results[0]?.head ?? 0;
  if (since.s > head) return { kind: "expired" };
  const rows = r.page.results;
  const first = rows[0];
  if (first && (first.seq !== since.s + 1 || first.created_at < cutoff)) return { kind: "expired" };

  const conversations = new Map(r.conversations.results.map((row) => [row.id, row]));
  const messages = new Map(r.messages.results.map((row) => [row.id, row]));
  const page = rows.slice(0, limit);
  const seen = new Set<string>();
  const changes: Change[] = [];
  for (const row of page) {
    const change = changeOf(row, conversations, messages);
    if (!change) continue;
    if (change.op === "upsert") {
      if (seen.has(change.id)) continue;
      seen.add(change.id);
    }
    changes.push(change);
  }
  return {
    kind: "page",
    page: {
      changes,
      next_since: encodeSyncCursor({ e: epoch, s: page.at(-1)?.seq ?? since.s }),
      has_more: rows.length > limit,
    },
  };
}

/** The change a log row stands for, with its current data; `null` for an upsert of a row gone since. */
function changeOf(
  row: ChangeRow,
  conversations: Map<string, ConversationRow>,
  messages: Map<string, MessageRow>,
): Change | null {
  const head = { seq: row.seq, id: row.id, conversation_id: row.conversation_id };
  if (row.op === "delete") return { ...head, type: "conversation", op: "delete", data: null };
  if (row.type === "conversation") {
    const found = conversations.get(row.id);
    return found ? { ...head, type: "conversation", op: "upsert", data: conversationFromRow(found) } : null;
  }
  const found = messages.get(row.id);
  return found ? { ...head, type: "message", op: "upsert", data: messageFromRow(found) } : null;
}

/**
 * One page of a snapshot: every conversation of the user, each followed by its messages (every
 * branch), as upserts; `cursor` continues one (`null`: a new snapshot).
 *
 * A new snapshot reads the log's head first, in the same transaction as its first page; every
 * change carries it as `seq`, and the last page's `next_since` continues the log from it. A
 * change committed after the head is then in the log after it, and a client that applies the
 * snapshot and then syncs from its last token misses nothing: the pages, read later, show rows
 * at least as new as the head, and applying a later change to a row that already shows it
 * changes nothing (upserts carry the current row, a tombstone deletes what may already be gone).
 *
 * `expired` when the snapshot was begun in another epoch (the account was deleted since).
 */
export async function readSnapshotPage(
  db: D1Queries,
  userId: string,
  cursor: SyncCursor | null,
  limit: number,
  retentionMs: number,
  now: number,
): Promise<SyncResult> {
  const after = cursor?.c === undefined ? null : { c: cursor.c, m: cursor.m ?? "" };
  const r = await batch(db, {
    epoch: epochQuery(db, userId),
    prune: pruneQuery(db, userId, now - retentionMs),
    head: headQuery(db, userId),
    ...walkQueries(db, userId, after, limit),
  });
  const epoch = r.epoch.results[0]?.sync_epoch ?? "";
  if (cursor && cursor.e !== epoch) return { kind: "expired" };
  const head = cursor ? cursor.s : (r.head.results[0]?.head ?? 0);
  const walk = walkPageOf(r.conversations.results, r.messages.results, limit);
  return {
    kind: "page",
    page: {
      changes: walk.items.map((item) => snapshotChange(item, head)),
      next_since: encodeSyncCursor(walk.next ? { e: epoch, s: head, ...walk.next } : { e: epoch, s: head }),
      has_more: walk.next !== null,
    },
  };
}

const snapshotChange = (item: WalkItem, seq: number): Change =>
  item.type === "conversation"
    ? { seq, type: "conversation", op: "upsert", id: item.id, conversation_id: item.id, data: item.data }
    : {
        seq,
        type: "message",
        op: "upsert",
        id: item.id,
        conversation_id: item.conversation_id,
        data: item.data,
      };

/**
 * Starts the user's change log over in a new epoch: every sync token issued before is then
 * expired (410 `sync_expired`), and the old log is deleted. For account deletion: call it with
 * (or after) the purge of the user's data, so the client's next sync is a 410 and then a snapshot
 * of what is left (nothing). Does nothing for a user without a row.
 *
 * @internal Exported for test/sync.test.ts and for account deletion (`DELETE /v1/account`),
 * which is to call it.
 */
export async function resetSyncEpoch(db: D1Queries, userId: string): Promise<void> {
  await batch(db, resetSyncEpochQueries(db, userId));
}

/** The statements of {@link resetSyncEpoch}, for a caller's own `batch()`. */
export function resetSyncEpochQueries(db: D1Queries, userId: string) {
  return {
    epoch: query(db, sql`UPDATE users SET sync_epoch = lower(hex(randomblob(8))) WHERE id = ${userId}`),
    log: query(db, sql`DELETE FROM changes WHERE user_id = ${userId}`),
  };
}
