import type { Config } from "../config";
import { ApiError, invalidRequest } from "../errors/api-error";
import { type FileRef, findUserFiles } from "../store/file-lookup";
import type { D1Queries } from "../store/sessions";
import { filePartsOf, type TurnContent } from "./file-parts";
import { decodeImageDataUrl } from "./inline-images";

/**
 * Checks the images of a turn's user message before anything is stored or asked of DashScope, and
 * returns the files its file parts name (each once):
 * - at most `MAX_FILES_PER_MESSAGE` images (file parts and base64 data URLs): 400 naming `content`;
 * - each file part names a live file of the caller: else 400 naming the part
 *   (`content.N.file.file_id`), the same sentence whether the id is unknown, another user's or
 *   deleted, so it tells nothing of other users' files;
 * - each base64 data URL image is an image an upload could be (JPEG, PNG, WebP, HEIC/HEIF by its
 *   leading bytes: 415 naming the part) within `MAX_FILE_BYTES` (413): the turn stores it as a file;
 * - in data URL mode, all of them together within `MAX_INLINE_IMAGE_BYTES` (413 naming `content`).
 * One D1 statement when the message names files; none otherwise.
 */
export async function checkTurnImages(
  db: D1Queries,
  userId: string,
  content: TurnContent,
  config: Pick<Config, "maxFilesPerMessage" | "maxFileBytes" | "maxInlineImageBytes" | "fileUrls">,
): Promise<FileRef[]> {
  if (typeof content === "string") return [];
  const refs = filePartsOf(content);
  const inline = content.flatMap((part, index) =>
    part.type === "image_url" && part.image_url.url.startsWith("data:") ? [index] : [],
  );
  if (refs.length + inline.length > config.maxFilesPerMessage)
    throw invalidRequest(
      `A message may carry at most ${config.maxFilesPerMessage} images (file parts and data URLs); this one has ${refs.length + inline.length}.`,
      "content",
    );
  let inlineBytes = 0;
  for (const index of inline) {
    const part = content[index];
    if (part?.type !== "image_url") continue;
    const image = decodeImageDataUrl(part.image_url.url);
    if (!image) continue;
    const param = `content.${index}.image_url.url`;
    if (image.mediaType === null)
      throw new ApiError(
        415,
        "unsupported_media_type",
        "The data URL is not an image of a supported kind (JPEG, PNG, WebP, HEIC/HEIF), judged by its content.",
        param,
      );
    if (image.bytes.byteLength > config.maxFileBytes)
      throw new ApiError(
        413,
        "payload_too_large",
        `The image exceeds the limit of ${config.maxFileBytes} bytes.`,
        param,
      );
    inlineBytes += image.bytes.byteLength;
  }
  const ids = [...new Set(refs.map((r) => r.fileId))];
  const found = new Map((await findUserFiles(db, userId, ids)).map((f) => [f.id, f]));
  const missing = refs.find((r) => !found.has(r.fileId));
  if (missing) throw invalidRequest(`${missing.param} is not a file you uploaded.`, missing.param);
  const files = ids.map((id) => found.get(id)!);
  checkInlineBytes(
    files.reduce((n, f) => n + f.bytes, inlineBytes),
    config,
    "content",
  );
  return files;
}

/**
 * Data URL mode only (no `FILE_URL_BASE`): a message's images go to DashScope inside the request,
 * so together they must fit `MAX_INLINE_IMAGE_BYTES` (413 naming `param`); with signed URLs they
 * cost a few hundred bytes each.
 */
export function checkInlineBytes(
  bytes: number,
  config: Pick<Config, "maxInlineImageBytes" | "fileUrls">,
  param: string,
): void {
  if (config.fileUrls === null && bytes > config.maxInlineImageBytes)
    throw new ApiError(
      413,
      "payload_too_large",
      `This message's images are ${bytes} bytes together; at most ${config.maxInlineImageBytes} bytes of images can go in one message. Send fewer or smaller photos.`,
      param,
    );
}
