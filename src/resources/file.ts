import * as z from "zod";
import { isoTime, timeOrderedId } from "./common";

/** Longest file name kept, in UTF-16 code units (most file systems stop at 255). */
export const MAX_FILENAME_LENGTH = 255;

/** An uploaded file (`POST /v1/files`): its metadata; the bytes are at `GET /v1/files/{id}/content`. */
export const fileSchema = z.object({
  id: timeOrderedId,
  object: z.literal("file"),
  filename: z
    .string()
    .max(MAX_FILENAME_LENGTH)
    .describe(
      "The name the client gave (the multipart part's or `?filename=`), or `upload` when it gave none.",
    ),
  content_type: z
    .string()
    .describe(
      "Decided by the file's leading bytes, whatever the client declared: `image/jpeg`, `image/png`, `image/webp`, `image/heic`, `image/heic-sequence`, `image/heif` or `image/heif-sequence`.",
    ),
  bytes: z.int().nonnegative().describe("Size in bytes."),
  sha256: z.string().describe("SHA-256 of the bytes, lowercase hex."),
  created_at: isoTime,
});

export type FileView = z.infer<typeof fileSchema>;
