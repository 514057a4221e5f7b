import { contentText } from "../directives.mjs";
import { splitText } from "./words.mjs";

const ECHO_PIECE_CHARS = 16;

/**
 * The `echo` scenario: the answer is the JSON of the received `messages` (role and text only), so tests can
 * check exactly what the model saw. Streamed in 16-character pieces, one token each.
 * @param {any[]} messages
 * @returns {string[]}
 */
export function echoPieces(messages) {
  const seen = messages.map((m) => ({ role: m?.role, content: contentText(m?.content) }));
  return splitText(JSON.stringify(seen), ECHO_PIECE_CHARS);
}
