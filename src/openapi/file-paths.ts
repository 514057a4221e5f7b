/** Operations of the file routes (`/v1/files`, `../shared/API.md` §2.4). */
import { MAX_FILENAME_LENGTH } from "../resources/file";
import { errorResponses, json, pathId } from "./operations";

const IMAGE_TYPES = [
  "image/jpeg",
  "image/png",
  "image/webp",
  "image/heic",
  "image/heic-sequence",
  "image/heif",
  "image/heif-sequence",
];

const binary = { type: "string", contentMediaType: "application/octet-stream" };

/** `paths` entries of the file routes. */
export function filePaths(): Record<string, Record<string, unknown>> {
  return {
    "/v1/files": {
      post: {
        operationId: "uploadFile",
        tags: ["Files"],
        summary: "Upload an image",
        description:
          "A `multipart/form-data` body with one file in the part `file` (other text fields, such as the openai SDK's " +
          "`purpose`, are ignored), or the raw bytes under any other `Content-Type` with the name in `?filename=`. " +
          "The kind is decided by the file's leading bytes (JPEG, PNG, WebP, HEIC/HEIF), never by the declared type or " +
          "the name: anything else is 415. At most `MAX_FILE_BYTES` (default 7 MiB, 7,340,032 bytes): DashScope refuses " +
          "a data URL longer than 10,485,760 characters and base64 makes 7.5 MiB about that long. Over the limit is 413 " +
          "and nothing is stored.",
        parameters: [
          {
            name: "filename",
            in: "query",
            required: false,
            description: "The file's name, for a raw upload (a multipart part carries its own).",
            schema: { type: "string", maxLength: MAX_FILENAME_LENGTH },
          },
        ],
        requestBody: {
          required: true,
          content: {
            "multipart/form-data": {
              schema: {
                type: "object",
                required: ["file"],
                properties: { file: binary },
              },
            },
            "image/*": { schema: binary },
          },
        },
        responses: {
          201: { description: "Stored.", content: json("File") },
          ...errorResponses([400, 401, 413, 415], "Error"),
        },
      },
    },
    "/v1/files/{id}": {
      parameters: [pathId("file")],
      get: {
        operationId: "getFile",
        tags: ["Files"],
        summary: "A file's metadata",
        responses: {
          200: { description: "The file.", content: json("File") },
          ...errorResponses([401, 404], "Error"),
        },
      },
      delete: {
        operationId: "deleteFile",
        tags: ["Files"],
        summary: "Delete a file and its bytes",
        description:
          "Deletes the file even while messages refer to it: the messages keep their file part, and the file is gone " +
          "(404 here, absent from exports). Files are also deleted with the last conversation referring to them, with " +
          "the account, and, when no message refers to them, `UNATTACHED_FILE_TTL_HOURS` after the upload.",
        responses: { 204: { description: "Deleted." }, ...errorResponses([401, 404], "Error") },
      },
    },
    "/v1/files/{id}/content": {
      parameters: [pathId("file")],
      get: {
        operationId: "getFileContent",
        tags: ["Files"],
        summary: "A file's bytes, with their media type",
        description:
          "The owner's, with a bearer token; or anyone's holding a signed URL (`expires` and `signature`, made for " +
          "DashScope when the deployment sets `FILE_URL_BASE` and `FILE_URL_SECRET`), without a token until it expires.",
        // A signed URL is its own credential.
        security: [{ bearerAuth: [] }, {}],
        parameters: [
          {
            name: "expires",
            in: "query",
            required: false,
            description: "A signed URL's end, in Unix seconds.",
            schema: { type: "string", pattern: "^[0-9]{1,12}$" },
          },
          {
            name: "signature",
            in: "query",
            required: false,
            description: "HMAC-SHA256 (hex) under `FILE_URL_SECRET` of `<id>.<expires>`.",
            schema: { type: "string", pattern: "^[0-9a-f]{64}$" },
          },
        ],
        responses: {
          200: {
            description: "The bytes exactly as uploaded.",
            content: Object.fromEntries(IMAGE_TYPES.map((type) => [type, { schema: binary }])),
          },
          ...errorResponses([401, 403, 404], "Error"),
        },
      },
    },
  };
}
