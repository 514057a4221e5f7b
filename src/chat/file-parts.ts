import * as z from "zod";
import { contentPartSchema, MAX_CONTENT_PARTS } from "../dashscope/schema/content";

/**
 * A content part naming an uploaded file (`POST /v1/files`), the OpenAI SDKs' file part:
 * `{"type":"file","file":{"file_id":"…"}}`. It is edge-chat's, not DashScope's: a message stores
 * it as is, and the upstream request gets the file's image instead (`file-images.ts`).
 */
export const filePartSchema = z.strictObject({
  type: z.literal("file"),
  file: z.strictObject({ file_id: z.string().min(1).max(64) }),
});

export type FilePart = z.infer<typeof filePartSchema>;
type DashScopePart = z.infer<typeof contentPartSchema>;

/** A user message's content in a turn: a string, or DashScope's parts and file parts. */
export const turnContentSchema = z.union(
  [
    z.string(),
    z
      .array(z.discriminatedUnion("type", [...contentPartSchema.options, filePartSchema]))
      .min(1)
      .max(MAX_CONTENT_PARTS),
  ],
  { error: "must be a string or a non-empty array of content parts" },
);

export type TurnContent = string | (DashScopePart | FilePart)[];

/** A file part's place in a request: its index in the content array and the field an error names. */
export interface FilePartRef {
  index: number;
  fileId: string;
  /** `content.1.file.file_id`, `messages.2.content.0.file.file_id`. */
  param: string;
}

/** The file parts of a turn's content, in order. */
export function filePartsOf(content: TurnContent, prefix = "content"): FilePartRef[] {
  if (typeof content === "string") return [];
  return content.flatMap((part, index) =>
    part.type === "file"
      ? [{ index, fileId: part.file.file_id, param: `${prefix}.${index}.file.file_id` }]
      : [],
  );
}

/** Whether stored content (a message row's parsed `content`) has a file part: a cheap test before parsing. */
export function mentionsFilePart(contentJson: string | null): boolean {
  return contentJson?.includes('"type":"file"') === true;
}

/** The file ids a stored content (parsed JSON, any shape) names in its file parts. */
export function fileIdsIn(content: unknown): string[] {
  if (!Array.isArray(content)) return [];
  const ids: string[] = [];
  for (const part of content as unknown[]) {
    const parsed = filePartSchema.safeParse(part);
    if (parsed.success) ids.push(parsed.data.file.file_id);
  }
  return ids;
}

/**
 * Stands in for a file part while a `/v1/chat/completions` request is validated by DashScope's
 * schema, which knows no file part: an image part (what the file part becomes upstream, so the
 * request's rules see an image where one will be) whose URL is a 1×1 PNG. Every placeholder is
 * replaced by the file's image before the request is estimated or sent (`withFileImages`).
 */
const PLACEHOLDER_IMAGE = {
  type: "image_url",
  image_url: {
    url: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=",
  },
} as const;

/** A file part of a `/v1/chat/completions` request: its message and its place there. */
export interface RequestFilePart extends FilePartRef {
  message: number;
}

/**
 * Takes the file parts out of a raw `/v1/chat/completions` body before DashScope's schema
 * validates it: each part of a `user` message's content array with `"type": "file"` is checked
 * ({@link filePartSchema}; a malformed one is the first problem, named `messages.N.content.M…`)
 * and replaced by {@link PLACEHOLDER_IMAGE}. Returns the body to validate (the same object when
 * it has no file part) and the parts taken out. A file part anywhere else is left for the schema,
 * which refuses it as it refuses any unknown part.
 */
export function takeFileParts(
  body: unknown,
): { body: unknown; parts: RequestFilePart[] } | { error: { message: string; param: string } } {
  if (!isRecord(body) || !Array.isArray(body.messages)) return { body, parts: [] };
  const parts: RequestFilePart[] = [];
  const messages = (body.messages as unknown[]).map((message, m) => {
    if (!isRecord(message) || message.role !== "user" || !Array.isArray(message.content)) return message;
    const content = (message.content as unknown[]).map((part, index) => {
      if (!isRecord(part) || part.type !== "file") return part;
      const param = `messages.${m}.content.${index}`;
      const parsed = filePartSchema.safeParse(part);
      if (!parsed.success) {
        parts.push({ message: -1, index, fileId: "", param });
        return part;
      }
      parts.push({ message: m, index, fileId: parsed.data.file.file_id, param: `${param}.file.file_id` });
      return PLACEHOLDER_IMAGE;
    });
    return { ...message, content };
  });
  const bad = parts.find((p) => p.message < 0);
  if (bad)
    return {
      error: {
        message: `"${bad.param}" must be {"type":"file","file":{"file_id":"<id of an uploaded file>"}}.`,
        param: bad.param,
      },
    };
  return parts.length ? { body: { ...body, messages }, parts } : { body, parts };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
