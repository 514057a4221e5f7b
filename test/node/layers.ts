/**
 * The layer order of `src/` as data, and the checks that hold the code to it: an import graph
 * built with TypeScript's own parser, the layer rule and the cycle rule over it.
 */
import path from "node:path";
import ts from "typescript";

/**
 * The layers of `src/`, top first. A file may import files of its own entry and of any entry in
 * a lower layer; never one above (upward) nor another entry of its own layer (sideways: entries
 * of one layer are independent of each other). Type-only imports count too: a type import
 * upward is still knowledge of the layer above.
 *
 * An entry is a folder (`routes/`), a file at the top of `src/` (`config.ts`) or a package
 * (`hono`, with its subpaths). A package placed in a layer may be imported only from above it:
 * `hono` beside `dashscope/` and `store/` keeps the HTTP framework out of both, as
 * `../shared/ARCHITECTURE.md` asks ("`store/` knows nothing of HTTP, `dashscope/` nothing of our
 * HTTP errors"), and out of everything below them. Every file of `src/` must fall in an entry,
 * so a new folder has to be placed here before it can land.
 */
export const LAYERS: readonly (readonly string[])[] = [
  // The Worker's entry: the app and the Durable Object class.
  ["index.ts"],
  // The Hono app: routes and middleware wired together.
  ["app.ts"],
  // HTTP only: validate, call the layers below, shape the JSON or the stream.
  ["routes/"],
  // The request pipeline (auth, rate limits, body limit, error envelope); the HTTP contract as
  // zod schemas (request bodies, responses) and the OpenAPI document built from them.
  ["middleware/", "openapi/"],
  // The conversation's Durable Object (turns, the in-flight answer, its event log); credentials
  // (JWT verification, JWKS, API keys).
  ["generation/", "auth/"],
  // The domain rules: prompt assembly, tokens, models and prices, usage and quotas, the
  // OpenAI-compatible output, and DashScope's failures mapped to our errors. The Vercel AI SDK's
  // chat request and UI message stream, translated from and to edge-chat's turns. Webhooks when
  // an answer ends: the outbox fed to the queue, the queue's consumers (signed deliveries, dead letters).
  ["chat/", "ui/", "webhooks/"],
  // Our HTTP error envelope; Hono's environment type for routes and middleware.
  ["errors/", "app-env.ts"],
  // DashScope's protocol (request schema, client, stream decoding, typed failures); D1 and KV
  // (all SQL, cursors, ids); and Hono, which neither of them may import.
  ["dashscope/", "store/", "hono"],
  // The resources of the HTTP contract as zod schemas (what the store returns, the document
  // shows and the routes answer), and the error codes; plain data shapes, importing no layer above.
  ["resources/"],
  // Server-sent event framing (encode, decode, heartbeat); text made safe to store and send
  // (well-formed Unicode, control characters); configuration read from the environment.
  ["sse/", "text/", "config.ts"],
  // One JSON line per event with the request's context (config.ts logs what it ignores).
  ["log/"],
];

/**
 * Imports that break the rule today, each with the reason and what removes it. The check fails
 * on an exception that no longer matches an import, so the list only shrinks.
 */
export const EXCEPTIONS: readonly { from: string; to: string; why: string }[] = [];

/** One import of a source file. */
export interface ImportEdge {
  /** The importing file, relative to the source root (`dashscope/errors.ts`). */
  from: string;
  /** The imported file relative to the source root, or the package (`hono`, `node:fs`). */
  to: string;
  /** Whether `to` is a package rather than a file of the tree. */
  external: boolean;
  /** The module specifier as written. */
  specifier: string;
  /**
   * Erased at compile time: `import type …`, `export type … from`, `import("…").T` in a type.
   * `import { type A } from` is not: under `verbatimModuleSyntax` it stays as `import {} from`,
   * which still loads the module.
   */
  typeOnly: boolean;
  line: number;
}

/** A specifier and where it is, as found by {@link importsOf}. */
interface FoundImport {
  specifier: string;
  typeOnly: boolean;
  line: number;
}

/**
 * Every module reference in a TypeScript source, by walking the syntax tree of TypeScript's own
 * parser (static imports and re-exports, `import x = require()`, dynamic `import()`, and
 * `import("…")` type queries). A dynamic import whose specifier is not a string literal cannot
 * be checked and throws.
 */
