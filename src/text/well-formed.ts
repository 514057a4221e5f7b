/**
 * Text made safe to store and send. A JSON text can carry an unpaired UTF-16 surrogate as an
 * escape (`"\ud83d"`): `JSON.parse` accepts it, and `JSON.stringify` writes it back out as the
 * same escape, which strict parsers (jq, Swift's JSONDecoder) reject. Every string that comes
 * from DashScope passes through here, as do the JSON columns read back from D1 (rows stored
 * before requests were checked may hold such escapes), and each lone surrogate becomes U+FFFD.
 *
 * Upstream deltas are repaired one by one: a pair split across two deltas would become two
 * U+FFFD, but DashScope cuts text at code-point boundaries (its servers hold text as code
 * points), so a lone surrogate in a delta is lone in the answer too.
 */

/** A `\uD800`–`\uDFFF` escape: the only way a lone surrogate gets into decoded UTF-8 JSON text. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * `JSON.parse` whose strings and object keys are all well-formed Unicode. Text without a
 * surrogate escape (nearly all of it: UTF-8 decoding itself never yields a lone surrogate)
 * is parsed as is; otherwise a reviver repairs each string. Throws as `JSON.parse` does.
 */
export function parseWellFormedJson(text: string): unknown {
  if (!SURROGATE_ESCAPE.test(text)) return JSON.parse(text);
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value === "string") return value.toWellFormed();
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.every((key) => key.isWellFormed())) return value;
      return Object.fromEntries(
        keys.map((key) => [key.toWellFormed(), (value as Record<string, unknown>)[key]]),
      );
    }
    return value;
  });
}

/**
 * `text` cut to at most `maxChars` UTF-16 code units without splitting a surrogate pair, and
 * with any lone surrogate replaced: safe to put into a JSON response.
 */
export function truncateText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text.toWellFormed();
  const end = isHighSurrogate(text.charCodeAt(maxChars - 1)) ? maxChars - 1 : maxChars;
  return text.slice(0, end).toWellFormed();
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
