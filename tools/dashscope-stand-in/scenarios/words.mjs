/** Fixed vocabulary for generated answers; picked by the seeded PRNG so answers are reproducible. */
export const VOCABULARY = Object.freeze([
  "the",
  "river",
  "lantern",
  "quietly",
  "morning",
  "signal",
  "harbor",
  "bright",
  "across",
  "garden",
  "paper",
  "window",
  "steady",
  "travels",
  "under",
  "mountain",
  "silver",
  "echo",
  "market",
  "gentle",
  "answer",
  "between",
  "cloud",
  "forward",
  "island",
  "journey",
  "kettle",
  "ladder",
  "meadow",
  "north",
  "orchard",
  "pebble",
  "quartz",
  "ribbon",
  "season",
  "thread",
  "umbrella",
  "valley",
  "willow",
  "yellow",
]);

/**
 * N word tokens: the first without a leading space, every later one with one.
 * @param {{ pick<T>(items: readonly T[]): T }} prng
 * @param {number} count
 * @returns {string[]}
 */
export function wordTokens(prng, count) {
  const tokens = [];
  for (let i = 0; i < count; i++) {
    const word = prng.pick(VOCABULARY);
    tokens.push(i === 0 ? word : ` ${word}`);
  }
  return tokens;
}

/**
 * Splits a text into pieces of at most `size` characters (code points are kept whole).
 * @param {string} text
 * @param {number} size
 * @returns {string[]}
 */
export function splitText(text, size) {
  const chars = Array.from(text);
  const pieces = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(""));
  return pieces;
}
