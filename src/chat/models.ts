/**
 * Context windows of the models edge-chat knows, in tokens (PROTOCOL.md §7.1). A model
 * missing from the table gets `DEFAULT_CONTEXT_TOKENS` from the configuration.
 * Dated snapshots (`qwen-plus-2025-07-28`) resolve to their family's entry.
 */
export const MODEL_CONTEXT_TOKENS: Readonly<Record<string, number>> = {
  "qwen-max": 32_768,
  "qwen-plus": 131_072,
  "qwen-turbo": 1_008_192,
  "qwen-flash": 1_000_000,
  "qwen-long": 10_000_000,
  "qwen3-max": 262_144,
  "qwen3.5-plus": 1_000_000,
  "qwen3.6-plus": 1_000_000,
  "qwen3-vl-plus": 262_144,
  "qwen3-vl-flash": 262_144,
  "qwq-plus": 131_072,
  "qwen-omni-turbo": 32_768,
  "qwen2.5-omni-7b": 32_768,
};

/** How a vision model turns an image into tokens (see `imageTokens` in `tokens.ts`). */
export interface ImageTokenRule {
  /** The side of the pixel square that makes one token: 28 (Qwen2.5-VL, QVQ, Omni) or 32 (Qwen3-VL). */
  patchPixels: number;
  /** The most tokens one image takes by default (its `max_pixels`), without `vl_high_resolution_images`. */
  maxTokens: number;
}

/**
 * The models that can see images (Qwen-VL, QVQ, Qwen-Omni, and the natively multimodal Qwen3.5
 * and Qwen3.6), by family, and how each counts an image. Any other model (qwen-plus, qwen-max,
 * qwen3-max, qwen-flash, …) takes text only: DashScope answers an image part with `input content
 * must be a string` (PROTOCOL.md §4), so a turn or request with an image for one is a 400 here
 * first. Families resolve like the tables above (`qwen3-vl-plus-2025-09-23` → `qwen3-vl`).
 *
 * Alibaba's vision guide ("image token" section, Model Studio, 2025): one token per 32×32 px for
 * Qwen3-VL (and the 2025-07/08 qwen-vl-plus/max snapshots), per 28×28 px for Qwen2.5-VL and QVQ,
 * plus 2 tokens around each image; at least 4 tokens, at most `max_pixels` (Qwen3-VL's default
 * 2,621,440 px = 2,560 tokens; Qwen2.5-VL's 1,003,520 px = 1,280 tokens), or 16,384 tokens with
 * `vl_high_resolution_images`. Qwen-Omni: 28×28 px, 4..1,280 tokens (PROTOCOL.md §4.1). Qwen3.5
 * and Qwen3.6 are taken to count as Qwen3-VL with the smaller patch, which errs high.
 */
export const VISION_MODELS: Readonly<Record<string, ImageTokenRule>> = {
  "qwen3-vl": { patchPixels: 32, maxTokens: 2_560 },
  "qwen3.5": { patchPixels: 28, maxTokens: 2_560 },
  "qwen3.6": { patchPixels: 28, maxTokens: 2_560 },
  "qwen-vl": { patchPixels: 28, maxTokens: 1_280 },
  "qwen2.5-vl": { patchPixels: 28, maxTokens: 1_280 },
  "qwen2-vl": { patchPixels: 28, maxTokens: 1_280 },
  qvq: { patchPixels: 28, maxTokens: 1_280 },
  "qwen-omni": { patchPixels: 28, maxTokens: 1_280 },
  "qwen2.5-omni": { patchPixels: 28, maxTokens: 1_280 },
  "qwen3-omni": { patchPixels: 28, maxTokens: 1_280 },
  "qwen3.5-omni": { patchPixels: 28, maxTokens: 1_280 },
};

/** How `model` counts images, or null when it cannot see images. */
export function imageRuleFor(model: string): ImageTokenRule | null {
  return modelEntry(VISION_MODELS, model) ?? null;
}

/**
 * The most prompt tokens a model takes, where DashScope documents a limit below the window
 * (the N of `Range of input length should be [1, N]`, PROTOCOL.md §7.1). Sending more is a 400
 * whatever `max_tokens` leaves free, so the history budget never goes above it.
 */
