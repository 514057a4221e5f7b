/**
 * Estimated cost of an answer from a price table (USD per million tokens, PROTOCOL.md §7.2).
 * DashScope bills the whole request at the tier chosen by its input size; cached input tokens
 * (implicit context cache hits) cost a fraction of the input price.
 */
import type { ModelPrice } from "../config";
import type { TokenUsage } from "../store/types";
import { modelEntry } from "./models";

/** Share of the input price billed for implicit cache hits. */
export const CACHED_INPUT_SHARE = 0.2;
const MILLION = 1_000_000;

/** International list prices, USD per 1M tokens. Override or extend with `MODEL_PRICES`. */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  "qwen-max": { tiers: [{ input: 1.6, output: 6.4 }] },
  "qwen-plus": { tiers: [{ input: 0.4, output: 1.2 }] },
  "qwen-turbo": { tiers: [{ input: 0.05, output: 0.2 }] },
  "qwen-flash": { tiers: [{ input: 0.05, output: 0.4 }] },
  "qwen3-max": {
    tiers: [
      { upToPromptTokens: 32_000, input: 1.2, output: 6 },
      { upToPromptTokens: 128_000, input: 2.4, output: 12 },
      { input: 3, output: 15 },
    ],
  },
};

/** The price entry of `model` (exact, else its family: `qwen-plus-2025-07-28` → `qwen-plus`). */
export function priceFor(model: string, overrides: Record<string, ModelPrice> = {}): ModelPrice | null {
  return modelEntry({ ...MODEL_PRICES, ...overrides }, model) ?? null;
}

/** Cost in USD of one answer's usage; 0 for a model without a price. */
export function costUsd(
  model: string,
  usage: TokenUsage,
  overrides: Record<string, ModelPrice> = {},
): number {
  const price = priceFor(model, overrides);
  if (!price || price.tiers.length === 0) return 0;
  const tier =
    price.tiers.find((t) => t.upToPromptTokens === undefined || usage.prompt_tokens <= t.upToPromptTokens) ??
    price.tiers.at(-1)!;
  const cached = Math.min(usage.cached_tokens, usage.prompt_tokens);
  const cachedPrice = tier.cachedInput ?? tier.input * CACHED_INPUT_SHARE;
  const cost =
    ((usage.prompt_tokens - cached) * tier.input +
      cached * cachedPrice +
      usage.completion_tokens * tier.output) /
    MILLION;
  return Math.round(cost * 1e9) / 1e9;
}
