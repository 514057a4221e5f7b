import { empty, join } from "sql-template-tag";
import { newId } from "./ids";
import { batch, query, sql, values } from "./sql";
import { resetSyncEpochQueries } from "./sync";
import { utcDay } from "./usage";

/*
 * Account deletion (`DELETE /v1/account`, migration 0010). The user's rows are deleted from D1
 * before the request answers (bounded statements, then one batch that deletes the conversations
 * and starts a new sync epoch); what lives outside D1 (each conversation's Durable Object storage,
 * each API key's cached lookup in KV) is listed in `account_deletion_items` in the first batch and
 * crossed off as it is purged, so a purge cut off anywhere is completed by the next run. The
 * user's files are hidden in the first batch (`deleted_at`) and purged from R2 and D1 afterwards:
 * a hidden row is its own item.
 */

/** A row of `account_deletions`. */
export interface AccountDeletionRow {
  id: string;
  user_id: string;
  requested_at: number;
  keep_from_day: string;
  conversations: number;
  messages: number;
  files: number;
  api_keys: number;
  hidden_at: number | null;
  lease_until: number | null;
  finished_at: number | null;
}

/** What a deletion purges outside D1: a conversation's object, or an API key's cached lookup. */
export type DeletionItemKind = "conversation" | "api_key";

/** Conversations of the deletion with an answer still `streaming` in D1: a subquery. */
const streamingOf = (userId: string, deletionId: string) =>
  sql`SELECT DISTINCT conversation_id FROM messages
      WHERE status = 'streaming' AND user_id = ${userId}
        AND conversation_id IN (SELECT ref FROM account_deletion_items
                                WHERE deletion_id = ${deletionId} AND kind = 'conversation')`;

/**
 * Starts deleting `userId`'s account, in one batch (one transaction): records the deletion with
 * the counts of what it found (conversations, messages, live files, API keys), lists the
 * conversations and the API keys' hashes still to purge outside D1, deletes the API keys, so a key
 * is refused from this commit on wherever its lookup is not cached, and hides the user's files.
 * The deletion is leased to the caller for `leaseMs`. Also returns the conversations with an
 * answer in flight, to stop first.
 */
export async function beginAccountDeletion(
  db: D1Database,
  userId: string,
  now: number,
  leaseMs: number,
): Promise<{ deletion: AccountDeletionRow; streaming: string[] }> {
  const id = newId();
  const r = await batch(db, {
    deletion: query<AccountDeletionRow>(
      db,
      sql`INSERT INTO account_deletions ${values({
        id,
        user_id: userId,
        requested_at: now,
        keep_from_day: utcDay(now),
        conversations: sql`(SELECT COUNT(*) FROM conversations WHERE user_id = ${userId})`,
        messages: sql`(SELECT COUNT(*) FROM messages WHERE user_id = ${userId})`,
        files: sql`(SELECT COUNT(*) FROM files WHERE user_id = ${userId} AND deleted_at IS NULL)`,
        api_keys: sql`(SELECT COUNT(*) FROM api_keys WHERE user_id = ${userId})`,
        lease_until: now + leaseMs,
      })} RETURNING *`,
    ),
    conversations: query(
      db,
      sql`INSERT INTO account_deletion_items (deletion_id, kind, ref)
          SELECT ${id}, 'conversation', id FROM conversations WHERE user_id = ${userId}`,
    ),
    keys: query(
      db,
      sql`INSERT INTO account_deletion_items (deletion_id, kind, ref)
          SELECT ${id}, 'api_key', key_hash FROM api_keys WHERE user_id = ${userId}`,
    ),
    deleteKeys: query(db, sql`DELETE FROM api_keys WHERE user_id = ${userId}`),
    // Hidden (404) from this commit on; the purge deletes their objects and rows (deletionFiles).
    hideFiles: query(
      db,
      sql`UPDATE files SET deleted_at = ${now} WHERE user_id = ${userId} AND deleted_at IS NULL`,
    ),
    streaming: query<{ conversation_id: string }>(db, streamingOf(userId, id)),
  });
  const deletion = r.deletion.results[0];
  if (!deletion) throw new Error("account deletion: the insert returned no row");
  return { deletion, streaming: r.streaming.results.map((row) => row.conversation_id) };
}

