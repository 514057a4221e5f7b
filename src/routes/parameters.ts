import { type GenerationParameters, parseGenerationParameters, toInvalidRequest } from "../dashscope/schema";
import { invalidRequest } from "../errors/api-error";

/**
 * Validates `parameters` of a conversation (its defaults) or of a turn (its overrides), the one
 * way for both, so stored defaults can never hold what a turn would refuse: the DashScope
 * parameter schema with its nesting, text and size limits (`parseGenerationParameters`), and
 * `n` fixed at 1 (a conversation turn produces one answer; `n` up to 4 belongs to
 * `/v1/chat/completions`). `n: 1` is accepted and dropped. Throws 400 `invalid_request` with
 * `param` under `parameters.`.
 */
export function parseConversationParameters(value: unknown): GenerationParameters {
  let body = value;
  if (typeof value === "object" && value !== null && !Array.isArray(value) && "n" in value) {
    const { n, ...rest } = value as Record<string, unknown>;
    if (n !== 1)
      throw invalidRequest("A conversation turn produces one answer: n must be 1.", "parameters.n");
    body = rest;
  }
  const parsed = parseGenerationParameters(body, "parameters");
  if (!parsed.ok) throw toInvalidRequest(parsed.error);
  return parsed.value;
}
