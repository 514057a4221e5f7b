import { contentText } from "../directives.mjs";
import { splitText } from "./words.mjs";

/**
 * The stand-in cannot summarise. A digest model (`isDigestModel`, any id ending in `-digest`, e.g.
 * `qwen-flash-digest`, which the Worker prices as qwen-flash) answers instead with a digest that
 * shows the plumbing of a running summary: every line of the request's non-system messages that
 * carries a directive with the `keep` flag (`[[stand-in … keep]]`), the line's directives replaced
 * by a bare `[[stand-in keep]]` (so the line is kept again when a later summary quotes this one),
 * each line once, in order. A line stated with `keep` in turn 1 therefore survives every
 * summary that extends the previous one, and nothing else does: the digest stays small.
 */

const DIRECTIVE = /\[\[stand-in((?:\s+[^\s\]]+)*)\s*\]\]/g;
/** Characters per content piece: one token each, about DashScope's 4 characters a token. */
const DIGEST_PIECE_CHARS = 4;
/** The answer when no line carries `keep`. */
const NOTHING_KEPT = "(no line to keep)";

/**
 * @param {unknown} model
 * @returns {boolean}
 */
export function isDigestModel(model) {
  return typeof model === "string" && /-digest$/.test(model);
}

/**
 * The kept lines of `messages` (see the module comment).
 * @param {any[]} messages
 * @returns {string[]}
 */
export function digestLines(messages) {
  /** @type {string[]} */
  const kept = [];
  for (const m of messages) {
    if (m?.role === "system") continue;
    for (const line of contentText(m?.content).split("\n")) {
      const keeps = [...line.matchAll(DIRECTIVE)].some((d) =>
        (d[1] ?? "").trim().split(/\s+/).includes("keep"),
      );
      if (!keeps) continue;
      const bare = `${line.replace(DIRECTIVE, "").replace(/\s+/g, " ").trim()} [[stand-in keep]]`;
      if (!kept.includes(bare)) kept.push(bare);
    }
  }
  return kept;
}

/**
 * The digest as content pieces.
 * @param {any[]} messages
 * @returns {string[]}
 */
export function digestPieces(messages) {
  const lines = digestLines(messages);
  return splitText(lines.length ? lines.join("\n") : NOTHING_KEPT, DIGEST_PIECE_CHARS);
}
