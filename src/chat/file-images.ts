import type { Config } from "../config";
import { logError } from "../log/log";
import { type FileRef, readFileBytes } from "../store/file-lookup";
import { fileIdsIn, filePartSchema } from "./file-parts";
import { signedFileUrl } from "./file-urls";
import { toDataUrl } from "./inline-images";

/** Where a request's file parts get their images from. */
export interface FileImageSource {
  /** The caller's live files the parts may name (a part naming another file is a deleted file). */
  files: ReadonlyMap<string, FileRef>;
  /** The bucket of the bytes (binding `FILES`), for data URLs. */
  bucket: R2Bucket;
  /** Signed URLs instead of data URLs, when the deployment configures them. */
  urls: Config["fileUrls"];
  /**
   * Data URLs only: the most image bytes one request carries (the newest images first). An
   * older image past it is not sent again; the request's memory stays bounded however many
   * photos the conversation holds. Signed URLs cost a few hundred bytes each and have no bound.
   */
  inlineBudgetBytes: number;
  now: number;
}

/** What the model reads instead of an image whose file was deleted. */
const DELETED_IMAGE = { type: "text", text: "[image deleted]" } as const;
/** What the model reads instead of an older image past the request's data URL budget. */
const NOT_RESENT_IMAGE = { type: "text", text: "[an earlier image, not sent again]" } as const;

/**
 * Prepares the images of every file part in `contents` (the messages' contents, oldest first, the
 * newest being the turn's own) and returns the mapping of one content to what DashScope gets: each
 * file part an `image_url` part, a data URL of the R2 object or a signed URL; a deleted file or an
 * image past the budget a short text part. Every R2 read runs at once; a file named twice is read
 * once. Contents without file parts map to themselves.
 */
export async function fileImages(
  contents: readonly unknown[],
  source: FileImageSource,
): Promise<(content: unknown) => unknown> {
  const chosen = new Set<string>();
  let budget = source.inlineBudgetBytes;
  for (let i = contents.length - 1; i >= 0; i--) {
    for (const id of fileIdsIn(contents[i])) {
      const file = source.files.get(id);
      if (!file || chosen.has(id)) continue;
      if (!source.urls) {
        if (file.bytes > budget) continue;
        budget -= file.bytes;
      }
      chosen.add(id);
    }
  }
  const urls = new Map<string, string | null>(
    await Promise.all(
      [...chosen].map(async (id): Promise<[string, string | null]> => {
        const file = source.files.get(id)!;
        if (source.urls) return [id, await signedFileUrl(source.urls, id, source.now)];
        const bytes = await readFileBytes(source.bucket, id);
        return [id, bytes ? toDataUrl(file.media_type, bytes) : null];
      }),
    ),
  );
  return (content) => {
    if (!Array.isArray(content) || fileIdsIn(content).length === 0) return content;
    return (content as unknown[]).map((part) => {
      const parsed = filePartSchema.safeParse(part);
      if (!parsed.success) return part;
      const id = parsed.data.file.file_id;
      const url = urls.get(id);
      if (url) return { type: "image_url", image_url: { url } };
      return url === null || !source.files.has(id) ? DELETED_IMAGE : NOT_RESENT_IMAGE;
    });
  };
}

/**
 * `messages` with each file part turned into the image DashScope reads ({@link fileImages}), for
 * a turn or a `/v1/chat/completions` request: data URLs within `MAX_INLINE_IMAGE_BYTES` (newest
 * first), or signed URLs. Never rejects, so it may run
 * alongside a D1 write: when R2 fails, every file part becomes a deleted file's note, logged.
 */
export async function sendableMessages<M extends { content?: unknown }>(
  messages: readonly M[],
  files: ReadonlyMap<string, FileRef>,
  bucket: R2Bucket,
  config: Pick<Config, "fileUrls" | "maxInlineImageBytes">,
): Promise<M[]> {
  let map: (content: unknown) => unknown;
  try {
    map = await fileImages(
      messages.map((m) => m.content),
      {
        files,
        bucket,
        urls: config.fileUrls,
        inlineBudgetBytes: config.maxInlineImageBytes,
        now: Date.now(),
      },
    );
  } catch (err) {
    logError("file_images.failed", { error: err });
    map = (content) =>
      Array.isArray(content)
        ? (content as unknown[]).map((part) =>
            filePartSchema.safeParse(part).success ? DELETED_IMAGE : part,
          )
        : content;
  }
  return messages.map((m) => {
    const content = map(m.content);
    // The same object where nothing changed: callers tell sent messages from their own by it.
    return content === m.content ? m : { ...m, content };
  });
}