export function importsOf(fileName: string, source: string): FoundImport[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: FoundImport[] = [];
  const add = (node: ts.Node, specifier: ts.Node, typeOnly: boolean) => {
    if (!ts.isStringLiteralLike(specifier)) {
      const { line } = file.getLineAndCharacterOfPosition(node.getStart(file));
      throw new Error(`${fileName}:${line + 1}: an import whose module is not a string literal`);
    }
    const { line } = file.getLineAndCharacterOfPosition(node.getStart(file));
    found.push({ specifier: specifier.text, typeOnly, line: line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ?? false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0] ?? node, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** `hono/utils/http-status` → `hono`, `@scope/pkg/x` → `@scope/pkg`, `node:fs` → `node:fs`. */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/**
 * The import graph of a source tree. `sources` maps each file's path relative to the source
 * root (`routes/openai.ts`) to its text. Relative specifiers are resolved as the bundler does
 * (`./x` → `x.ts` or `x/index.ts`); one that names no file of the tree throws.
 */
export function buildImportGraph(sources: ReadonlyMap<string, string>): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const [from, source] of sources) {
    for (const { specifier, typeOnly, line } of importsOf(from, source)) {
      if (!specifier.startsWith(".")) {
        edges.push({ from, to: packageOf(specifier), external: true, specifier, typeOnly, line });
        continue;
      }
      const base = path.posix.join(path.posix.dirname(from), specifier);
      const to = [base, `${base}.ts`, `${base}/index.ts`].find((candidate) => sources.has(candidate));
      if (!to) throw new Error(`${from}:${line}: "${specifier}" names no file of the tree`);
      edges.push({ from, to, external: false, specifier, typeOnly, line });
    }
  }
  return edges;
}

function entryKind(entry: string): "folder" | "file" | "package" {
  return entry.endsWith("/") ? "folder" : entry.endsWith(".ts") ? "file" : "package";
}

/** The entry of {@link LAYERS} a file or package falls in, with its layer's index (0 = top). */
function placeOf(
  node: string,
  external: boolean,
  layers: readonly (readonly string[])[],
): { entry: string; layer: number } | null {
  for (const [layer, entries] of layers.entries()) {
    for (const entry of entries) {
      const matches = external
        ? entryKind(entry) === "package" && node === entry
        : entryKind(entry) === "folder"
          ? node.startsWith(entry)
          : node === entry;
      if (matches) return { entry, layer };
    }
  }
  return null;
}

/**
 * Every break of the layer rule, as readable lines: imports that point up or sideways, files
 * that fall in no entry, entries that match no file, and exceptions that match no break.
 */
export function layerViolations(
  files: readonly string[],
  edges: readonly ImportEdge[],
  layers: readonly (readonly string[])[],
  exceptions: readonly { from: string; to: string }[] = [],
): string[] {
  const problems: string[] = [];
  const describe = (entry: string, layer: number) => `${entry} (layer ${layer + 1})`;
  for (const file of files) {
    if (!placeOf(file, false, layers)) problems.push(`${file} is in no layer: add its folder to LAYERS`);
  }
  for (const entry of layers.flat()) {
    if (
      entryKind(entry) !== "package" &&
      !files.some((file) => placeOf(file, false, layers)?.entry === entry)
    )
      problems.push(`LAYERS names ${entry}, which matches no file: remove it`);
  }
  const used = new Set<number>();
  for (const edge of edges) {
    const from = placeOf(edge.from, false, layers);
    const to = placeOf(edge.to, edge.external, layers);
    if (!from || !to || from.entry === to.entry || to.layer > from.layer) continue;
    const exception = exceptions.findIndex((e) => e.from === edge.from && e.to === edge.to);
    if (exception >= 0) {
      used.add(exception);
      continue;
    }
    const direction = to.layer < from.layer ? "up" : "sideways";
    problems.push(
      `${edge.from}:${edge.line} imports${edge.typeOnly ? " type" : ""} "${edge.specifier}" (${edge.to}): ` +
        `${describe(from.entry, from.layer)} may not import ${describe(to.entry, to.layer)}, which is ${direction}; ` +
        "imports point down only (test/node/layers.ts, LAYERS)",
    );
  }
  for (const [i, e] of exceptions.entries()) {
    if (!used.has(i)) problems.push(`the exception ${e.from} → ${e.to} matches no import: remove it`);
  }
  return problems;
}

/**
 * The cycles among runtime imports (type-only imports are erased, so they cannot form a load
 * cycle): one path per strongly connected component, e.g. `a.ts → b.ts → a.ts`.
 */
export function runtimeCycles(edges: readonly ImportEdge[]): string[] {
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    if (edge.external || edge.typeOnly) continue;
    next.set(edge.from, [...(next.get(edge.from) ?? []), edge.to]);
  }
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || next.get(node)?.includes(node)) components.push(component);
    }
  };
  for (const node of next.keys()) if (!index.has(node)) connect(node);
  return components.map((component) => cyclePath(component, next));
}

/** A cycle through the first member of a strongly connected component, staying inside it. */
function cyclePath(component: string[], next: ReadonlyMap<string, string[]>): string {
  const members = new Set(component);
  const start = component.toSorted()[0]!;
  const seen = new Set<string>();
  const walk = (node: string, trail: string[]): string[] | null => {
    for (const to of next.get(node) ?? []) {
      if (to === start) return [...trail, to];
      if (members.has(to) && !seen.has(to)) {
        seen.add(to);
        const found = walk(to, [...trail, to]);
        if (found) return found;
      }
    }
    return null;
  };
  return (walk(start, [start]) ?? component).join(" → ");
}
