import {
  findParameterRuleIssues,
  type GenerationParameters,
  parseGenerationParameters,
} from "../dashscope/schema";
import { invalidRequest } from "../errors/api-error";
import { toInvalidRequest } from "../errors/invalid-request";

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

/**
 * A conversation's defaults: {@link parseConversationParameters}, and the rules between
 * parameters as a turn that sets none of its own would meet them (turns always stream
 * upstream), so the defaults alone cannot make every turn a 400 (`thinking_budget` with
 * `enable_thinking: false`, `tool_choice` without `tools`, …). Rules that need the messages
 * are left to each turn.
 */
export function parseConversationDefaults(value: unknown): GenerationParameters {
  const parameters = parseConversationParameters(value);
  const issue = findParameterRuleIssues({ ...parameters, stream: true })[0];
  if (issue) {
    const param = `parameters.${issue.path.join(".")}`;
    throw invalidRequest(`"${param}" ${issue.message}.`, param);
  }
  return parameters;
}
