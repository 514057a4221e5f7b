import { describe, expect, it } from "vitest";
import { findMatches, foldCase, snippetOf } from "../src/text/snippet";

const marked = (s: { snippet: string; highlights: [number, number][] }) =>
  s.highlights.map(([a, b]) => s.snippet.slice(a, b));

describe("search snippets", () => {
  it("folds case without changing any index, also where a lower case is longer", () => {
    // "İ".toLowerCase() is "i̇" (2 code units): kept as is, so later offsets stay right.
    const text = "İstanbul ΣΟΦΙΑ 𐐀 Hello";
    expect(foldCase(text)).toHaveLength(text.length);
    expect(foldCase(text)).toBe("İstanbul σοφια 𐐨 hello");
    const [hello] = findMatches(text, ["HELLO"]);
    expect(text.slice(hello![0], hello![1])).toBe("Hello");
    expect(findMatches(text, ["σοφια"])).toEqual([[9, 14]]);
  });

  it("merges overlapping and touching matches of several terms and finds every occurrence", () => {
    expect(findMatches("abcabc xabcx", ["abc", "bca"])).toEqual([
      [0, 6],
      [8, 11],
    ]);
    // Touching matches are one highlight.
    expect(findMatches("aaaa", ["aa"])).toEqual([[0, 4]]);
    expect(findMatches("nothing", ["zz", ""])).toEqual([]);
  });

  it("cuts a long text around the first match without splitting a surrogate pair", () => {
    for (const lead of [59, 60, 61, 62]) {
      // Each 🦀 is 2 code units: some leads put the window's start inside one.
      const text = `${"x".repeat(lead % 2)}${"🦀".repeat(100)} target ${"🦀".repeat(100)}`;
      const s = snippetOf(text, ["target"]);
      expect(s.snippet.isWellFormed()).toBe(true);
      expect(marked(s)).toEqual(["target"]);
      expect(s.snippet.startsWith("…") && s.snippet.endsWith("…")).toBe(true);
      expect(text.includes(s.snippet.slice(1, -1))).toBe(true);
    }
  });

  it("keeps a match near the end inside a full-size window, and a match longer than the window whole", () => {
    const end = `${"a".repeat(500)} tail`;
    const s = snippetOf(end, ["tail"]);
    expect(s.snippet.endsWith(" tail")).toBe(true);
    expect(s.snippet.length).toBe(201);
    expect(marked(s)).toEqual(["tail"]);

    const term = "y".repeat(250);
    const long = `${"z".repeat(300)}${term}${"z".repeat(300)}`;
    expect(marked(snippetOf(long, [term]))).toEqual([term]);
  });

  it("returns a short text whole and a text without a match from its start", () => {
    expect(snippetOf("short text", ["text"])).toEqual({ snippet: "short text", highlights: [[6, 10]] });
    const s = snippetOf("q".repeat(400), ["absent"]);
    expect(s).toEqual({ snippet: `${"q".repeat(200)}…`, highlights: [] });
  });
});
