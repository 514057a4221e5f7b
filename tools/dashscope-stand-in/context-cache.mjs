import { createHash } from "node:crypto";
import { sha256Hex } from "./determinism.mjs";
import { estimatePromptTokens } from "./token-estimate.mjs";

/**
 * DashScope's context cache (PROTOCOL.md §8, from the CACHE page), simulated per API key and model:
 *
 * - **Implicit** (every request without a `cache_control` marker): the longest prefix this request shares with
 *   a recent request of the same key and model is a hit, counted in whole {@link IMPLICIT_BLOCK_TOKENS}-token
 *   blocks (so a hit is at least the documented 256-token minimum). Billed at 20% of the input price.
 * - **Explicit** (a request with at least one `"cache_control":{"type":"ephemeral"}` on a content block): the
 *   prefix up to and including a marked block is stored when it has ≥ {@link EXPLICIT_MIN_TOKENS} tokens
 *   (creation, billed at 125%); a later request whose marker, or one of the {@link LOOKBACK_BLOCKS} blocks
 *   before it, ends the same prefix hits it (10%) and resets its TTL. At most {@link MAX_MARKERS} markers
 *   count. Explicit and implicit are mutually exclusive per request (§8): a marked request gets no implicit
 *   hit and seeds no implicit entry.
 *
 * Prefix tokens are counted with the function that counts `prompt_tokens` ({@link estimatePromptTokens}),
 * applied to the request cut after the prefix, less what it counts for an empty request (the reply priming,
 * which follows the prompt and so is never part of a prefix). A prefix is the request-level text the model
 * reads first (`tools`, a `json_schema` response format), then the messages in order; within the first
 * message that differs, the common run of content parts and the common start of the differing text part.
 * `cache_control` itself is not prompt text and never makes two prefixes differ.
 *
 * Simplifications: entries are created when the answer starts rather than after it ends (DashScope creates
 * them after the response; only concurrent identical requests could tell the difference); Qwen-Omni requests
 * (audio output) are not cached, their usage keeps the Omni shape of §2.5.
 */

/**
 * DashScope documents no block size for implicit hits. 256 tokens: the documented minimum implicit prefix,
 * so "at least 256 tokens" and "whole blocks" are one rule, and consistent with the only published hit
 * (`"cached_tokens":2048` of 3019 prompt tokens, docs.qwencloud.com openai-chat example, PROTOCOL.md §2.5).
 */
export const IMPLICIT_BLOCK_TOKENS = 256;
/** Smallest prefix an explicit marker caches (§8). */
export const EXPLICIT_MIN_TOKENS = 1024;
/** Markers per request that count (§8: "up to 4"); later ones are ignored. */
export const MAX_MARKERS = 4;
/** A marker's lookup also tries the prefixes ending at this many content blocks before it (§8: ≤ 20). */
export const LOOKBACK_BLOCKS = 20;
/** Explicit entries live 5 minutes from creation or their last hit (§8). */
export const DEFAULT_EXPLICIT_TTL_MS = 5 * 60_000;
/**
 * §8: implicit entries' lifetime is "not guaranteed". Assumed: the same 5 minutes, reset on a hit, so a
 * conversation that sends a turn every few minutes keeps hitting.
 */
export const DEFAULT_IMPLICIT_TTL_MS = 5 * 60_000;
/** Recent requests remembered per key and model for implicit hits (oldest evicted first). */
const MAX_IMPLICIT_ENTRIES = 64;
/** Text kept per key and model for implicit matching, in characters (oldest entries evicted first). */
const MAX_IMPLICIT_CHARS = 32 * 1024 * 1024;
/** Explicit entries per key and model (oldest evicted first). */
const MAX_EXPLICIT_ENTRIES = 1024;

