import { deterministicCallId } from "../determinism.mjs";
import { VOCABULARY } from "./words.mjs";

const CITIES = Object.freeze(["Hangzhou", "Beijing", "Shanghai", "Singapore", "Shenzhen", "Chengdu"]);
const MAX_SCHEMA_DEPTH = 3;
const MAX_PARALLEL_CALLS = 8;
/** Argument text is cut into this many fragments (fewer when it is very short). */
const ARGUMENT_FRAGMENTS = 3;

/** @typedef {{ id: string, name: string, arguments: string }} ToolCall */

/**
 * Decides whether this request is answered with tool calls and builds them.
 * Tool calls happen when the request has `tools`, `tool_choice` is not `"none"`, and either the directive asks
 * (`tool_call` or `tool=name`) or `tool_choice` forces a call (`"required"` or a named function).
 * @param {any} body
 * @param {Record<string, unknown>} directive
 * @param {string} bodyHash
 * @param {{ int(max: number): number, pick<T>(items: readonly T[]): T, next(): number }} prng
 * @returns {ToolCall[] | null}
 */
export function planToolCalls(body, directive, bodyHash, prng) {
  const tools = Array.isArray(body.tools)
    ? body.tools.filter((/** @type {any} */ t) => typeof t?.function?.name === "string")
    : [];
  if (tools.length === 0 || body.tool_choice === "none") return null;
  const forcedName = typeof body.tool_choice === "object" ? body.tool_choice?.function?.name : undefined;
  const wanted =
    directive.tool_call === true ||
    typeof directive.tool === "string" ||
    typeof forcedName === "string" ||
    body.tool_choice === "required";
  if (!wanted) return null;

  const fixedName = typeof directive.tool === "string" ? directive.tool : forcedName;
  const requested = typeof directive.calls === "number" ? directive.calls : 1;
  const count = body.parallel_tool_calls === true ? Math.max(1, Math.min(MAX_PARALLEL_CALLS, requested)) : 1;
  const calls = [];
  for (let i = 0; i < count; i++) {
    const name = fixedName ?? tools[i % tools.length].function.name;
    const tool = tools.find((/** @type {any} */ t) => t.function.name === name);
    const args = argumentsFromSchema(tool?.function?.parameters, prng, 0);
    // `empty_arguments`: a call without arguments as some Qwen models stream it, `arguments: ""`.
    const text = directive.empty_arguments === true ? "" : pyJson(args ?? {});
    calls.push({ id: deterministicCallId(bodyHash, i), name, arguments: text });
  }
  return calls;
}

/**
 * A small value satisfying a JSON Schema: required properties (or all when none are required), enums take
 * a listed value, location-like strings get a city.
 * @param {any} schema
 * @param {{ int(max: number): number, pick<T>(items: readonly T[]): T, next(): number }} prng
 * @param {number} depth
 * @param {string} [name]
 * @returns {unknown}
 */
function argumentsFromSchema(schema, prng, depth, name = "") {
  if (!schema || typeof schema !== "object") return depth === 0 ? {} : prng.pick(VOCABULARY);
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return prng.pick(schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "object": {
      /** @type {Record<string, unknown>} */
      const out = {};
      if (depth >= MAX_SCHEMA_DEPTH) return out;
      const props = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
      const required =
        Array.isArray(schema.required) && schema.required.length > 0 ? schema.required : Object.keys(props);
      for (const key of required) out[key] = argumentsFromSchema(props[key], prng, depth + 1, key);
      return out;
    }
    case "integer":
      return 1 + prng.int(100);
    case "number":
      return (1 + prng.int(1000)) / 10;
    case "boolean":
      return prng.next() < 0.5;
    case "array":
      return depth >= MAX_SCHEMA_DEPTH ? [] : [argumentsFromSchema(schema.items, prng, depth + 1, name)];
    case "null":
      return null;
    default:
      return /location|city|place|address/i.test(name) ? prng.pick(CITIES) : prng.pick(VOCABULARY);
  }
}

/**
 * JSON with Python `json.dumps` spacing (`{"a": 1, "b": [2, 3]}`), which is how Qwen writes tool arguments.
 * @param {unknown} value
 * @returns {string}
 */
export function pyJson(value) {
  if (Array.isArray(value)) return `[${value.map(pyJson).join(", ")}]`;
  if (value && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Cuts argument text into up to {@link ARGUMENT_FRAGMENTS} consecutive slices.
 * @param {string} text
 * @returns {string[]}
 */
function argumentSlices(text) {
  const n = Math.max(1, Math.min(ARGUMENT_FRAGMENTS, text.length));
  const slices = [];
  for (let i = 0; i < n; i++)
    slices.push(text.slice(Math.floor((text.length * i) / n), Math.floor((text.length * (i + 1)) / n)));
  return slices;
}

/**
 * The `tool_calls` delta entries for one call, in one of the four fragment patterns of PROTOCOL.md §5.1.
 * Each returned entry goes into its own chunk.
 * @param {ToolCall} call
 * @param {number} index
 * @param {1 | 2 | 3 | 4} pattern
 * @returns {Record<string, unknown>[]}
 */
export function toolCallFragments(call, index, pattern) {
  const slices = argumentSlices(call.arguments);
  switch (pattern) {
    case 2:
      // qwen-max: `arguments:""` with the name, all slices as continuations, then an empty `function` object.
      return [
        { function: { name: call.name, arguments: "" }, index, id: call.id, type: "function" },
        ...slices.map((arguments_) => ({
          function: { arguments: arguments_ },
          index,
          id: "",
          type: "function",
        })),
        { function: {}, index, id: "", type: "function" },
      ];
    case 3:
      // qwen3.x thinking: continuations carry `name: null` and `id: ""`.
      return [
        { index, id: call.id, type: "function", function: { name: call.name, arguments: "" } },
        ...slices.map((arguments_) => ({ index, id: "", function: { arguments: arguments_, name: null } })),
      ];
    case 4:
      // Qwen3-VL: `{id, name}` without arguments, then `{id, arguments}` without name.
      return [
        { index, id: call.id, type: "function", function: { name: call.name } },
        ...slices.map((arguments_) => ({
          index,
          id: call.id,
          type: "function",
          function: { arguments: arguments_ },
        })),
      ];
    default:
      // qwen-plus: name and the first slice together; continuations repeat `index`, send `id:""`, `type`.
      return [
        { index, id: call.id, type: "function", function: { name: call.name, arguments: slices[0] } },
        ...slices
          .slice(1)
          .map((arguments_) => ({ function: { arguments: arguments_ }, index, id: "", type: "function" })),
      ];
  }
}

/**
 * Maps the `fragments=` directive value (`pattern1` … `pattern4`, or a bare digit) to a pattern number.
 * @param {unknown} value
 * @returns {1 | 2 | 3 | 4}
 */
export function fragmentPattern(value) {
  const m = /^(?:pattern)?([1-4])$/.exec(String(value ?? ""));
  return m ? /** @type {1 | 2 | 3 | 4} */ (Number(m[1])) : 1;
}
