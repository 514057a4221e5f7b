import * as z from "zod";

/**
 * Every error code of the HTTP contract (`../shared/API.md`, "Errors"). The `ErrorCode` type, the
 * zod enum of the response schemas and the status table (`src/errors/codes.ts`) all derive from it.
 */
export const ERROR_CODES = [
  "invalid_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "turn_in_progress",
  "conversation_deleted",
  "sync_expired",
  "payload_too_large",
  "unsupported_media_type",
  "content_filtered",
  "rate_limited",
  "quota_exceeded",
  "upstream_error",
  "upstream_timeout",
  "internal_error",
  "shard_unavailable",
  "resharding",
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** {@link ERROR_CODES} as a zod enum, for the response schemas. */
export const errorCodeSchema = z.enum(ERROR_CODES);

/** `{ "error": { code, message, param? } }`, the body of every error outside the OpenAI-compatible routes. */
export const errorBodySchema = z.object({
  error: z.object({
    code: errorCodeSchema,
    message: z.string().describe("A human sentence; safe to show to developers, not meant for end users."),
    param: z
      .string()
      .optional()
      .describe("Dotted path of the one field at fault, e.g. `parameters.temperature`."),
  }),
});

/** The JSON body of every error response. */
export type ErrorBody = z.infer<typeof errorBodySchema>;
