import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildImportGraph, EXCEPTIONS, LAYERS, layerViolations, runtimeCycles } from "./layers";

const SRC = path.join(import.meta.dirname, "../../src");

/** Every TypeScript file of `src/`, by its path relative to `src/`. */
function readSources(): Map<string, string> {
  const files = readdirSync(SRC, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => file.split(path.sep).join("/"))
    .sort();
  return new Map(files.map((file) => [file, readFileSync(path.join(SRC, file), "utf8")]));
}

describe("src/", () => {
  const sources = readSources();
  const edges = buildImportGraph(sources);

  it("is read whole (the graph is not empty by mistake)", () => {
    expect(sources.size).toBeGreaterThan(50);
    expect(edges.filter((e) => !e.external).length).toBeGreaterThan(150);
  });

  it("imports point down the layer order only (type imports included)", () => {
    expect(layerViolations([...sources.keys()], edges, LAYERS, EXCEPTIONS)).toEqual([]);
  });

  it("has no runtime import cycle", () => {
    expect(runtimeCycles(edges)).toEqual([]);
  });
});

describe("the checks themselves", () => {
  const layers = [["routes/"], ["chat/", "hono"], ["store/"]];
  const graphOf = (files: Record<string, string>) => {
    const sources = new Map(Object.entries(files));
    return { files: [...sources.keys()], edges: buildImportGraph(sources) };
  };

  it("report an import that points up, naming file, line, import and rule", () => {
    const { files, edges } = graphOf({
      "routes/a.ts": 'import { b } from "../chat/b";',
      "chat/b.ts": '\nimport type { Row } from "../routes/a";\nexport const b = 1;',
      "store/c.ts": "export {};",
    });
    expect(layerViolations(files, edges, layers)).toEqual([
      'chat/b.ts:2 imports type "../routes/a" (routes/a.ts): chat/ (layer 2) may not import routes/ (layer 1), ' +
        "which is up; imports point down only (test/node/layers.ts, LAYERS)",
    ]);
  });

  it("report sideways imports, packages placed in a layer, and files in no layer", () => {
    const { files, edges } = graphOf({
      "routes/a.ts": 'import { Hono } from "hono";',
      "chat/b.ts": 'import type { Context } from "hono/types";',
      "store/c.ts": 'export { x } from "hono";',
      "misc/d.ts": "export {};",
    });
    const problems = layerViolations(files, edges, layers);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toBe("misc/d.ts is in no layer: add its folder to LAYERS");
    expect(problems[1]).toMatch(
      /^chat\/b\.ts:1 .*chat\/ \(layer 2\) may not import hono \(layer 2\), which is sideways/,
    );
    expect(problems[2]).toMatch(
      /^store\/c\.ts:1 .*store\/ \(layer 3\) may not import hono \(layer 2\), which is up/,
    );
  });

  it('see import("…") types and dynamic imports', () => {
    const { edges } = graphOf({
      "chat/a.ts":
        'export type T = import("../routes/b").B;\nexport const load = () => import("../routes/b");',
      "routes/b.ts": "export type B = number;",
    });
    expect(edges.map((e) => [e.to, e.typeOnly, e.line])).toEqual([
      ["routes/b.ts", true, 1],
      ["routes/b.ts", false, 2],
    ]);
  });

  it("fail on exceptions that match nothing, and on entries that match no file", () => {
    const { files, edges } = graphOf({ "routes/a.ts": "export {};", "chat/b.ts": "export {};" });
    expect(layerViolations(files, edges, layers, [{ from: "chat/b.ts", to: "routes/a.ts" }])).toEqual([
      "LAYERS names store/, which matches no file: remove it",
      "the exception chat/b.ts → routes/a.ts matches no import: remove it",
    ]);
  });

  it("find runtime cycles and ignore cycles closed only by type imports", () => {
    const { edges } = graphOf({
      "chat/a.ts": 'import { b } from "./b";\nexport const a = b;',
      "chat/b.ts": 'import { c } from "./c";\nexport const b = c;',
      "chat/c.ts": 'import { a } from "./a";\nimport type { T } from "./t";\nexport const c = 1;',
      "chat/t.ts": 'import { c } from "./c";\nexport type T = typeof c;',
      "chat/u.ts": 'import type { V } from "./v";\nexport type U = V;',
      "chat/v.ts": 'import type { U } from "./u";\nexport type V = U;',
    });
    expect(runtimeCycles(edges)).toEqual(["chat/a.ts → chat/b.ts → chat/c.ts → chat/a.ts"]);
  });

  it("count `import { type X }` as a runtime import (verbatimModuleSyntax keeps it)", () => {
    const { edges } = graphOf({
      "chat/a.ts": 'import { type B } from "./b";\nexport type A = B;',
      "chat/b.ts": 'import type { A } from "./a";\nexport type B = A;',
    });
    expect(edges.map((e) => e.typeOnly)).toEqual([false, true]);
  });
});