/** The deletion's conversations with an answer still `streaming` in D1. */
export async function streamingConversations(
  db: D1Database,
  deletion: AccountDeletionRow,
): Promise<string[]> {
  const { results } = await query<{ conversation_id: string }>(
    db,
    streamingOf(deletion.user_id, deletion.id),
  ).statement.all<{ conversation_id: string }>();
  return results.map((row) => row.conversation_id);
}

/**
 * Deletes up to `limit` messages of the deletion's conversations (one statement, bounded, so no
 * single write holds the database long however large the account) and returns how many it
 * deleted: fewer than `limit` means none is left.
 */
export async function deleteDeletionMessages(
  db: D1Database,
  deletion: AccountDeletionRow,
  limit: number,
): Promise<number> {
  const result = await query(
    db,
    sql`DELETE FROM messages WHERE id IN (
          SELECT m.id FROM account_deletion_items AS i
          JOIN messages AS m ON m.user_id = ${deletion.user_id} AND m.conversation_id = i.ref
          WHERE i.deletion_id = ${deletion.id} AND i.kind = 'conversation'
          LIMIT ${limit})`,
  ).statement.run();
  return result.meta.changes;
}

/**
 * Deletes the deletion's conversations (their messages are gone by now; what is left cascades)
 * and starts the user's change log over in a new epoch, in one batch: a sync token from before is
 * `410 sync_expired`, and the conversations' tombstones, logged by trigger, go with the old log.
 * Marks the deletion hidden.
 */
export async function finishHiding(db: D1Database, deletion: AccountDeletionRow, now: number): Promise<void> {
  await batch(db, {
    conversations: query(
      db,
      sql`DELETE FROM conversations WHERE user_id = ${deletion.user_id} AND id IN (
            SELECT ref FROM account_deletion_items WHERE deletion_id = ${deletion.id} AND kind = 'conversation')`,
    ),
    // Small rows (four ids each), deleted with their conversations: a file of the account is
    // never kept alive by a reference from a conversation that is gone.
    messageFiles: query(
      db,
      sql`DELETE FROM message_files WHERE user_id = ${deletion.user_id} AND conversation_id IN (
            SELECT ref FROM account_deletion_items WHERE deletion_id = ${deletion.id} AND kind = 'conversation')`,
    ),
    ...resetSyncEpochQueries(db, deletion.user_id),
    hidden: query(db, sql`UPDATE account_deletions SET hidden_at = ${now} WHERE id = ${deletion.id}`),
  });
}

/**
 * Up to `limit` of the user's hidden files (`deleted_at` set: by {@link beginAccountDeletion}, or
 * by a delete of the user's that was cut off), by id (`files_by_user`). Files uploaded after the
 * deletion are live and not among them.
 */
export async function deletionFiles(
  db: D1Database,
  deletion: AccountDeletionRow,
  limit: number,
): Promise<string[]> {
  const { results } = await query<{ id: string }>(
    db,
    sql`SELECT id FROM files WHERE user_id = ${deletion.user_id} AND deleted_at IS NOT NULL
        ORDER BY id LIMIT ${limit}`,
  ).statement.all<{ id: string }>();
  return results.map((row) => row.id);
}

/** Up to `limit` of the deletion's items of `kind` still to purge, after `after` in `ref` order. */
export async function deletionItems(
  db: D1Database,
  deletionId: string,
  kind: DeletionItemKind,
  limit: number,
  after = "",
): Promise<string[]> {
  const { results } = await query<{ ref: string }>(
    db,
    sql`SELECT ref FROM account_deletion_items
        WHERE deletion_id = ${deletionId} AND kind = ${kind} AND ref > ${after}
        ORDER BY ref LIMIT ${limit}`,
  ).statement.all<{ ref: string }>();
  return results.map((row) => row.ref);
}

