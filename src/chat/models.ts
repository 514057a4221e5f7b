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