export const MODEL_MAX_INPUT_TOKENS: Readonly<Record<string, number>> = {
  // The 32K Qwen models take 30,720 (qwen-omni-turbo's documented row; 30720 among the seen limits).
  "qwen-max": 30_720,
  "qwen-omni-turbo": 30_720,
  "qwen2.5-omni-7b": 30_720,
  // qwen-plus-latest's `max_input_tokens` default (PROTOCOL.md §6).
  "qwen-plus": 129_024,
  "qwen-flash": 997_952,
  "qwen3-max": 258_048,
  "qwen3-vl-plus": 260_096,
  "qwen3-vl-flash": 260_096,
};

/**
 * The most answer tokens a model writes per choice (`max_tokens`' upper bound and DashScope's
 * default for it, PROTOCOL.md §6, §7.1), where documented. A model missing from the table gets
 * `DEFAULT_MAX_OUTPUT_TOKENS`. Only models listed here (or configured) are ever sent a
 * `max_tokens` they did not ask for: a value above a model's limit is a 400 (`Range of
 * max_tokens should be [1, N]`).
 */
export const MODEL_MAX_OUTPUT_TOKENS: Readonly<Record<string, number>> = {
  "qwen-max": 8_192,
  "qwen-plus": 32_768,
  "qwen-flash": 32_768,
  "qwen3-max": 65_536,
  "qwen3-vl-plus": 32_768,
  "qwen3-vl-flash": 32_768,
  "qwen-omni-turbo": 2_048,
  "qwen2.5-omni-7b": 2_048,
};

/**
 * The longest chain of thought of a thinking model per choice (`thinking_budget`'s upper bound),
 * where documented (PROTOCOL.md §7.1); others get `DEFAULT_MAX_REASONING_TOKENS`.
 */
export const MODEL_MAX_REASONING_TOKENS: Readonly<Record<string, number>> = {
  "qwen3-vl-plus": 81_920,
  "qwen3-vl-flash": 81_920,
};

/**
 * `model`'s maximum output per choice: configured (`overrides`), else the table's entry; null
 * when neither knows the model.
 */
export function knownMaxOutputTokens(model: string, overrides: Record<string, number> = {}): number | null {
  const configured = Object.hasOwn(overrides, model) ? overrides[model] : undefined;
  return configured ?? modelEntry(MODEL_MAX_OUTPUT_TOKENS, model) ?? null;
}

/** `model`'s maximum chain of thought per choice: configured, else the table's, else `fallback`. */
export function maxReasoningTokensFor(
  model: string,
  fallback: number,
  overrides: Record<string, number> = {},
): number {
  const configured = Object.hasOwn(overrides, model) ? overrides[model] : undefined;
  return configured ?? modelEntry(MODEL_MAX_REASONING_TOKENS, model) ?? fallback;
}

/** The context window of `model` in tokens; `overrides` (configuration) win over the table. */
export function contextTokensFor(
  model: string,
  fallback: number,
  overrides: Record<string, number> = {},
): number {
  const configured = Object.hasOwn(overrides, model) ? overrides[model] : undefined;
  return configured ?? modelEntry(MODEL_CONTEXT_TOKENS, model) ?? fallback;
}

/** The input limit of `model` in tokens, or null when only its window bounds the prompt; `overrides` win. */
export function maxInputTokensFor(model: string, overrides: Record<string, number> = {}): number | null {
  const configured = Object.hasOwn(overrides, model) ? overrides[model] : undefined;
  return configured ?? modelEntry(MODEL_MAX_INPUT_TOKENS, model) ?? null;
}

/**
 * The entry of `model` in a table keyed by model name: its own, else its family's, the longest
 * key that `model` continues with a `-` (snapshots and aliases: `qwen-plus-2025-07-28` and
 * `qwen-plus-latest` → `qwen-plus`, `qwen3-max-2026-01-23` → `qwen3-max`).
 * Only the table's own keys count, so a model named like an `Object` property finds nothing.
 */
export function modelEntry<T>(table: Readonly<Record<string, T>>, model: string): T | undefined {
  if (Object.hasOwn(table, model)) return table[model];
  let best: string | undefined;
  for (const family of Object.keys(table)) {
    if (model.startsWith(`${family}-`) && (!best || family.length > best.length)) best = family;
  }
  return best === undefined ? undefined : table[best];
}
