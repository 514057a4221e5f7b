import { dataUrlImageDimensions, type ImageDimensions } from "./image-dimensions";
import type { ImageTokenRule } from "./models";

/**
 * Cheap, conservative token estimates of everything a request sends as prompt, for budgeting
 * history and reserving quota. Qwen's tokenizer yields about four Latin characters per token
 * and about one token per CJK character; counting non-ASCII characters as whole tokens errs on
 * the side of sending less history, never too much.
 */
const LATIN_CHARS_PER_TOKEN = 4;
/** Role markers and separators the chat template adds around every message. */
export const MESSAGE_OVERHEAD_TOKENS = 4;
/** The chat template's reply priming (`<|im_start|>assistant\n`), once per request. */
export const REQUEST_OVERHEAD_TOKENS = 3;
/** `<|vision_start|>` and `<|vision_end|>` around each image ("+ 2" in Alibaba's image token formula). */
const IMAGE_MARKER_TOKENS = 2;
/** The fewest tokens an image takes (its `min_pixels` is 4 patches). */
const MIN_IMAGE_TOKENS = 4;
/** The cap on an image's tokens with `vl_high_resolution_images: true` (PROTOCOL.md §4). */
const HIGH_RESOLUTION_MAX_TOKENS = 16_384;
/**
 * How images are counted when the model's own rule is not given: 1 token per 28×28 px, at most
 * 1,280 tokens (PROTOCOL.md §4.1).
 */
const DEFAULT_IMAGE_RULE: ImageTokenRule = { patchPixels: 28, maxTokens: 1_280 };
/**
 * An image of unknown size at the default pixel cap (1,280 tokens and its 2 markers): every
 * image whose size cannot be read is assumed to reach the cap.
 */
export const IMAGE_TOKENS = DEFAULT_IMAGE_RULE.maxTokens + IMAGE_MARKER_TOKENS;
/** An image of unknown size with `vl_high_resolution_images: true`, whose cap rises to 16,384 tokens. */
export const HIGH_RESOLUTION_IMAGE_TOKENS = HIGH_RESOLUTION_MAX_TOKENS + IMAGE_MARKER_TOKENS;
/**
 * Audio (25 tokens per second, PROTOCOL.md §4.1) and a video file (frames sampled at `fps`)
 * have a length we cannot know without fetching them; each counts as one image at the cap.
 * Long media are under-estimated; DashScope's usage settles the ledger with the real count.
 * @alias of IMAGE_TOKENS by design: one name per rule (knip reads the tag and does not report a duplicate).
 */
export const MEDIA_PART_TOKENS = IMAGE_TOKENS;

/** What changes the size of media parts. */
export interface MediaOptions {
  /** `vl_high_resolution_images`: every image (and video frame) may take 16,384 tokens. */
  highResolutionImages?: boolean;
  /** How the model counts an image (`imageRuleFor`); the 28 px, 1,280-token rule when absent. */
  imageRule?: ImageTokenRule | null;
  /**
   * The pixel size of each uploaded file a `file` part names (null: unknown, as for files
   * uploaded before sizes were kept); a file missing here counts as an image at the cap.
   */
  files?: ReadonlyMap<string, ImageDimensions | null>;
}

/**
 * The tokens of one image of `size` pixels (null: unknown, counted at the cap), by Alibaba's
 * rule for Qwen-VL (see `VISION_MODELS`): each side rounded to whole patches, the area scaled
 * into [4, cap] patches keeping the aspect ratio, one token per patch, plus the two markers.
 */
export function imageTokens(size: ImageDimensions | null, media: MediaOptions = {}): number {
  const rule = media.imageRule ?? DEFAULT_IMAGE_RULE;
  const cap = media.highResolutionImages ? HIGH_RESOLUTION_MAX_TOKENS : rule.maxTokens;
  if (!size)
    return media.highResolutionImages ? HIGH_RESOLUTION_IMAGE_TOKENS : rule.maxTokens + IMAGE_MARKER_TOKENS;
  const f = rule.patchPixels;
  const { width, height } = size;
  let h = Math.max(f, Math.round(height / f) * f);
  let w = Math.max(f, Math.round(width / f) * f);
  const maxPixels = cap * f * f;
  const minPixels = MIN_IMAGE_TOKENS * f * f;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(f, Math.floor(height / beta / f) * f);
    w = Math.max(f, Math.floor(width / beta / f) * f);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / f) * f;
    w = Math.ceil((width * beta) / f) * f;
  }
  const tokens = Math.min(cap, Math.max(MIN_IMAGE_TOKENS, (h * w) / (f * f)));
  return tokens + IMAGE_MARKER_TOKENS;
}

/** Estimated tokens of a text. */
export function estimateTextTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) < 128) ascii++;
    else other++;
  }
  return Math.ceil(ascii / LATIN_CHARS_PER_TOKEN) + other;
}

/** Estimated tokens of a JSON value as the model reads it (its JSON text); 0 for `undefined`. */
export function estimateJsonTokens(value: unknown): number {
  return value === undefined ? 0 : estimateTextTokens(JSON.stringify(value));
}

/**
 * Estimated tokens of a message's content (a string or content parts): text as text; an image
 * (`image_url`, or a `file` part naming an upload) by its pixel size where known (a data URL's
 * header, the upload's stored size), else at the cap; each frame of a `video` list at the cap;
 * audio and video files as one image.
 */
