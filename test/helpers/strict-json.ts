import { expect } from "vitest";

/**
 * Paths of every string and object key in a parsed JSON value that is not well-formed Unicode
 * (an unpaired UTF-16 surrogate, which `JSON.parse` produces from an escape such as `"\ud83d"`).
 * jq and other strict parsers reject such a document. Iterative, so any depth is fine.
 */
export function illFormedPaths(value: unknown): string[] {
  const found: string[] = [];
  const stack: { value: unknown; path: string }[] = [{ value, path: "$" }];
  while (stack.length > 0) {
    const { value: v, path } = stack.pop()!;
    if (typeof v === "string") {
      if (!v.isWellFormed()) found.push(path);
    } else if (Array.isArray(v)) {
      for (const [i, item] of v.entries()) stack.push({ value: item, path: `${path}[${i}]` });
    } else if (v !== null && typeof v === "object") {
      for (const [key, item] of Object.entries(v)) {
        if (!key.isWellFormed()) found.push(`${path} (key)`);
        stack.push({ value: item, path: `${path}.${key.toWellFormed()}` });
      }
    }
  }
  return found;
}

/**
 * Parses `text` as a strict parser would: the text itself is well-formed Unicode and no string
 * in it, escaped or not, holds an unpaired surrogate. Returns the parsed value.
 */
export function parseStrictJson(text: string): unknown {
  expect(text.isWellFormed(), "response text is well-formed Unicode").toBe(true);
  const value: unknown = JSON.parse(text);
  expect(illFormedPaths(value), "strings holding an unpaired surrogate").toEqual([]);
  return value;
}

/** Checks every `data:` payload of an SSE text with {@link parseStrictJson}; returns the payloads. */
export function parseStrictSse(text: string): unknown[] {
  expect(text.isWellFormed(), "stream text is well-formed Unicode").toBe(true);
  const payloads: unknown[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trimStart();
    if (data === "[DONE]") continue;
    payloads.push(parseStrictJson(data));
  }
  return payloads;
}