/**
 * @typedef {{ type: "implicit", cachedTokens: number }
 *   | { type: "explicit", cachedTokens: number, creationTokens: number }} CacheResult
 * @typedef {{ head: string, keys: string[], messages: any[], chars: number, expiresAt: number }} ImplicitEntry
 * @typedef {{ tokens: number, expiresAt: number }} ExplicitEntry
 * @typedef {{ implicit: ImplicitEntry[], explicit: Map<string, ExplicitEntry> }} Scope
 */

/**
 * Creates an empty cache.
 * @param {{ explicitTtlMs?: number, implicitTtlMs?: number, now?: () => number }} [options]
 */
export function createContextCache({
  explicitTtlMs = DEFAULT_EXPLICIT_TTL_MS,
  implicitTtlMs = DEFAULT_IMPLICIT_TTL_MS,
  now = Date.now,
} = {}) {
  /** @type {Map<string, Scope>} by SHA-256 of the API key, then model */
  const scopes = new Map();

  /** @param {string} apiKey @param {string} model @returns {Scope} */
  function scopeOf(apiKey, model) {
    const id = `${sha256Hex(apiKey)}\u0000${model}`;
    let scope = scopes.get(id);
    if (!scope) {
      scope = { implicit: [], explicit: new Map() };
      scopes.set(id, scope);
    }
    return scope;
  }

  return {
    settings: { explicitTtlMs, implicitTtlMs },
    /**
     * Looks the request up, records what it creates, and returns what its usage reports.
     * @param {string} apiKey the bearer token
     * @param {any} body the validated request body
     * @returns {CacheResult}
     */
    lookup(apiKey, body) {
      const scope = scopeOf(apiKey, String(body.model));
      const t = now();
      return markerPositions(body).length > 0
        ? explicitLookup(scope, body, t, explicitTtlMs)
        : implicitLookup(scope, body, t, implicitTtlMs);
    },
    /** Forgets every entry; returns how many there were. */
    clear() {
      let count = 0;
      for (const scope of scopes.values()) count += scope.implicit.length + scope.explicit.size;
      scopes.clear();
      return count;
    },
  };
}

/**
 * Writes a cache result into `usage.prompt_tokens_details` as DashScope reports it (§8): an implicit request
 * `{"cached_tokens":N}`; an explicit one `{"text_tokens","cache_creation":{"ephemeral_5m_input_tokens"},
 * "cache_creation_input_tokens","cache_type":"ephemeral","cached_tokens"}` in the captured order.
 * @param {Record<string, unknown> & { prompt_tokens: number }} usage
 * @param {CacheResult} result
 */
export function reportCacheUsage(usage, result) {
  if (result.type === "implicit") {
    usage.prompt_tokens_details = { cached_tokens: result.cachedTokens };
    return;
  }
  usage.prompt_tokens_details = {
    text_tokens: usage.prompt_tokens,
    cache_creation: { ephemeral_5m_input_tokens: result.creationTokens },
    cache_creation_input_tokens: result.creationTokens,
    cache_type: "ephemeral",
    cached_tokens: result.cachedTokens,
  };
}

/* ---------------------------------------------------------------------------------------------------------- */

/** Content parts of a message; a string content is one text part. @param {any} m @returns {any[]} */
function partsOf(m) {
  const content = m?.content;
  if (typeof content === "string") return [{ type: "text", text: content }];
  return Array.isArray(content) ? content : [];
}

/** A part without its `cache_control`, which is not prompt text. @param {any} part */
function bare(part) {
  if (!part || typeof part !== "object" || !("cache_control" in part)) return part;
  const { cache_control: _marker, ...rest } = part;
  return rest;
}

/** What a message reads besides its content parts (role, tool calls, tool call id). @param {any} m */
function envelopeKey(m) {
  return JSON.stringify([m?.role, m?.name ?? null, m?.tool_calls ?? null, m?.tool_call_id ?? null]);
}

/** @param {any} part */
const partKey = (part) => JSON.stringify(bare(part));

/** Request-level text read before the messages. @param {any} body */
function headKey(body) {
  return JSON.stringify([
    body.tools ?? null,
    body.response_format?.type === "json_schema" ? body.response_format : null,
  ]);
}

