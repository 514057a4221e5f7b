import type { Config } from "../config";
import type { UpstreamMessage } from "./history";
import { modelEntry } from "./models";
import { CACHE_CREATION_INPUT_SHARE, EXPLICIT_CACHED_INPUT_SHARE, priceFor } from "./pricing";
import { estimateMessageTokens } from "./tokens";

/** DashScope caches an explicitly marked prefix only from 1,024 tokens on (PROTOCOL.md §8). */
export const EXPLICIT_MIN_PREFIX_TOKENS = 1_024;

/** DashScope's explicit marker, on a text part (PROTOCOL.md §4, §8). */
const EPHEMERAL = { type: "ephemeral" } as const;

/**
 * Whether a turn on `model` marks its stable prefix for DashScope's explicit cache: the model is
 * in `EXPLICIT_CACHE_MODELS` (or a snapshot of one), and at its first price tier creation pays
 * for itself.
 *
 * The rule: a marked prefix of P tokens costs `creation·P` once and `explicitHit·P` on each later
 * read within its 5-minute TTL (reset by each hit); unmarked, the implicit cache is "not
 * guaranteed" (§8), so the worst case bills it at `input·P` every time. Marking pays as soon as
 * the prefix is read once more when `creation + explicitHit < 2·input`; at the list shares that
 * is 1.25 + 0.10 = 1.35 < 2 (a turn within 5 minutes of the last). Against an implicit hit
 * (0.20) on every read, it pays from the third read on: (1.25 − 1.00) / (0.20 − 0.10) = 2.5.
 * A block layout re-reads its prefix on every turn until the next fold (about ten turns at the
 * default 90% → 50%), so both hold for a conversation kept up. A `MODEL_PRICES` entry that
 * prices creation or explicit hits higher turns the markers off for that model.
 */
export function explicitCachePays(
  model: string,
  config: Pick<Config, "explicitCacheModels" | "modelPrices">,
): boolean {
  const listed = modelEntry(Object.fromEntries(config.explicitCacheModels.map((m) => [m, true])), model);
  if (!listed) return false;
  const tier = priceFor(model, config.modelPrices)?.tiers[0];
  // Without a price the ledger bills nothing; the list says DashScope takes the marker.
  if (!tier) return true;
  const creation = tier.cacheCreationInput ?? tier.input * CACHE_CREATION_INPUT_SHARE;
  const hit = tier.explicitCachedInput ?? tier.input * EXPLICIT_CACHED_INPUT_SHARE;
  return creation + hit < 2 * tier.input;
}

/**
 * Puts `cache_control: {type: "ephemeral"}` on the last text part of the messages at `indexes`
 * (a string content becomes one text part), when the prefix up to that message holds at least
 * {@link EXPLICIT_MIN_PREFIX_TOKENS}: DashScope ignores a shorter one, and a marked request gets
 * no implicit hit at all (§8), so a marker that cannot cache is left out. Messages whose content
 * has no text part to carry the marker (an assistant message with only tool calls) are skipped.
 * Returns the messages (new objects where marked) and the indexes marked.
 */
export function markPrefixes(
  messages: readonly UpstreamMessage[],
  indexes: readonly number[],
): { messages: UpstreamMessage[]; marked: number[] } {
  const out = [...messages];
  const marked: number[] = [];
  let prefix = 0;
  const want = new Set(indexes);
  for (const [i, m] of messages.entries()) {
    prefix += estimateMessageTokens(m);
    if (!want.has(i) || prefix < EXPLICIT_MIN_PREFIX_TOKENS) continue;
    const content = markedContent(m.content);
    if (content === null) continue;
    out[i] = { ...m, content } as UpstreamMessage;
    marked.push(i);
  }
  return { messages: out, marked };
}

function markedContent(content: unknown): unknown[] | null {
  if (typeof content === "string")
    return content === "" ? null : [{ type: "text", text: content, cache_control: EPHEMERAL }];
  if (!Array.isArray(content) || content.length === 0) return null;
  const last = content.at(-1) as { type?: unknown } | null;
  if (last?.type !== "text") return null;
  return [...content.slice(0, -1), { ...last, cache_control: EPHEMERAL }];
}
