import { describeIssue, type SchemaError } from "./issues";
import { findJsonInputProblem } from "./json-input";
import { type GenerationParameters, generationParametersSchema, MAX_PARAMETERS_BYTES } from "./parameters";
import { type ChatCompletionRequest, chatCompletionRequestSchema } from "./request";

/** The outcome of validating a body: the typed value, or the first problem found. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: SchemaError };

/**
 * Validates a complete DashScope Chat Completions request, including the cross-field rules.
 * Nesting and text are checked first ({@link findJsonInputProblem}), then the size of everything
 * but `messages` ({@link MAX_PARAMETERS_BYTES}). On failure, `error.param` is the dotted path of
 * the field at fault.
 */
export function parseChatCompletionRequest(body: unknown): ParseResult<ChatCompletionRequest> {
  const problem = findJsonInputProblem(body);
  if (problem) return { ok: false, error: problem };
  if (isRecord(body)) {
    const { messages: _messages, ...rest } = body;
    const size = parametersSizeProblem(rest, 'The request\'s parameters (all fields but "messages")');
    if (size) return { ok: false, error: size };
  }
  const result = chatCompletionRequestSchema.safeParse(body, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: describeIssue(result.error.issues[0]!) };
}

/**
 * Validates generation `parameters` on their own (conversation defaults or a turn's overrides):
 * nesting and text ({@link findJsonInputProblem}), at most {@link MAX_PARAMETERS_BYTES} of JSON,
 * then the schema. `paramPrefix` (e.g. `"parameters"`) is prepended to `error.param` and named
 * in the message.
 */
export function parseGenerationParameters(
  body: unknown,
  paramPrefix?: string,
): ParseResult<GenerationParameters> {
  const problem =
    findJsonInputProblem(body, paramPrefix) ??
    (isRecord(body)
      ? parametersSizeProblem(body, paramPrefix ? `"${paramPrefix}"` : "The parameters")
      : null);
  if (problem) return { ok: false, error: { ...problem, param: problem.param || (paramPrefix ?? "") } };
  const result = generationParametersSchema.safeParse(body, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: describeIssue(result.error.issues[0]!, paramPrefix) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parameters over {@link MAX_PARAMETERS_BYTES} of JSON (UTF-8). Call only on a value whose depth
 * {@link findJsonInputProblem} has bounded: `JSON.stringify` recurses.
 */
function parametersSizeProblem(value: Record<string, unknown>, subject: string): SchemaError | null {
  const json = JSON.stringify(value);
  // UTF-8 takes at least one byte per UTF-16 code unit and at most three.
  if (json.length * 3 <= MAX_PARAMETERS_BYTES) return null;
  const bytes = json.length > MAX_PARAMETERS_BYTES ? json.length : new TextEncoder().encode(json).byteLength;
  if (bytes <= MAX_PARAMETERS_BYTES) return null;
  return {
    message: `${subject} must be at most ${MAX_PARAMETERS_BYTES} bytes of JSON; they are sent to the model with every request.`,
    param: "",
  };
}