/** Tokens of a prefix: the prompt-token count of the request cut to `messages`, less the reply priming. */
function prefixTokens(/** @type {any} */ body, /** @type {any[]} */ messages) {
  const cut = {
    tools: body.tools,
    response_format: body.response_format,
    vl_high_resolution_images: body.vl_high_resolution_images,
    messages,
  };
  return estimatePromptTokens(cut) - estimatePromptTokens({ messages: [] });
}

/**
 * The message `m` cut after `count` parts, the last of which may be cut to `chars` characters of text.
 * @param {any} m @param {number} count @param {number | null} [chars]
 */
function cutMessage(m, count, chars = null) {
  const parts = partsOf(m).slice(0, count).map(bare);
  if (chars !== null && parts.length > 0) {
    const last = parts[parts.length - 1];
    parts[parts.length - 1] = { type: "text", text: String(last.text).slice(0, chars) };
  }
  if (typeof m.content === "string") return { role: m.role, content: parts[0]?.text ?? "" };
  return { role: m.role, content: parts };
}

/* ---- implicit ---- */

/**
 * @param {Scope} scope @param {any} body @param {number} t @param {number} ttlMs
 * @returns {CacheResult}
 */
function implicitLookup(scope, body, t, ttlMs) {
  scope.implicit = scope.implicit.filter((e) => e.expiresAt > t);
  const head = headKey(body);
  const messages = /** @type {any[]} */ (body.messages);
  const keys = messages.map((m) =>
    sha256Hex(`${envelopeKey(m)}\u0000${partsOf(m).map(partKey).join("\u0001")}`),
  );

  // The longest common prefix over the remembered requests, compared as (whole messages, parts, characters).
  /** @type {{ entry: ImplicitEntry, whole: number, sameRole: boolean, parts: number, chars: number } | null} */
  let best = null;
  for (const entry of scope.implicit) {
    if (entry.head !== head) continue;
    const limit = Math.min(keys.length, entry.keys.length);
    let whole = 0;
    while (whole < limit && keys[whole] === entry.keys[whole]) whole++;
    let parts = 0;
    let chars = 0;
    const sameRole = whole < limit && messages[whole]?.role === entry.messages[whole]?.role;
    if (sameRole) {
      const mine = partsOf(messages[whole]);
      const theirs = partsOf(entry.messages[whole]);
      while (parts < mine.length && parts < theirs.length && partKey(mine[parts]) === partKey(theirs[parts]))
        parts++;
      const a = mine[parts];
      const b = theirs[parts];
      if (
        a?.type === "text" &&
        b?.type === "text" &&
        typeof a.text === "string" &&
        typeof b.text === "string"
      )
        chars = commonPrefixLength(a.text, b.text);
    }
    const better =
      best === null ||
      whole > best.whole ||
      (whole === best.whole && (parts > best.parts || (parts === best.parts && chars > best.chars)));
    if (better) best = { entry, whole, sameRole, parts, chars };
  }

  let cachedTokens = 0;
  if (best !== null && (best.whole > 0 || best.sameRole)) {
    const prefix = messages.slice(0, best.whole);
    const partial = messages[best.whole];
    if (best.sameRole)
      prefix.push(
        cutMessage(partial, best.parts + (best.chars > 0 ? 1 : 0), best.chars > 0 ? best.chars : null),
      );
    cachedTokens = Math.floor(prefixTokens(body, prefix) / IMPLICIT_BLOCK_TOKENS) * IMPLICIT_BLOCK_TOKENS;
    if (cachedTokens > 0) best.entry.expiresAt = t + ttlMs;
  }

  // Remember this request (an identical one already remembered is refreshed instead).
  const same = scope.implicit.find(
    (e) => e.head === head && e.keys.length === keys.length && e.keys.every((k, i) => k === keys[i]),
  );
  if (same) same.expiresAt = t + ttlMs;
  else {
    const chars = messages.reduce((n, m) => n + JSON.stringify(m?.content ?? "").length, 0);
    scope.implicit.push({ head, keys, messages, chars, expiresAt: t + ttlMs });
    let total = scope.implicit.reduce((n, e) => n + e.chars, 0);
    while (
      scope.implicit.length > MAX_IMPLICIT_ENTRIES ||
      (total > MAX_IMPLICIT_CHARS && scope.implicit.length > 1)
    )
      total -= /** @type {ImplicitEntry} */ (scope.implicit.shift()).chars;
  }
  return { type: "implicit", cachedTokens };
}

