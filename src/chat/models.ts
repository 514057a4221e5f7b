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

/** The context window of `model` in tokens; `overrides` (configuration) win over the table. */
export function contextTokensFor(
  model: string,
  fallback: number,
  overrides: Record<string, number> = {},
): number {
  const configured = overrides[model];
  if (configured !== undefined) return configured;
  const exact = MODEL_CONTEXT_TOKENS[model];
  if (exact !== undefined) return exact;
  // Longest family prefix wins: "qwen-plus-latest" → "qwen-plus", "qwen3-max-2026-01-23" → "qwen3-max".
  let best: string | undefined;
  for (const family of Object.keys(MODEL_CONTEXT_TOKENS)) {
    if (model.startsWith(`${family}-`) && (!best || family.length > best.length)) best = family;
  }
  return best ? MODEL_CONTEXT_TOKENS[best]! : fallback;
}
