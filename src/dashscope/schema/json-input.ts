import type { SchemaError } from "./issues";

/**
 * Deepest nesting of arrays and objects a request body may have; the body itself is level 1.
 * A tool's JSON Schema sits six levels down in a turn (`{"parameters":{"tools":[{"function":
 * {"parameters":{…`), leaving 58 levels for the schema; real schemas use under 10 (OpenAI's
 * structured outputs allow 10). Bounding it keeps every later recursive step (zod, hashing,
 * `JSON.stringify`, structured clone) far from the stack limit: 50,000 levels overflowed it.
 */
export const MAX_JSON_DEPTH = 64;

interface Node {
  value: unknown;
  depth: number;
  key: PropertyKey | null;
  parent: Node | null;
}

/**
 * The first structural problem of a parsed JSON value, or `null`: a container nested deeper
 * than {@link MAX_JSON_DEPTH}, or a string or object key that is not well-formed Unicode (an
 * unpaired UTF-16 surrogate, e.g. the escape `"\ud83d"` alone). `param` is the dotted path of
 * the field at fault, prefixed with `paramPrefix`; a key in it has its lone surrogates
 * replaced so the error itself is well-formed. Iterative, in document order, so any depth is safe;
 * run it before anything that recurses over the value.
 */
export function findJsonInputProblem(value: unknown, paramPrefix?: string): SchemaError | null {
  const stack: Node[] = [{ value, depth: 1, key: null, parent: null }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === "string") {
      if (!v.isWellFormed()) return illFormed(node, paramPrefix);
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (node.depth > MAX_JSON_DEPTH) {
      const param = pathOf(node, paramPrefix);
      return {
        message: `"${param}" is nested too deeply: request bodies may nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep.`,
        param,
      };
    }
    const depth = node.depth + 1;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth, key: i, parent: node });
      continue;
    }
    const keys = Object.keys(v);
    for (const key of keys) {
      if (!key.isWellFormed()) return illFormed({ value: key, depth, key, parent: node }, paramPrefix);
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      stack.push({ value: (v as Record<string, unknown>)[key], depth, key, parent: node });
    }
  }
  return null;
}

function illFormed(node: Node, paramPrefix: string | undefined): SchemaError {
  const param = pathOf(node, paramPrefix);
  const subject = param ? `"${param}"` : "The request body";
  return {
    message: `${subject} is not well-formed Unicode text: it contains an unpaired UTF-16 surrogate (such as "\\ud83d" without its other half).`,
    param,
  };
}

function pathOf(node: Node, paramPrefix: string | undefined): string {
  const segments: string[] = [];
  for (let n: Node | null = node; n && n.key !== null; n = n.parent) {
    segments.push(String(n.key).toWellFormed());
  }
  if (paramPrefix) segments.push(paramPrefix);
  return segments.reverse().join(".");
}
