import { contentText } from "./directives.mjs";

/**
 * Prompt-token estimate used for `usage.prompt_tokens` and the context-window check:
 *
 *   prompt_tokens = ceil(chars / 4) + 4 × messages + 3
 *
 * where `chars` counts every message's text (string content or `text` parts), the JSON of assistant
 * `tool_calls`, each `tool_call_id`, and the JSON of the request's `tools`. Non-text parts (images, audio)
 * are not counted. Real tokenizers differ; tests only rely on the formula being stable and monotonic.
 */
const CHARS_PER_TOKEN = 4;
const PER_MESSAGE_OVERHEAD_TOKENS = 4;
const REPLY_PRIMING_TOKENS = 3;

/** Maximum input tokens per model (the N in `Range of input length should be [1, N]`). */
export const MODEL_MAX_INPUT_TOKENS = Object.freeze({
  "qwen-plus": 129_024,
  "qwen-max": 30_720,
  "qwen-turbo": 129_024,
  "qwen3-max": 258_048,
  "qwen-flash": 997_952,
  // Deliberately tiny so tests can overflow it with a few kilobytes of text.
  "qwen-tiny-context": 2_048,
});
export const DEFAULT_MAX_INPUT_TOKENS = 129_024;

/**
 * Estimates the prompt tokens of a chat request body.
 * @param {any} body parsed request body (messages already validated as a non-empty array)
 * @returns {number}
 */
export function estimatePromptTokens(body) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  let chars = 0;
  for (const m of messages) {
    chars += contentText(m?.content).length;
    if (m?.tool_calls !== undefined) chars += JSON.stringify(m.tool_calls).length;
    if (typeof m?.tool_call_id === "string") chars += m.tool_call_id.length;
  }
  if (Array.isArray(body?.tools)) chars += JSON.stringify(body.tools).length;
  return (
    Math.ceil(chars / CHARS_PER_TOKEN) + PER_MESSAGE_OVERHEAD_TOKENS * messages.length + REPLY_PRIMING_TOKENS
  );
}

/**
 * The input limit for a model; a positive integer `max_input_tokens` in the body lowers it, as on DashScope.
 * @param {string} model
 * @param {any} body
 * @returns {number}
 */
export function maxInputTokens(model, body) {
  const table = /** @type {Record<string, number>} */ (MODEL_MAX_INPUT_TOKENS);
  const limit = table[model] ?? DEFAULT_MAX_INPUT_TOKENS;
  const requested = body?.max_input_tokens;
  return Number.isInteger(requested) && requested > 0 ? Math.min(limit, requested) : limit;
}
