/**
 * The DashScope OpenAI-compatible Chat Completions request: every documented parameter with
 * its bounds (`../shared/dashscope/chat-completions-reference.txt`, PROTOCOL.md §2.6, §4–§6),
 * and the rules between fields. Schemas are built once, at module load.
 */
export {
  type ContentPart,
  cacheControlSchema,
  contentPartSchema,
  INPUT_AUDIO_FORMATS,
  MAX_CONTENT_PARTS,
  MAX_VIDEO_FPS,
  MAX_VIDEO_FRAMES,
  type MessageContent,
  MIN_VIDEO_FRAMES,
  messageContentSchema,
  type TextPart,
  textContentSchema,
  textPartSchema,
} from "./schema/content";
export { describeIssue, type SchemaError } from "./schema/issues";
export { findJsonInputProblem, MAX_JSON_DEPTH } from "./schema/json-input";
export { MAX_DATA_URI_BYTES, mediaUrlProblem } from "./schema/media-url";
export { type ChatMessage, chatMessageSchema, type ToolCallParam, toolCallSchema } from "./schema/messages";
export {
  audioOutputSchema,
  type GenerationParameters,
  generationParametersSchema,
  generationParametersShape,
  MAX_INPUT_TOKENS,
  MAX_INT32,
  MAX_OUTPUT_TOKENS,
  MAX_PARAMETERS_BYTES,
  MAX_PRESENCE_PENALTY,
  MAX_SEED,
  MAX_TOP_LOGPROBS,
  modalitiesSchema,
  type ResponseFormat,
  responseFormatSchema,
  stopSchema,
  TEMPERATURE_LIMIT,
} from "./schema/parameters";
export {
  type ParseResult,
  parseChatCompletionRequest,
  parseGenerationParameters,
} from "./schema/parse";
export { type ChatCompletionRequest, chatCompletionRequestSchema, MAX_CHOICES } from "./schema/request";
export {
  checkRequestRules,
  findParameterRuleIssues,
  findRuleIssues,
  type RuleInput,
  type RuleIssue,
} from "./schema/rules";
export {
  AGENT_SEARCH_STRATEGIES,
  SEARCH_STRATEGIES,
  type SearchOptions,
  searchOptionsSchema,
} from "./schema/search";
export {
  MAX_TOOLS,
  TOOL_NAME_PATTERN,
  type ToolChoice,
  type ToolDefinition,
  toolChoiceSchema,
  toolSchema,
  toolsSchema,
} from "./schema/tools";