/** Crosses purged items off (at most 90 per call: D1 binds at most 100 values per statement). */
export async function dropDeletionItems(
  db: D1Database,
  deletionId: string,
  kind: DeletionItemKind,
  refs: readonly string[],
): Promise<void> {
  if (refs.length === 0) return;
  await query(
    db,
    sql`DELETE FROM account_deletion_items
        WHERE deletion_id = ${deletionId} AND kind = ${kind} AND ref IN (${join(refs)})`,
  ).statement.run();
}

/**
 * Leases an unfinished deletion for `leaseMs` unless another run holds it: the row, or null
 * (finished, unknown, or leased).
 */
export async function claimAccountDeletion(
  db: D1Database,
  id: string,
  now: number,
  leaseMs: number,
): Promise<AccountDeletionRow | null> {
  return query<AccountDeletionRow>(
    db,
    sql`UPDATE account_deletions SET lease_until = ${now + leaseMs}
        WHERE id = ${id} AND finished_at IS NULL AND (lease_until IS NULL OR lease_until <= ${now})
        RETURNING *`,
  ).statement.first<AccountDeletionRow>();
}

/** Gives a lease up, so the next run (a retried DELETE, the cron) continues at once. */
export async function releaseAccountDeletion(db: D1Database, id: string): Promise<void> {
  await query(
    db,
    sql`UPDATE account_deletions SET lease_until = NULL WHERE id = ${id} AND finished_at IS NULL`,
  ).statement.run();
}

/**
 * Ids of unfinished deletions no run holds, oldest first, at most `limit`: the user's, or
 * (`userId` null) everyone's.
 */
export async function unfinishedAccountDeletions(
  db: D1Database,
  userId: string | null,
  now: number,
  limit: number,
): Promise<string[]> {
  const whose = userId === null ? empty : sql`AND user_id = ${userId}`;
  const { results } = await query<{ id: string }>(
    db,
    sql`SELECT id FROM account_deletions
        WHERE finished_at IS NULL ${whose} AND (lease_until IS NULL OR lease_until <= ${now})
        ORDER BY requested_at LIMIT ${limit}`,
  ).statement.all<{ id: string }>();
  return results.map((row) => row.id);
}

/**
 * The last step, once nothing is left outside D1: the usage ledger before the deletion's day is
 * deleted (records and daily totals); the records of that day and later stay, so the day's
 * consumption still counts against the budget and a late settlement is still counted once, but
 * lose their link to the deleted conversations. Quota reservations are left to expire or be
 * settled (they hold no content). The `users` row stays: the operator's settings for the user
 * (`daily_token_budget`, `rate_limit_tier`, `blocked_at`). Marks the deletion finished.
 */
export async function finishAccountDeletion(
  db: D1Database,
  deletion: AccountDeletionRow,
  now: number,
): Promise<void> {
  const { user_id: userId, keep_from_day: day } = deletion;
  await batch(db, {
    oldRecords: query(db, sql`DELETE FROM usage_records WHERE user_id = ${userId} AND day < ${day}`),
    detach: query(
      db,
      sql`UPDATE usage_records SET conversation_id = NULL
          WHERE user_id = ${userId} AND day >= ${day} AND conversation_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM conversations WHERE id = usage_records.conversation_id)`,
    ),
    oldDaily: query(db, sql`DELETE FROM usage_daily WHERE user_id = ${userId} AND day < ${day}`),
    finished: query(
      db,
      sql`UPDATE account_deletions SET finished_at = ${now}, lease_until = NULL WHERE id = ${deletion.id}`,
    ),
  });
}
