import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildWorker, previousBuild } from "./lib/build.mjs";
import { section } from "./lib/format.mjs";
import { startHarness } from "./lib/harness.mjs";
import { describeMachine } from "./lib/machine.mjs";
import { readOptions } from "./lib/options.mjs";
import { agent } from "./lib/stream-client.mjs";
import { checkTargets } from "./lib/targets.mjs";
import { runConcurrency } from "./scenarios/concurrency.mjs";
import { runFootprint } from "./scenarios/footprint.mjs";
import { runHistory } from "./scenarios/history.mjs";
import { runMemory } from "./scenarios/memory.mjs";
import { runPhotos } from "./scenarios/photos.mjs";
import { summarizeRoundTrips } from "./scenarios/round-trips.mjs";
import { runStreamCost } from "./scenarios/stream-cost.mjs";
import { runTimeline } from "./scenarios/timeline.mjs";
import { runTokenEconomy } from "./scenarios/token-economy.mjs";
import { runTtft } from "./scenarios/ttft.mjs";
import { runTtftD1 } from "./scenarios/ttft-d1.mjs";
import { runWholeTurn } from "./scenarios/whole-turn.mjs";

/*
 * `npm run bench`: edge-chat against the DashScope stand-in, side by side with a direct call and a bare
 * pass-through Worker on the same runtime. Prints one markdown report and writes it to .bench/latest.md.
 * See BENCHMARKS.md for the method and how to read the numbers.
 */

const root = path.resolve(import.meta.dirname, "..");
const outDir = path.join(root, ".bench");
const opts = { ...readOptions(), root };
mkdirSync(outDir, { recursive: true });

const SCENARIO_RUNNERS = {
  ttft: runTtft,
  "ttft-d1": runTtftD1,
  timeline: runTimeline,
  "whole-turn": runWholeTurn,
  concurrency: runConcurrency,
  history: runHistory,
  memory: runMemory,
  "stream-cost": runStreamCost,
  footprint: runFootprint,
  "token-economy": runTokenEconomy,
  photos: runPhotos,
};

const startedAt = Date.now();
const loadAtStart = os.loadavg()[0];
const log = (line) => console.error(`[bench +${((Date.now() - startedAt) / 1000).toFixed(0)}s] ${line}`);

log("building the Worker (wrangler deploy --dry-run)");
const build = opts.reuseBuild
  ? previousBuild(path.join(outDir, "build"))
  : await buildWorker(root, path.join(outDir, "build"));
const h = await startHarness({
  root,
  scriptPath: build.scriptPath,
  timeline: opts.scenarios.includes("timeline"),
  dropOldest: opts.scenarios.includes("token-economy"),
  inspector: opts.scenarios.includes("memory") || opts.scenarios.includes("photos"),
});
log(`workerd pid ${h.workerdPid}; edge-chat at ${h.edgeOrigin}, pass-through at ${h.passthroughUrl}`);

const sections = [];
const metrics = {};
const failures = [];
try {
  for (const name of opts.scenarios) {
    log(`scenario ${name}`);
    try {
      const result = await SCENARIO_RUNNERS[name](h, { ...opts, build });
      sections.push(result.markdown);
      Object.assign(metrics, result.metrics);
    } catch (err) {
      failures.push(name);
      sections.push(
        section(
          name,
          `**Failed:** ${String(err?.stack ?? err)
            .split("\n")
            .slice(0, 3)
            .join(" ")}`,
          "",
        ),
      );
    }
  }
} finally {
  await h.close();
  agent.destroy();
}

const roundTrips = summarizeRoundTrips(h.turnLogs);
sections.push(roundTrips.markdown);
const targets = checkTargets(metrics, roundTrips.trips, opts);
const machine = describeMachine(root);
const report = [
  `## edge-chat bench — ${new Date(startedAt).toISOString().slice(0, 16).replace("T", " ")} UTC${opts.quick ? " (quick)" : ""}`,
  "",
  `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}, workerd ${machine.workerd} (Miniflare ${machine.miniflare}, wrangler ${machine.wrangler}). ` +
    `Runtime ${((Date.now() - startedAt) / 1000).toFixed(0)} s; 1-minute load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end (anything else running shares these CPUs).`,
  "",
  targets.markdown,
  "",
  sections.join("\n\n"),
  ...(h.errorLogs.length
    ? [
        "",
        `Worker error log lines during the run: ${h.errorLogs.length}; first: \`${h.errorLogs[0].slice(0, 300)}\``,
      ]
    : []),
  "",
].join("\n");

console.log(report);
writeFileSync(path.join(outDir, "latest.md"), report);
// The raw figures too, for comparing runs (before and after a change) without re-reading tables.
writeFileSync(
  path.join(outDir, "latest.json"),
  `${JSON.stringify({ startedAt, loadAtStart, metrics }, null, 2)}\n`,
);
log(`written to ${path.relative(root, path.join(outDir, "latest.md"))}`);
if (failures.length) {
  log(`scenarios that failed: ${failures.join(", ")}`);
  process.exitCode = 1;
}
if (h.errorLogs.length) {
  // Numbers measured while the Worker was failing are not a benchmark of it.
  log(`the Worker logged ${h.errorLogs.length} errors; first: ${h.errorLogs[0].slice(0, 300)}`);
  process.exitCode = 1;
}
