import { contentText } from "./directives.mjs";

/**
 * Prompt-token estimate used for `usage.prompt_tokens` and the context-window check. Like DashScope, it counts
 * the whole request the model reads, not only the messages:
 *
 *   prompt_tokens = ceil(chars / 4) + 4 × messages + 3 + media tokens
 *
 * where `chars` counts every message's text (string content or `text` parts), the JSON of assistant
 * `tool_calls`, each `tool_call_id`, the JSON of the request's `tools`, and the JSON of a `json_schema`
 * `response_format` (the schema is part of the prompt). Media tokens: each image (`image_url`, and each frame
 * of a `video` list) 1280 tokens, the default per-image cap (16384 with `vl_high_resolution_images: true`);
 * an `input_audio` or `video_url` part 1280. Real tokenizers differ; tests only rely on the formula being
 * stable and monotonic.
 */
const CHARS_PER_TOKEN = 4;
const PER_MESSAGE_OVERHEAD_TOKENS = 4;
const REPLY_PRIMING_TOKENS = 3;
const IMAGE_TOKENS = 1280;
const HIGH_RESOLUTION_IMAGE_TOKENS = 16_384;
const MEDIA_PART_TOKENS = 1280;

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
  const image = body?.vl_high_resolution_images === true ? HIGH_RESOLUTION_IMAGE_TOKENS : IMAGE_TOKENS;
  let chars = 0;
  let media = 0;
  for (const m of messages) {
    chars += contentText(m?.content).length;
    if (m?.tool_calls !== undefined) chars += JSON.stringify(m.tool_calls).length;
    if (typeof m?.tool_call_id === "string") chars += m.tool_call_id.length;
    for (const part of Array.isArray(m?.content) ? m.content : []) {
      if (!part || typeof part !== "object" || part.type === "text") continue;
      if (part.type === "image_url") media += image;
      else if (part.type === "video" && Array.isArray(part.video)) media += image * part.video.length;
      else media += MEDIA_PART_TOKENS;
    }
  }
  if (Array.isArray(body?.tools)) chars += JSON.stringify(body.tools).length;
  if (body?.response_format?.type === "json_schema") chars += JSON.stringify(body.response_format).length;
  return (
    Math.ceil(chars / CHARS_PER_TOKEN) +
    PER_MESSAGE_OVERHEAD_TOKENS * messages.length +
    REPLY_PRIMING_TOKENS +
    media
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
