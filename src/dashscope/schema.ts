/**
 * The DashScope OpenAI-compatible Chat Completions request: every documented parameter with
 * its bounds (`../shared/dashscope/chat-completions-reference.txt`, PROTOCOL.md §2.6, §4–§6),
 * and the rules between fields. Schemas are built once, at module load.
 */
export { MAX_CONTENT_PARTS, messageContentSchema, textContentSchema } from "./schema/content";
export { describeIssue, type SchemaError } from "./schema/issues";
export { findJsonInputProblem, MAX_JSON_DEPTH } from "./schema/json-input";
export {
  type GenerationParameters,
  generationParametersSchema,
  MAX_OUTPUT_TOKENS,
  MAX_PARAMETERS_BYTES,
  modalitiesSchema,
} from "./schema/parameters";
export { parseChatCompletionRequest, parseGenerationParameters } from "./schema/parse";
export { type ChatCompletionRequest, chatCompletionRequestSchema } from "./schema/request";
export { findParameterRuleIssues } from "./schema/rules";
export { MAX_TOOLS } from "./schema/tools";
