/**
 * Types of the API's JSON as tests read it, inferred from the zod schemas that also generate the
 * OpenAPI document (test/openapi.test.ts validates real responses against that document).
 */
import type { z } from "zod";
import type {
  chatCompletionSchema,
  messageCompletedEventSchema,
  messageDeltaEventSchema,
  messageFailedEventSchema,
  messageSchema,
  openAiErrorBodySchema,
  turnResultDocSchema,
  turnStartedEventSchema,
} from "../../src/openapi/schemas";
import type { errorBodySchema } from "../../src/resources/errors";
import type { usageReportSchema } from "../../src/resources/usage";

/** A message as the API returns it (`tool_calls`, `usage` and `error` typed). */
export type ApiMessage = z.infer<typeof messageSchema>;
/** The reply of a `stream: false` turn. */
export type TurnResult = z.infer<typeof turnResultDocSchema>;
/** `{ error: { code, message, param? } }`. */
export type ErrorBody = z.infer<typeof errorBodySchema>;
/** OpenAI's error envelope (`/v1/chat/completions`, `/v1/models`). */
export type OpenAiErrorBody = z.infer<typeof openAiErrorBodySchema>;
/** A `chat.completion` from `/v1/chat/completions`. */
export type ChatCompletion = z.infer<typeof chatCompletionSchema>;
/** The body of `GET /v1/usage`. */
export type UsageReport = z.infer<typeof usageReportSchema>;

/** The answer stream's payloads (API.md "The answer stream"). */
export type TurnStartedData = z.infer<typeof turnStartedEventSchema>;
export type MessageDeltaData = z.infer<typeof messageDeltaEventSchema>;
export type MessageCompletedData = z.infer<typeof messageCompletedEventSchema>;
export type MessageFailedData = z.infer<typeof messageFailedEventSchema>;
