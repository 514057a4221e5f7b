import { type ApiError, invalidRequest } from "../../errors/api-error";
import { describeIssue, type SchemaError } from "./issues";
import { type GenerationParameters, generationParametersSchema } from "./parameters";
import { type ChatCompletionRequest, chatCompletionRequestSchema } from "./request";

/** The outcome of validating a body: the typed value, or the first problem found. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: SchemaError };

/**
 * Validates a complete DashScope Chat Completions request, including the cross-field rules.
 * On failure, `error.param` is the dotted path of the field at fault.
 */
export function parseChatCompletionRequest(body: unknown): ParseResult<ChatCompletionRequest> {
  const result = chatCompletionRequestSchema.safeParse(body, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: describeIssue(result.error.issues[0]!) };
}

/**
 * Validates generation `parameters` on their own (conversation defaults or a turn's overrides).
 * `paramPrefix` (e.g. `"parameters"`) is prepended to `error.param` and named in the message.
 */
export function parseGenerationParameters(
  body: unknown,
  paramPrefix?: string,
): ParseResult<GenerationParameters> {
  const result = generationParametersSchema.safeParse(body, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: describeIssue(result.error.issues[0]!, paramPrefix) };
}

/** The 400 `invalid_request` response for a validation failure. */
export function toInvalidRequest(error: SchemaError): ApiError {
  return invalidRequest(error.message, error.param || undefined);
}