export function estimateContentTokens(content: unknown, media: MediaOptions = {}): number {
  if (content == null) return 0;
  if (typeof content === "string") return estimateTextTokens(content);
  if (!Array.isArray(content)) return estimateJsonTokens(content);
  const image = imageTokens(null, media);
  let total = 0;
  for (const part of content as unknown[]) {
    const p = (part ?? {}) as {
      type?: unknown;
      text?: unknown;
      video?: unknown;
      image_url?: { url?: unknown };
      file?: { file_id?: unknown };
    };
    if (p.type === "text") total += estimateTextTokens(typeof p.text === "string" ? p.text : "");
    else if (p.type === "image_url") total += imageUrlTokens(p.image_url?.url, media);
    else if (p.type === "file") {
      const id = p.file?.file_id;
      const size = typeof id === "string" ? media.files?.get(id) : undefined;
      total += imageTokens(size ?? null, media);
    } else if (p.type === "video" && Array.isArray(p.video)) total += image * p.video.length;
    else total += MEDIA_PART_TOKENS;
  }
  return total;
}

/** An `image_url` part: a data URL by the size its header states, any other URL at the cap. */
function imageUrlTokens(url: unknown, media: MediaOptions): number {
  const size = typeof url === "string" && url.startsWith("data:") ? dataUrlImageDimensions(url) : null;
  return imageTokens(size, media);
}

/** Estimated tokens of one chat message as sent upstream. */
export function estimateMessageTokens(
  message: {
    content?: unknown;
    tool_calls?: unknown;
    tool_call_id?: unknown;
    reasoning_content?: unknown;
  },
  media: MediaOptions = {},
): number {
  let total = MESSAGE_OVERHEAD_TOKENS + estimateContentTokens(message.content, media);
  if (message.tool_calls) total += estimateJsonTokens(message.tool_calls);
  if (typeof message.tool_call_id === "string") total += estimateTextTokens(message.tool_call_id);
  if (typeof message.reasoning_content === "string") total += estimateTextTokens(message.reasoning_content);
  return total;
}

/** The request parameters that the model reads as prompt text. */
export interface PromptParameters {
  tools?: unknown;
  tool_choice?: unknown;
  response_format?: unknown;
}

/**
 * Estimated prompt tokens of the parameters the chat template renders into the prompt: the tool
 * definitions (and a forced `tool_choice` naming one of them) and a `json_schema` response
 * format (its schema is the instruction the answer follows). `enable_search` adds search
 * results to the input as well; their size is unknowable before the call.
 */
export function estimateParameterTokens(p: PromptParameters): { tools: number; responseFormat: number } {
  const format = p.response_format as { type?: unknown } | undefined;
  return {
    tools:
      estimateJsonTokens(p.tools) +
      (typeof p.tool_choice === "object" && p.tool_choice !== null ? estimateJsonTokens(p.tool_choice) : 0),
    responseFormat: format?.type === "json_schema" ? estimateJsonTokens(format) : 0,
  };
}

/**
 * Estimated prompt tokens of a whole request body as sent upstream: every message (with
 * `vl_high_resolution_images` applied to its images), the parameters read as prompt, and the
 * reply priming. This is what DashScope counts against the model's input limit.
 */
export function estimateRequestTokens(
  request: PromptParameters & {
    messages: readonly Parameters<typeof estimateMessageTokens>[0][];
    vl_high_resolution_images?: boolean;
  },
  media: Omit<MediaOptions, "highResolutionImages"> = {},
): number {
  const options = { ...media, highResolutionImages: request.vl_high_resolution_images === true };
  const parts = estimateParameterTokens(request);
  return (
    request.messages.reduce((n, m) => n + estimateMessageTokens(m, options), 0) +
    parts.tools +
    parts.responseFormat +
    REQUEST_OVERHEAD_TOKENS
  );
}

/** The room a reply takes in the context window, in tokens, by what bounds it. */
export interface ReplyReserve {
  /** The answer: `max_tokens`, or the default reserve. */
  answer: number;
  /** The chain of thought (0 without thinking): `thinking_budget`, or the default reserve. */
  reasoning: number;
}

/**
 * The reply's room in the window: `max_tokens` for the answer, and when the model thinks, its
 * `thinking_budget` on top (`max_tokens` does not bound the chain of thought, PROTOCOL.md §2.6).
 * Unset, each takes `defaultReplyTokens`, but at most a quarter of `contextTokens`: DashScope's
 * own defaults are the model's maximum output and maximum chain of thought (80K tokens for
 * Qwen3-VL, PROTOCOL.md §7.1), more than many windows hold, so a reserve the caller never asked
 * for must not fill a small window on its own. Pass `Infinity` for the uncapped worst case.
 */
export function replyReserve(
  p: { max_tokens?: number; thinking_budget?: number },
  thinking: boolean,
  defaultReplyTokens: number,
  contextTokens: number,
): ReplyReserve {
  const fallback = Math.min(defaultReplyTokens, Math.floor(contextTokens / 4));
  return {
    answer: p.max_tokens ?? fallback,
    reasoning: thinking ? (p.thinking_budget ?? fallback) : 0,
  };
}
