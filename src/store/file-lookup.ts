import { type FileRow, fileObjectKey } from "./files";
import type { D1Queries } from "./sessions";
import { query, sql } from "./sql";

/** What a message's file part needs of its file: the type and size of the bytes, the pixel size. */
export type FileRef = Pick<FileRow, "id" | "name" | "media_type" | "bytes" | "width" | "height">;

/**
 * The user's live files among `ids` (one statement, any number of ids: they go as one JSON
 * array, not as one bound value each), in no set order. Unknown ids, other users' files and
 * files being deleted are simply missing.
 */
export async function findUserFiles(
  db: D1Queries,
  userId: string,
  ids: readonly string[],
): Promise<FileRef[]> {
  if (ids.length === 0) return [];
  const { results } = await query<FileRef>(
    db,
    sql`SELECT id, name, media_type, bytes, width, height FROM files
        WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))
          AND user_id = ${userId} AND deleted_at IS NULL`,
  ).statement.all<FileRef>();
  return results;
}

/**
 * A live file by id alone, whoever owns it: for a signed content URL, whose signature is the
 * authority (`routes/file-content.ts`). Null when unknown or being deleted.
 */
async function findLiveFile(db: D1Queries, id: string): Promise<FileRow | null> {
  return db.prepare("SELECT * FROM files WHERE id = ? AND deleted_at IS NULL").bind(id).first<FileRow>();
}

/**
 * {@link findLiveFile} on every shard at once: a signed URL names the file alone, not its owner,
 * so its shard is unknown. File ids are random (`store/ids.ts`), so at most one shard has the row;
 * the lookup costs one round trip (the slowest shard's), and a failing shard fails it.
 */
export async function findLiveFileOnShards(
  shards: readonly D1Database[],
  id: string,
): Promise<FileRow | null> {
  const rows = await Promise.all(shards.map((db) => findLiveFile(db, id)));
  return rows.find((row) => row !== null) ?? null;
}

/** The bytes of a file's R2 object, or null when the object is gone. */
export async function readFileBytes(bucket: R2Bucket, id: string): Promise<Uint8Array | null> {
  const object = await bucket.get(fileObjectKey(id));
  return object ? new Uint8Array(await object.arrayBuffer()) : null;
}
