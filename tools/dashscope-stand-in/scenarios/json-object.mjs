import { VOCABULARY } from "./words.mjs";

const JSON_KEYS = Object.freeze(["name", "city", "topic", "status", "summary", "category"]);
const JSON_KEY_COUNT = 3;

/**
 * Content for `response_format: json_object`: a small JSON object in Python `json.dumps` spacing
 * (`{"name": "river", "count": 42}`, as in the docs' example), split into pieces at key/value boundaries
 * the way DashScope streams it (`{"name"`, `: "river"`, `, "count"`, `: 42`, `}`). Each piece is one token.
 * @param {{ int(max: number): number, pick<T>(items: readonly T[]): T }} prng
 * @returns {string[]}
 */
export function jsonObjectPieces(prng) {
  const pieces = [];
  const keys = [...JSON_KEYS];
  for (let i = 0; i < JSON_KEY_COUNT; i++) {
    const key = keys.splice(prng.int(keys.length), 1)[0];
    pieces.push(`${i === 0 ? "{" : ", "}${JSON.stringify(key)}`);
    pieces.push(`: ${JSON.stringify(prng.pick(VOCABULARY))}`);
  }
  pieces.push(`, "count": ${1 + prng.int(100)}`);
  pieces.push("}");
  return pieces;
}
