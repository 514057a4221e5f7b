import type { FileView } from "../resources/file";
import { newId } from "./ids";
import type { D1Queries } from "./sessions";
import { nowMs, toIso } from "./time";

/** A row of `files` (migration 0011): metadata only; the bytes are the R2 object {@link fileObjectKey}. */
export interface FileRow {
  id: string;
  user_id: string;
  name: string;
  media_type: string;
  bytes: number;
  sha256: string;
  /** Pixel size from the image's header (migration 0013); null when unknown (uploaded before it). */
  width: number | null;
  height: number | null;
  created_at: number;
  deleted_at: number | null;
}

/** The file's R2 key: its id alone, so the key names nothing of the user or of the file's name. */
export const fileObjectKey = (id: string): string => `files/${id}`;

/** Maps a row to the API's File. */
export function fileFromRow(row: FileRow): FileView {
  return {
    id: row.id,
    object: "file",
    filename: row.name,
    content_type: row.media_type,
    bytes: row.bytes,
    sha256: row.sha256,
    created_at: toIso(row.created_at),
  };
}

/** SHA-256 of `bytes`, lowercase hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Stores a file of `userId`: the bytes in R2 first, then the row, so a row always has its object.
 * A failed insert removes the object again; a crash between the two leaves an object no row names
 * (unreachable through the API).
 */
export async function createFile(
  db: D1Queries,
  bucket: R2Bucket,
  userId: string,
  file: {
    name: string;
    mediaType: string;
    bytes: Uint8Array;
    /** The pixel size its header states, if known. */
    dimensions: { width: number; height: number } | null;
  },
): Promise<FileRow> {
  const row: FileRow = {
    id: newId(),
    user_id: userId,
    name: file.name,
    media_type: file.mediaType,
    bytes: file.bytes.byteLength,
    sha256: await sha256Hex(file.bytes),
    width: file.dimensions?.width ?? null,
    height: file.dimensions?.height ?? null,
    created_at: nowMs(),
    deleted_at: null,
  };
  const key = fileObjectKey(row.id);
  await bucket.put(key, file.bytes, {
    httpMetadata: { contentType: row.media_type },
    sha256: row.sha256,
  });
  try {
    await db
      .prepare(
        `INSERT INTO files (id, user_id, name, media_type, bytes, sha256, width, height, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        row.id,
        row.user_id,
        row.name,
        row.media_type,
        row.bytes,
        row.sha256,
        row.width,
        row.height,
        row.created_at,
      )
      .run();
  } catch (err) {
    await bucket.delete(key);
    throw err;
  }
  return row;
}

/** The user's live file `id`, or `null` (unknown, another user's, or being deleted). */
export async function findFile(db: D1Queries, userId: string, id: string): Promise<FileRow | null> {
  return db
    .prepare("SELECT * FROM files WHERE id = ? AND user_id = ? AND deleted_at IS NULL")
    .bind(id, userId)
    .first<FileRow>();
}

/**
 * Deletes the user's file `id`, even while messages refer to it (the user asked for it to go):
 * hides the row (`deleted_at`) and deletes the `message_files` rows naming it in one batch, then
 * removes the R2 object, then the row. The messages keep their file part; the file is simply gone
 * (src/store/SCHEMA.md, "File lifecycle"). Returns whether the user had such a file. A run cut off
 * after the first step leaves a hidden row, never served again, which the cron's sweep finishes.
 */
export async function deleteFile(
  db: D1Queries,
  bucket: R2Bucket,
  userId: string,
  id: string,
): Promise<boolean> {
  const [hidden] = await db.batch<{ id: string }>([
    db
      .prepare(
        "UPDATE files SET deleted_at = ? WHERE id = ? AND user_id = ? AND deleted_at IS NULL RETURNING id",
      )
      .bind(nowMs(), id, userId),
    db.prepare("DELETE FROM message_files WHERE file_id = ? AND user_id = ?").bind(id, userId),
  ]);
  if (!hidden?.results[0]) return false;
  await bucket.delete(fileObjectKey(id));
  await db.prepare("DELETE FROM files WHERE id = ? AND user_id = ?").bind(id, userId).run();
  return true;
}
