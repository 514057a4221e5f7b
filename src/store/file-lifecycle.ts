import type { FileView } from "../resources/file";
import { type FileRow, fileFromRow, fileObjectKey } from "./files";
import type { D1Queries } from "./sessions";
import { query, sql } from "./sql";

/*
 * Deleting uploaded files (migrations 0011, 0012, 0014): a delete first hides the row
 * (`deleted_at`), in the same transaction as whatever made the file go (its conversation's delete,
 * the user's DELETE, the account deletion, the TTL sweep), then deletes the R2 object, then the
 * row. A delete cut off after the first step leaves a hidden row, which the cron finishes
 * ({@link hiddenFiles}). The steps and the sweeps are in `src/store/SCHEMA.md`, "File lifecycle".
 *
 * Lists of ids travel as one JSON text read with `json_each`: D1 binds at most 100 values per
 * statement (developers.cloudflare.com/d1/platform/limits/), and one bound text has no such bound.
 */

/** R2's `delete` takes at most 1,000 keys per call (developers.cloudflare.com/r2/api/workers/workers-api-reference/). */
export const R2_DELETE_KEYS = 1000;

/**
 * The two statements that detach a conversation's files, to run in its delete's batch, before the
 * conversation's row goes: `hide` marks deleted (and returns) the user's live files that this
 * conversation refers to and no other conversation does; `detach` deletes the conversation's
 * `message_files` rows. A conversation of another user has no rows under `userId`: nothing happens.
 */
export function detachConversationFilesQueries(
  db: D1Queries,
  userId: string,
  conversationId: string,
  now: number,
) {
  return {
    hide: query<{ id: string }>(
      db,
      sql`UPDATE files SET deleted_at = ${now}
          WHERE user_id = ${userId} AND deleted_at IS NULL
            AND id IN (SELECT file_id FROM message_files
                       WHERE conversation_id = ${conversationId} AND user_id = ${userId})
            AND NOT EXISTS (SELECT 1 FROM message_files AS other
                            WHERE other.file_id = files.id AND other.conversation_id <> ${conversationId})
          RETURNING id`,
    ),
    detach: query(
      db,
      sql`DELETE FROM message_files WHERE conversation_id = ${conversationId} AND user_id = ${userId}`,
    ),
  };
}

/**
 * Finishes the delete of hidden files: their R2 objects (up to {@link R2_DELETE_KEYS} per call),
 * then their rows (only while still hidden). Deleting an object or a row that is already gone is
 * no error, so a run may repeat another's work. Returns how many rows it deleted.
 */
export async function purgeHiddenFiles(
  db: D1Queries,
  bucket: R2Bucket,
  ids: readonly string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  for (let at = 0; at < ids.length; at += R2_DELETE_KEYS)
    await bucket.delete(ids.slice(at, at + R2_DELETE_KEYS).map(fileObjectKey));
  const result = await query(
    db,
    sql`DELETE FROM files WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))
          AND deleted_at IS NOT NULL`,
  ).statement.run();
  return result.meta.changes;
}

/** Up to `limit` hidden files (any user's) whose delete started before `before` (epoch ms), oldest first. */
export async function hiddenFiles(db: D1Queries, before: number, limit: number): Promise<string[]> {
  const { results } = await query<{ id: string }>(
    db,
    sql`SELECT id FROM files WHERE deleted_at IS NOT NULL AND deleted_at < ${before}
        ORDER BY deleted_at, id LIMIT ${limit}`,
  ).statement.all<{ id: string }>();
  return results.map((row) => row.id);
}

/** A position in the walk over live files by age: after the file `(c, i)`. */
export interface AgeCursor {
  /** `created_at` (epoch ms). */
  c: number;
  /** `id`. */
  i: string;
}

/**
 * One step of the sweep of unattached files: reads up to `scan` live files (any user's) created
 * before `createdBefore`, oldest first after `after`, and hides those no message refers to (checked
 * again in the `UPDATE` itself, so a file a turn attached meanwhile stays). Returns the hidden ids
 * (to purge with {@link purgeHiddenFiles}) and where the next step starts (`null`: the range is done).
 */
export async function hideUnattachedFiles(
  db: D1Queries,
  createdBefore: number,
  after: AgeCursor | null,
  scan: number,
  now: number,
): Promise<{ hidden: string[]; next: AgeCursor | null }> {
  const from = after ?? { c: -1, i: "" };
  const { results } = await query<{ id: string; created_at: number; attached: number }>(
    db,
    sql`SELECT id, created_at,
               EXISTS (SELECT 1 FROM message_files WHERE file_id = files.id) AS attached
        FROM files
        WHERE deleted_at IS NULL AND created_at < ${createdBefore} AND (created_at, id) > (${from.c}, ${from.i})
        ORDER BY created_at, id LIMIT ${scan}`,
  ).statement.all<{ id: string; created_at: number; attached: number }>();
  const last = results.at(-1);
  const next = results.length === scan && last ? { c: last.created_at, i: last.id } : null;
  const candidates = results.filter((row) => !row.attached).map((row) => row.id);
  if (candidates.length === 0) return { hidden: [], next };
  const hidden = await query<{ id: string }>(
    db,
    sql`UPDATE files SET deleted_at = ${now}
        WHERE id IN (SELECT value FROM json_each(${JSON.stringify(candidates)}))
          AND deleted_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM message_files WHERE file_id = files.id)
        RETURNING id`,
  ).statement.all<{ id: string }>();
  return { hidden: hidden.results.map((row) => row.id), next };
}

/** Which of `ids` have a `files` row (live or hidden). */
export async function existingFileIds(db: D1Queries, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { results } = await query<{ id: string }>(
    db,
    sql`SELECT id FROM files WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`,
  ).statement.all<{ id: string }>();
  return new Set(results.map((row) => row.id));
}

/**
 * One page of a user's live files, by id, after `after` (`""`: from the start), at most `limit`;
 * only the files conversation `conversationId` refers to when it is given. For the exports.
 */
export async function listLiveFiles(
  db: D1Queries,
  userId: string,
  after: string,
  limit: number,
  conversationId?: string,
): Promise<FileView[]> {
  // A conversation's walk is driven by its references (message_files_by_conversation, in file_id
  // order), so it costs its own files, not all of the user's; a file two messages refer to once.
  const text =
    conversationId === undefined
      ? sql`SELECT * FROM files WHERE user_id = ${userId} AND deleted_at IS NULL AND id > ${after}
            ORDER BY id LIMIT ${limit}`
      : sql`SELECT f.* FROM message_files AS m JOIN files AS f ON f.id = m.file_id
            WHERE m.conversation_id = ${conversationId} AND m.user_id = ${userId} AND m.file_id > ${after}
              AND f.user_id = ${userId} AND f.deleted_at IS NULL
            GROUP BY m.file_id ORDER BY m.file_id LIMIT ${limit}`;
  const { results } = await query<FileRow>(db, text).statement.all<FileRow>();
  return results.map(fileFromRow);
}
