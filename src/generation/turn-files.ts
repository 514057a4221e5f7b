import { sendableMessages } from "../chat/file-images";
import { fileIdsIn, mentionsFilePart, type TurnContent } from "../chat/file-parts";
import { imageDimensions } from "../chat/image-dimensions";
import { decodeImageDataUrl } from "../chat/inline-images";
import type { Config } from "../config";
import type { ChatCompletionRequestBody } from "../dashscope/client";
import { type FileRef, findUserFiles } from "../store/file-lookup";
import { createFile } from "../store/files";
import type { D1Queries } from "../store/sessions";
import type { HistoryRow } from "../store/turns";

/**
 * The files of a turn: those its new message names (checked by the route) and those its history
 * names, looked up in D1 only when the history has file parts (one statement; a turn without
 * files reads nothing). A history file missing from the result was deleted.
 */
export async function turnFiles(
  db: D1Queries,
  userId: string,
  history: readonly HistoryRow[],
  newFiles: readonly FileRef[],
): Promise<Map<string, FileRef>> {
  const files = new Map(newFiles.map((f) => [f.id, f]));
  const named = new Set<string>();
  for (const row of history) {
    if (!mentionsFilePart(row.content_json)) continue;
    for (const id of fileIdsIn(JSON.parse(row.content_json!))) if (!files.has(id)) named.add(id);
  }
  for (const file of await findUserFiles(db, userId, [...named])) files.set(file.id, file);
  return files;
}

/** The name an image sent inline (a data URL) is stored under. */
const INLINE_IMAGE_NAME = "image";

/**
 * Stores each base64 data URL image of a user message's content as a file (R2 and a `files` row,
 * as an upload is; the route has checked each is an image of an upload's kinds and size), and
 * returns the content as the message stores it, each such part a file part, with the new files'
 * ids: no D1 row holds image bytes. The request sent upstream keeps the data URL as given.
 */
export async function storeInlineImages(
  db: D1Queries,
  bucket: R2Bucket,
  userId: string,
  content: TurnContent,
): Promise<{ content: TurnContent; fileIds: string[] }> {
  if (typeof content === "string") return { content, fileIds: [] };
  const fileIds: string[] = [];
  const stored: Exclude<TurnContent, string> = [];
  for (const part of content) {
    const image = part.type === "image_url" ? decodeImageDataUrl(part.image_url.url) : null;
    if (!image?.mediaType) {
      stored.push(part);
      continue;
    }
    const row = await createFile(db, bucket, userId, {
      name: INLINE_IMAGE_NAME,
      mediaType: image.mediaType,
      bytes: image.bytes,
      dimensions: imageDimensions(image.bytes),
    });
    fileIds.push(row.id);
    stored.push({ type: "file", file: { file_id: row.id } });
  }
  return { content: stored, fileIds };
}

/** Whether a request's messages have a file part (to be turned into an image). */
export function hasFileParts(request: ChatCompletionRequestBody): boolean {
  return request.messages.some((m) => fileIdsIn((m as { content?: unknown }).content).length > 0);
}

/** The turn's request with its file parts turned into images (`sendableMessages`). */
export async function withImages(
  request: ChatCompletionRequestBody,
  files: ReadonlyMap<string, FileRef>,
  env: { FILES: R2Bucket },
  config: Config,
): Promise<ChatCompletionRequestBody> {
  const messages = await sendableMessages(
    request.messages as { content?: unknown }[],
    files,
    env.FILES,
    config,
  );
  return { ...request, messages };
}
