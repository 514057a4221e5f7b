/**
 * Directives let a request choose the stand-in's behaviour through its own text, so a request that travelled
 * through the Worker (which only forwards user text) can still select a scenario:
 *
 *   [[stand-in tokens=5 thinking tag=my-test]]
 *
 * Only the last user message is searched (string content or any `text` part). `key` alone means `key=true`.
 * Several directives in that message are merged, later keys winning.
 *
 * A request that ends with tool results (the last message is a `tool` message) answers them, as a model
 * would, with text: the user message's `tool_call` and `tool` keys do not apply again (otherwise a client
 * that runs the tool would be asked for another call forever). Directives in those trailing tool messages'
 * text are merged on top, so a tool result can itself ask for another call.
 */

const DIRECTIVE_PATTERN = /\[\[stand-in((?:\s+[^\s\]]+)*)\s*\]\]/g;

/** Keys that ask for a tool call; a request answering tool results ignores them from the user message. */
const TOOL_CALL_KEYS = ["tool_call", "tool"];

/** Keys whose values are non-negative integers. */
const INTEGER_KEYS = new Set([
  "tokens",
  "reasoning",
  "calls",
  "after",
  "disconnect",
  "stall",
  "stall_ping",
  "fail_times",
  "retry_after",
  "ttft",
  "itl",
  "audio",
]);

/**
 * @typedef {Record<string, string | number | boolean>} Directive
 */

/**
 * Text of a message's content: a string, or the concatenated `text` parts of a content array.
 * @param {unknown} content
 * @returns {string}
 */
export function contentText(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => (part && typeof part === "object" && typeof part.text === "string" ? part.text : ""))
    .join("");
}

/**
 * Parses every directive of a request: those in the last `user` message and, when the request ends with
 * tool results, those in the trailing `tool` messages (see the module comment).
 * @param {unknown} body the parsed request body
 * @returns {Directive} empty object when there is no directive
 */
export function parseDirective(body) {
  /** @type {Directive} */
  const directive = {};
  const messages = body && typeof body === "object" ? /** @type {any} */ (body).messages : undefined;
  if (!Array.isArray(messages)) return directive;
  const isRole = (/** @type {any} */ m, /** @type {string} */ role) =>
    m && typeof m === "object" && m.role === role;
  const lastUser = [...messages].reverse().find((m) => isRole(m, "user"));
  if (lastUser) mergeDirectives(directive, lastUser.content);
  if (isRole(messages.at(-1), "tool")) {
    for (const key of TOOL_CALL_KEYS) delete directive[key];
    let first = messages.length - 1;
    while (first > 0 && isRole(messages[first - 1], "tool")) first--;
    for (const toolMessage of messages.slice(first)) mergeDirectives(directive, toolMessage.content);
  }
  return directive;
}

/**
 * Merges the directives found in a message's content into `directive`, later keys winning.
 * @param {Directive} directive
 * @param {unknown} content
 */
function mergeDirectives(directive, content) {
  const texts = Array.isArray(content)
    ? content.map((/** @type {any} */ p) => (p && typeof p.text === "string" ? p.text : ""))
    : [contentText(content)];
  for (const text of texts) {
    for (const match of text.matchAll(DIRECTIVE_PATTERN)) {
      for (const token of (match[1] ?? "").trim().split(/\s+/).filter(Boolean)) {
        const eq = token.indexOf("=");
        const key = eq === -1 ? token : token.slice(0, eq);
        const raw = eq === -1 ? true : token.slice(eq + 1);
        directive[key] = coerce(key, raw);
      }
    }
  }
}

/**
 * @param {string} key
 * @param {string | true} raw
 * @returns {string | number | boolean}
 */
function coerce(key, raw) {
  if (raw === true) return true;
  if (INTEGER_KEYS.has(key)) {
    const n = Number(raw);
    return Number.isInteger(n) && n >= 0 ? n : raw;
  }
  if (raw === "true") return true;
  if (raw === "false") return false;
  return raw;
}

/**
 * Reads an integer directive value, falling back when absent or malformed.
 * @param {Record<string, unknown>} directive
 * @param {string} key
 * @param {number} fallback
 * @returns {number}
 */
export function intOption(directive, key, fallback) {
  const v = directive[key];
  return typeof v === "number" ? v : fallback;
}
