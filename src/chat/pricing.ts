/**
 * Estimated cost of an answer from a price table (USD per million tokens, PROTOCOL.md §7.2).
 * DashScope bills the whole request at the tier chosen by its input size; context-cache hits
 * cost a fraction of the input price and explicit-cache creation a surcharge (§8), so
 *
 *   cost = (prompt − cached − created)·input + cached·hit + created·creation + completion·output
 *
 * with `hit` the implicit or the explicit hit price by the call's cache type.
 */
import type { ModelPrice } from "../config";
import type { CacheUsage, TokenUsage } from "../store/types";
import { modelEntry } from "./models";

/** Share of the input price billed for implicit cache hits (§8). */
export const CACHED_INPUT_SHARE = 0.2;
/** Share of the input price billed for explicit cache hits (§8). */
export const EXPLICIT_CACHED_INPUT_SHARE = 0.1;
/** Share of the input price billed for tokens written to the explicit cache (§8). */
export const CACHE_CREATION_INPUT_SHARE = 1.25;
/** A call that created nothing in the explicit cache. */
const NO_EXPLICIT_CACHE: CacheUsage = { creation_tokens: 0, explicit: false };
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

/**
 * Cost in USD of one answer's usage; 0 for a model without a price. `cache` says what of the
 * prompt was written to the explicit cache and which hit price applies (implicit by default).
 */
export function costUsd(
  model: string,
  usage: TokenUsage,
  overrides: Record<string, ModelPrice> = {},
  cache: CacheUsage = NO_EXPLICIT_CACHE,
): number {
  const price = priceFor(model, overrides);
  if (!price || price.tiers.length === 0) return 0;
  const tier =
    price.tiers.find((t) => t.upToPromptTokens === undefined || usage.prompt_tokens <= t.upToPromptTokens) ??
    price.tiers.at(-1)!;
  const cached = Math.min(usage.cached_tokens, usage.prompt_tokens);
  const created = Math.min(cache.creation_tokens, usage.prompt_tokens - cached);
  const cachedPrice = cache.explicit
    ? (tier.explicitCachedInput ?? tier.input * EXPLICIT_CACHED_INPUT_SHARE)
    : (tier.cachedInput ?? tier.input * CACHED_INPUT_SHARE);
  const creationPrice = tier.cacheCreationInput ?? tier.input * CACHE_CREATION_INPUT_SHARE;
  const cost =
    ((usage.prompt_tokens - cached - created) * tier.input +
      cached * cachedPrice +
      created * creationPrice +
      usage.completion_tokens * tier.output) /
    MILLION;
  return Math.round(cost * 1e9) / 1e9;
}
