/**
 * Snippets of a searched text with the places its terms occur, in UTF-16 code units (the
 * indexes of a JavaScript string, and of Swift's `String.utf16` / Kotlin's `String`).
 */

/** A snippet and its `[start, end)` highlights, in UTF-16 code units into `snippet`. */
export interface Snippet {
  snippet: string;
  highlights: [number, number][];
}

/** Texts up to this many code units are returned whole. */
const WHOLE_TEXT_UNITS = 240;
/** Length of the window cut from a longer text. */
const WINDOW_UNITS = 200;
/** How much of the window comes before the first match. */
const LEAD_UNITS = 60;
const ELLIPSIS = "…";

/**
 * Lower-cases each code point on its own, keeping one whose lower case has another UTF-16
 * length (`İ` → `i̇` is 2 units): the result has the same length as `text` and every index means
 * the same character in both, so a match found in it is a match at the same place in `text`.
 * SQLite's trigram tokenizer folds case per code point too (unicode61's simple folding).
 */
export function foldCase(text: string): string {
  let folded = "";
  for (const ch of text) {
    const lower = ch.toLowerCase();
    folded += lower.length === ch.length ? lower : ch;
  }
  return folded;
}

/**
 * Every non-overlapping occurrence of each term in `text`, case-insensitively, as `[start, end)`
 * sorted, with overlapping or touching ranges merged into one.
 */
export function findMatches(text: string, terms: readonly string[]): [number, number][] {
  const folded = foldCase(text);
  const ranges: [number, number][] = [];
  for (const term of terms) {
    const needle = foldCase(term);
    if (needle.length === 0) continue;
    for (let at = folded.indexOf(needle); at >= 0; at = folded.indexOf(needle, at + needle.length)) {
      ranges.push([at, at + needle.length]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: [number, number][] = [];
  for (const [start, end] of ranges) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

const isLowSurrogate = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

/** Moves an index off the middle of a surrogate pair (backwards), so no character is split. */
function onCharBoundary(text: string, index: number): number {
  return index > 0 && index < text.length && isLowSurrogate(text.charCodeAt(index)) ? index - 1 : index;
}

/**
 * The part of `text` to show for a search with `terms`: the whole text when it is short,
 * otherwise a window of about {@link WINDOW_UNITS} code units starting a little before the first
 * match (widened to hold it whole), with `…` where it was cut; and where the terms occur in it.
 */
export function snippetOf(text: string, terms: readonly string[]): Snippet {
  const matches = findMatches(text, terms);
  if (text.length <= WHOLE_TEXT_UNITS) return { snippet: text, highlights: matches };
  const first = matches[0];
  let start = first ? Math.max(0, first[0] - LEAD_UNITS) : 0;
  let end = Math.min(text.length, Math.max(start + WINDOW_UNITS, first?.[1] ?? 0));
  if (end === text.length) start = Math.max(0, Math.min(start, end - WINDOW_UNITS));
  start = onCharBoundary(text, start);
  end = onCharBoundary(text, end);
  const prefix = start > 0 ? ELLIPSIS : "";
  const suffix = end < text.length ? ELLIPSIS : "";
  const shift = prefix.length - start;
  const highlights: [number, number][] = [];
  for (const [s, e] of matches) {
    if (e <= start || s >= end) continue;
    highlights.push([Math.max(s, start) + shift, Math.min(e, end) + shift]);
  }
  return { snippet: prefix + text.slice(start, end) + suffix, highlights };
}
