import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

/** Builds the Worker exactly as `wrangler deploy` would upload it, and the stream library for Node. */

/**
 * Runs a command to its end; resolves with its combined output, rejects on a non-zero exit.
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd: string, env?: Record<string, string> }} options
 */
export function run(command, args, { cwd, env = {} }) {
  return new Promise((resolve, reject) => {
    // Telemetry off: the bench must not talk to anything beyond 127.0.0.1.
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", ...env },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${command} ${args.join(" ")} exited ${code}:\n${output}`)),
    );
  });
}

/** The wrangler CLI of this repository (no global install needed). */
export function wranglerBin(root) {
  return path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
}

/**
 * `wrangler deploy --dry-run --outdir <outDir>`: the deployable bundle, and the sizes wrangler reports.
 * @returns {Promise<{ scriptPath: string, rawBytes: number, gzipBytes: number, wranglerReport: string | null }>}
 */
export async function buildWorker(root, outDir) {
  const output = await run(process.execPath, [wranglerBin(root), "deploy", "--dry-run", "--outdir", outDir], {
    cwd: root,
  });
  const scriptPath = path.join(outDir, "index.js");
  const bytes = readFileSync(scriptPath);
  const report = /Total Upload:\s*([^\n]+)/.exec(output);
  return {
    scriptPath,
    rawBytes: bytes.length,
    gzipBytes: gzipSync(bytes).length,
    wranglerReport: report ? report[1].trim() : null,
  };
}

/**
 * What the bundle is made of: bytes in the (unminified) output per npm package or src folder, largest first.
 * Uses esbuild with the Workers resolution conditions; the totals track wrangler's within a few percent.
 * @returns {Promise<Array<{ part: string, bytes: number }>>}
 */
export async function bundleComposition(root) {
  const result = await esbuild.build({
    entryPoints: [path.join(root, "src/index.ts")],
    absWorkingDir: root,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    external: ["cloudflare:*", "node:*"],
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const parts = new Map();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const part = pkg ? pkg[1] : input.split("/").slice(0, 2).join("/");
      parts.set(part, (parts.get(part) ?? 0) + bytesInOutput);
    }
  }
  return [...parts].map(([part, bytes]) => ({ part, bytes })).sort((a, b) => b.bytes - a.bytes);
}

/**
 * Bundles the DashScope stream decoder and accumulator (src/dashscope/) into one ESM file Node can import.
 * @returns {Promise<string>} the file path
 */
export async function buildStreamLibrary(root, outFile) {
  await esbuild.build({
    stdin: {
      contents:
        'export { DashScopeEventDecoder } from "./src/dashscope/stream.ts";\nexport { CompletionAccumulator } from "./src/dashscope/accumulator.ts";\n',
      resolveDir: root,
      loader: "ts",
    },
    absWorkingDir: root,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    outfile: outFile,
    logLevel: "silent",
  });
  return outFile;
}

/**
 * The bundle of an earlier build, for `--reuse-build`.
 * @returns {{ scriptPath: string, rawBytes: number, gzipBytes: number, wranglerReport: string | null }}
 */
export function previousBuild(outDir) {
  const scriptPath = path.join(outDir, "index.js");
  const bytes = readFileSync(scriptPath);
  return { scriptPath, rawBytes: bytes.length, gzipBytes: gzipSync(bytes).length, wranglerReport: null };
}