/** @param {string} a @param {string} b */
function commonPrefixLength(a, b) {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/* ---- explicit ---- */

/**
 * Every content block of the request in order, as [message index, part index].
 * @param {any} body @returns {[number, number][]}
 */
function blocksOf(body) {
  /** @type {[number, number][]} */
  const blocks = [];
  for (const [i, m] of /** @type {any[]} */ (body.messages).entries()) {
    const count = partsOf(m).length;
    for (let j = 0; j < count; j++) blocks.push([i, j]);
  }
  return blocks;
}

/**
 * Indexes (into {@link blocksOf}) of the marked blocks that count.
 * @param {any} body @returns {number[]}
 */
function markerPositions(body) {
  if (!Array.isArray(body?.messages)) return [];
  /** @type {number[]} */
  const marked = [];
  blocksOf(body).forEach(([i, j], k) => {
    const part = partsOf(body.messages[i])[j];
    if (part && typeof part === "object" && part.cache_control?.type === "ephemeral") marked.push(k);
  });
  return marked.slice(0, MAX_MARKERS);
}

/**
 * @param {Scope} scope @param {any} body @param {number} t @param {number} ttlMs
 * @returns {CacheResult}
 */
function explicitLookup(scope, body, t, ttlMs) {
  for (const [hash, entry] of scope.explicit) if (entry.expiresAt <= t) scope.explicit.delete(hash);
  const blocks = blocksOf(body);
  const messages = /** @type {any[]} */ (body.messages);

  // The hash of the prefix ending at each block, chained so each block is hashed once.
  const running = createHash("sha256").update(headKey(body));
  /** @type {string[]} */
  const hashes = [];
  let current = -1;
  for (const [i, j] of blocks) {
    if (i !== current) {
      running.update(`\u0002${envelopeKey(messages[i])}`);
      current = i;
    }
    running.update(`\u0001${partKey(partsOf(messages[i])[j])}`);
    hashes.push(running.copy().digest("hex"));
  }
  const tokensAt = (/** @type {number} */ k) => {
    const [i, j] = /** @type {[number, number]} */ (blocks[k]);
    return prefixTokens(body, [...messages.slice(0, i), cutMessage(messages[i], j + 1)]);
  };

  const markers = markerPositions(body);
  /** @type {ExplicitEntry | null} */
  let hit = null;
  for (const k of markers) {
    for (let back = k; back >= 0 && back >= k - LOOKBACK_BLOCKS; back--) {
      const entry = scope.explicit.get(/** @type {string} */ (hashes[back]));
      if (entry && (hit === null || entry.tokens > hit.tokens)) hit = entry;
    }
  }
  if (hit) hit.expiresAt = t + ttlMs;
  const cachedTokens = hit?.tokens ?? 0;

  let created = 0;
  for (const k of markers) {
    const hash = /** @type {string} */ (hashes[k]);
    if (scope.explicit.has(hash)) continue;
    const tokens = tokensAt(k);
    if (tokens < EXPLICIT_MIN_TOKENS) continue;
    scope.explicit.set(hash, { tokens, expiresAt: t + ttlMs });
    if (scope.explicit.size > MAX_EXPLICIT_ENTRIES)
      scope.explicit.delete(/** @type {string} */ (scope.explicit.keys().next().value));
    created = Math.max(created, tokens);
  }
  return { type: "explicit", cachedTokens, creationTokens: Math.max(0, created - cachedTokens) };
}
