/**
 * The DashScope OpenAI-compatible Chat Completions request: every documented parameter with
 * its bounds (`../shared/dashscope/chat-completions-reference.txt`, PROTOCOL.md §2.6, §4–§6),
 * and the rules between fields. Schemas are built once, at module load.
 */
export {
  cacheControlSchema,
  contentPartSchema,
  INPUT_AUDIO_FORMATS,
  MAX_VIDEO_FRAMES,
  messageContentSchema,
  MIN_VIDEO_FRAMES,
  textContentSchema,
  textPartSchema,
  type ContentPart,
  type MessageContent,
  type TextPart,
} from "./schema/content";
export { MAX_DATA_URI_BYTES, mediaUrlProblem } from "./schema/media-url";
export { chatMessageSchema, toolCallSchema, type ChatMessage, type ToolCallParam } from "./schema/messages";
export {
  audioOutputSchema,
  generationParametersSchema,
  generationParametersShape,
  MAX_PRESENCE_PENALTY,
  MAX_SEED,
  MAX_TOP_LOGPROBS,
  modalitiesSchema,
  responseFormatSchema,
  stopSchema,
  TEMPERATURE_LIMIT,
  type GenerationParameters,
  type ResponseFormat,
} from "./schema/parameters";
export { AGENT_SEARCH_STRATEGIES, SEARCH_STRATEGIES, searchOptionsSchema, type SearchOptions } from "./schema/search";
export { toolChoiceSchema, toolSchema, toolsSchema, TOOL_NAME_PATTERN, type ToolChoice, type ToolDefinition } from "./schema/tools";
export { checkRequestRules, findRuleIssues, type RuleInput, type RuleIssue } from "./schema/rules";
export { chatCompletionRequestSchema, MAX_CHOICES, type ChatCompletionRequest } from "./schema/request";
export { describeIssue, type SchemaError } from "./schema/issues";
export { parseChatCompletionRequest, parseGenerationParameters, toInvalidRequest, type ParseResult } from "./schema/parse";
