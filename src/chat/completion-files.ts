import type { Config } from "../config";
import type { ChatCompletionRequest } from "../dashscope/schema";
import { invalidRequest } from "../errors/api-error";
import { type FileRef, findUserFiles } from "../store/file-lookup";
import type { D1Queries } from "../store/sessions";
import type { RequestFilePart } from "./file-parts";
import { cannotSeeImages, hasImage } from "./images";
import { imageRuleFor } from "./models";
import { checkInlineBytes } from "./turn-images";

/** The file parts of a `/v1/chat/completions` request and the caller's files they name. */
export interface CompletionFiles {
  parts: RequestFilePart[];
  files: ReadonlyMap<string, FileRef>;
  bucket: R2Bucket;
}

/**
 * Checks a validated `/v1/chat/completions` request's images before its quota is reserved or
 * DashScope is called (nothing is stored either way: the endpoint stores no message, so its files
 * stay unattached): a model that cannot see images is 400 naming `model` for any image part, a
 * message with more than `MAX_FILES_PER_MESSAGE` file parts is 400 naming its `content`, and each
 * file part must name a live file of the caller (400 naming the part, one sentence for unknown,
 * foreign and deleted ids). Returns the files (one D1 statement when there are file parts).
 */
export async function checkCompletionFiles(
  db: D1Queries,
  userId: string,
  request: ChatCompletionRequest,
  parts: readonly RequestFilePart[],
  config: Pick<Config, "maxFilesPerMessage" | "maxInlineImageBytes" | "fileUrls">,
): Promise<Map<string, FileRef>> {
  if (imageRuleFor(request.model) === null && request.messages.some((m) => hasImage(m.content)))
    throw cannotSeeImages(request.model);
  const perMessage = new Map<number, number>();
  for (const part of parts) {
    const count = (perMessage.get(part.message) ?? 0) + 1;
    perMessage.set(part.message, count);
    if (count > config.maxFilesPerMessage)
      throw invalidRequest(
        `A message may carry at most ${config.maxFilesPerMessage} file parts.`,
        `messages.${part.message}.content`,
      );
  }
  const ids = [...new Set(parts.map((p) => p.fileId))];
  const files = new Map((await findUserFiles(db, userId, ids)).map((f) => [f.id, f]));
  const missing = parts.find((p) => !files.has(p.fileId));
  if (missing) throw invalidRequest(`${missing.param} is not a file you uploaded.`, missing.param);
  for (const m of perMessage.keys()) {
    const bytes = parts.filter((p) => p.message === m).reduce((n, p) => n + files.get(p.fileId)!.bytes, 0);
    checkInlineBytes(bytes, config, `messages.${m}.content`);
  }
  return files;
}

/**
 * The request's messages with each file part back in its place (where the schema saw a
 * placeholder image): what the prompt estimate counts and what becomes the sent images.
 */
export function withFileParts<M extends { content?: unknown }>(
  messages: readonly M[],
  parts: readonly RequestFilePart[],
): M[] {
  if (parts.length === 0) return [...messages];
  return messages.map((message, m) => {
    const here = parts.filter((p) => p.message === m);
    if (here.length === 0 || !Array.isArray(message.content)) return message;
    const content = [...(message.content as unknown[])];
    for (const p of here) content[p.index] = { type: "file", file: { file_id: p.fileId } };
    return { ...message, content };
  });
}
