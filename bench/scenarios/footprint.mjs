import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { bundleComposition, run, wranglerBin } from "../lib/build.mjs";
import { kib, num, section, table } from "../lib/format.mjs";

/** Parts of the bundle listed by name; the rest are summed. */
const LISTED_PARTS = 6;

/**
 * Startup as `wrangler check startup` profiles it (a local CPU profile of the Worker's startup phase).
 * It builds the Worker itself (its `--worker` flag wants a multipart upload body, not our bundle).
 * Returns `{ error }` when this wrangler has no such command or it fails.
 */
async function checkStartup(root) {
  const outfile = path.join(root, ".bench", "worker-startup.cpuprofile");
  try {
    const output = await run(
      process.execPath,
      [wranglerBin(root), "check", "startup", "--outfile", outfile],
      { cwd: root },
    );
    const field = (name) => {
      const m = new RegExp(`${name}:\\s*([\\d.]+)\\s*ms`).exec(output);
      return m ? Number(m[1]) : Number.NaN;
    };
    return {
      active: field("Active"),
      window: field("Profile window"),
      gc: Number(/including ([\d.]+) ms garbage/.exec(output)?.[1] ?? Number.NaN),
      profile: existsSync(outfile) ? outfile : null,
    };
  } catch (err) {
    // Strip terminal colours from the message.
    const text = stripVTControlCharacters(String(err.message ?? err));
    return { error: text.split("\n").find((l) => l.includes("ERROR") || l.includes("Unknown")) ?? "failed" };
  }
}

/** Bundle size (what `wrangler deploy` uploads), its composition, and startup time. */
export async function runFootprint(_h, { root, build }) {
  const parts = await bundleComposition(root);
  const total = parts.reduce((n, p) => n + p.bytes, 0);
  const listed = parts.slice(0, LISTED_PARTS).map((p) => `${p.part} ${num((p.bytes / total) * 100, 0)}%`);
  const startup = await checkStartup(root);
  const rows = [
    ["bundle raw (`wrangler deploy --dry-run`)", kib(build.rawBytes)],
    ["bundle gzip", kib(build.gzipBytes)],
    ["wrangler's own report", build.wranglerReport ?? "— (reused build)"],
    ["largest parts of the bundle", listed.join(", ")],
    [
      "startup (`wrangler check startup`)",
      startup.error
        ? `unavailable: ${startup.error}`
        : `${num(startup.active, 1)} ms CPU active (${num(startup.gc, 1)} ms of it GC) in a ${num(startup.window, 1)} ms profile window`,
    ],
  ];
  const metrics = {
    "footprint.gzipBytes": build.gzipBytes,
    "footprint.rawBytes": build.rawBytes,
    "footprint.startupActiveMs": startup.active ?? Number.NaN,
  };
  const sourceMap = `${build.scriptPath}.map`;
  if (existsSync(sourceMap)) metrics["footprint.sourceMapBytes"] = readFileSync(sourceMap).length;
  const markdown = section(
    "Footprint",
    "Gzip is computed here with Node's zlib at the default level, as wrangler reports it; shares are of the unminified esbuild output (`src/…` is our code).",
    table(["measure", "value"], rows),
  );
  return { markdown, metrics };
}
