/**
 * Generates packages/client's types from the OpenAPI document, with @hey-api/openapi-ts's
 * `@hey-api/typescript` plugin (types only: the package's thin hand-written layer does the HTTP).
 *
 *   node scripts/generate-client-types.mjs                    # builds and starts the Worker, reads its /openapi.json
 *   node scripts/generate-client-types.mjs --from doc.json --out dir   # from a saved document, into dir
 *
 * Offline: the input is a local file and the plugin needs nothing else. test/node/client-package.test.ts
 * regenerates the types from the running Worker's document and fails when the committed ones differ.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@hey-api/openapi-ts";
import { buildWorker } from "../bench/lib/build.mjs";
import { startHarness } from "../bench/lib/harness.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, "packages/client/src/generated");

/** Writes the types of the document at `input` (a file) into `out`, replacing what is there. */
async function generate(input, out) {
  await createClient({
    input,
    output: { path: out, importFileExtension: null },
    plugins: ["@hey-api/typescript"],
    logs: { level: "silent" },
  });
}

/** The running Worker's `/openapi.json`, saved to a temporary file (removed by the returned cleanup). */
async function documentFromWorker() {
  const dir = mkdtempSync(path.join(tmpdir(), "edge-chat-openapi-"));
  const { scriptPath } = await buildWorker(ROOT, dir);
  const harness = await startHarness({ root: ROOT, scriptPath });
  try {
    const res = await fetch(`${harness.edgeOrigin}/openapi.json`);
    if (res.status !== 200) throw new Error(`/openapi.json: HTTP ${res.status}`);
    const file = path.join(dir, "openapi.json");
    writeFileSync(file, await res.text());
    return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  } finally {
    await harness.close();
  }
}

const { values } = parseArgs({ options: { from: { type: "string" }, out: { type: "string" } } });
if (values.from) {
  await generate(path.resolve(values.from), path.resolve(values.out ?? OUT));
} else {
  const { file, cleanup } = await documentFromWorker();
  try {
    await generate(file, path.resolve(values.out ?? OUT));
  } finally {
    cleanup();
  }
}
