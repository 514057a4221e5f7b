#!/usr/bin/env node
// `npm run dev`: the Worker with local D1/KV/Durable Objects, offline, on http://localhost:8787
// (`npm run dev -- --port N`, or PORT=N; any other argument goes to `wrangler dev` as well).
// 1. a local dev identity (key pair + AUTH_DEV_JWKS in .dev.vars) for `npm run token`, and an
//    ADMIN_TOKEN in .dev.vars for the operator routes when none is set;
// 2. the ports checked before anything listens: a taken one is named, with how to pick another;
// 3. D1 migrations applied to every local shard database (scripts/db-migrate.mjs);
// 4. without DASHSCOPE_API_KEY (environment or .dev.vars), the DashScope stand-in as upstream on
//    127.0.0.1:8790 (`STAND_IN_PORT`), its address and a per-run key handed to wrangler in a
//    file (never on the command line, where `ps` shows it);
// 5. `wrangler dev` with its start-up noise left out, then one line with the next command.
// Whatever ends this process (Ctrl-C, a signal, wrangler exiting, an error) stops wrangler too.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startStandIn } from "../tools/dashscope-stand-in/server.mjs";
import { devVar, devVarsPath, ensureAdminToken, readDevVars } from "./dev/dev-vars.mjs";
import { applyLocalMigrations } from "./dev/migrations.mjs";
import { nextFreePort, parsePort, portIsFree } from "./dev/ports.mjs";
import { filterWranglerOutput } from "./dev/wrangler-output.mjs";
import { ensureDevAuth } from "./dev-auth.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Run with this process's Node (the project's Node 22 under `npm run`), not whatever `node` is first on PATH.
const wrangler = [process.execPath, path.join(root, "node_modules", "wrangler", "bin", "wrangler.js")];
const DEFAULT_PORT = 8787;
const DEFAULT_STAND_IN_PORT = 8790;
/** How long wrangler may take to answer /healthz after starting, in ms. */
const READY_TIMEOUT_MS = 90_000;
/** Per-run vars for wrangler (the stand-in's address and key); under .wrangler/, gitignored. */
const standInEnvFile = path.join(root, ".wrangler", "edge-chat-dev", "stand-in.env");

// Offline-friendly wrangler: no banner, no telemetry, no fetch of the `request.cf` sample
// (offline it fails with a `getaddrinfo ENOTFOUND workers.cloudflare.com` stack trace).
const wranglerEnv = {
  ...process.env,
  WRANGLER_HIDE_BANNER: "true",
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

const say = (line) => console.log(`[edge-chat] ${line}`);
/** Prints one line and stops (with everything started so far, see `cleanUp`). */
const fail = (line) => {
  console.error(`[edge-chat] ${line}`);
  process.exit(1);
};

let child = null;
let standIn = null;
/** Stops wrangler (its whole process group: the CLI and workerd) and removes the per-run file. */
function cleanUp(signal = "SIGTERM") {
  if (child && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  }
  rmSync(standInEnvFile, { force: true });
}
process.on("exit", () => cleanUp());
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (!child) process.exit(130);
    cleanUp(signal === "SIGHUP" ? "SIGTERM" : signal);
  });
}
process.on("uncaughtException", (err) => fail(`stopped: ${err?.message ?? err}`));
process.on("unhandledRejection", (err) => fail(`stopped: ${err?.message ?? err}`));

const userArgs = process.argv.slice(2);
const { values: flags } = parseArgs({
  args: userArgs,
  options: { port: { type: "string" }, ip: { type: "string" } },
  strict: false,
});
const portSetting = flags.port ?? process.env.PORT ?? String(DEFAULT_PORT);
const port = parsePort(portSetting);
if (port === null) fail(`the port must be a number from 1 to 65535, got ${JSON.stringify(portSetting)}.`);
const host = typeof flags.ip === "string" ? flags.ip : "localhost";
const standInPort = parsePort(process.env.STAND_IN_PORT || DEFAULT_STAND_IN_PORT);
if (standInPort === null)
  fail(`STAND_IN_PORT must be a port number (1-65535), got ${JSON.stringify(process.env.STAND_IN_PORT)}.`);

await ensureDevAuth(root);
if (await ensureAdminToken(root)) say("wrote a random ADMIN_TOKEN to .dev.vars for the operator routes");
const useStandIn = !process.env.DASHSCOPE_API_KEY && !devVar(await readDevVars(root), "DASHSCOPE_API_KEY");

if (!(await portIsFree(port, host))) {
  const free = await nextFreePort(port, host);
  fail(
    `port ${port} is already in use (another \`npm run dev\`?). Choose another: npm run dev -- --port ${free}  (or PORT=${free} npm run dev)`,
  );
}
if (useStandIn && !(await portIsFree(standInPort, "127.0.0.1"))) {
  const free = await nextFreePort(standInPort, "127.0.0.1");
  fail(
    `port ${standInPort} (the DashScope stand-in) is already in use. Choose another: STAND_IN_PORT=${free} npm run dev`,
  );
}

const migrations = applyLocalMigrations(wrangler, root, wranglerEnv);
if (!migrations.ok) {
  process.stderr.write(migrations.output);
  fail("applying the D1 migrations to the local databases failed (output above)");
}
const databases =
  migrations.shards === 1 ? "the local database" : `the ${migrations.shards} local shard databases`;
say(
  migrations.applied > 0
    ? `applied ${migrations.applied} D1 migration(s) to ${databases}`
    : `${databases} ${migrations.shards === 1 ? "is" : "are"} up to date`,
);

const args = ["dev", ...userArgs];
if (flags.port === undefined) args.push("--port", String(port));
if (useStandIn) {
  const key = `sk-stand-in-${randomBytes(16).toString("hex")}`;
  try {
    standIn = await startStandIn({ host: "127.0.0.1", port: standInPort, apiKey: key });
  } catch (err) {
    fail(
      `the DashScope stand-in could not listen on port ${standInPort} (${err.code ?? err.message}). Choose another: STAND_IN_PORT=${standInPort + 1} npm run dev`,
    );
  }
  await mkdir(path.dirname(standInEnvFile), { recursive: true, mode: 0o700 });
  writeFileSync(standInEnvFile, `DASHSCOPE_BASE_URL=${standIn.baseUrl}\nDASHSCOPE_API_KEY=${key}\n`, {
    mode: 0o600,
  });
  // With --env-file, wrangler reads only the files named (later ones win), so .dev.vars comes first.
  args.push("--env-file", devVarsPath(root), "--env-file", standInEnvFile);
  say(`no DASHSCOPE_API_KEY set: answers come from the local DashScope stand-in on port ${standInPort}`);
} else {
  say("DASHSCOPE_API_KEY is set: answers come from DashScope");
}

// A process group of its own, so that stopping it reaches workerd too; stdin is not passed on
// (wrangler's keyboard shortcuts need a terminal, and a background group must not read one).
child = spawn(wrangler[0], [...wrangler.slice(1), ...args], {
  cwd: root,
  env: wranglerEnv,
  stdio: ["ignore", "pipe", "pipe"],
  detached: true,
});
let starting = true;
filterWranglerOutput(child.stdout, process.stdout, () => starting);
filterWranglerOutput(child.stderr, process.stderr, () => starting);
child.on("exit", async (code, signal) => {
  child = null;
  await standIn?.close();
  process.exit(code ?? (signal === "SIGINT" ? 130 : signal ? 1 : 0));
});

const origin = `http://${host === "0.0.0.0" || host === "::" ? "localhost" : host}:${port}`;
const ready = await waitUntilReady(`${origin}/healthz`);
// Lines are read asynchronously: let the log of the last check through the filter first.
setTimeout(() => {
  starting = false;
}, 1_000);
if (ready) {
  const curlHost = origin.replace(/^http:\/\//, "");
  say(`ready on ${origin}  (docs: ${origin}/docs; stop with Ctrl-C)`);
  say("next, in another terminal:");
  console.log(
    `  TOKEN=$(npm run --silent token -- alice) && curl -s ${curlHost}/v1/conversations -H "authorization: Bearer $TOKEN"`,
  );
} else if (child) {
  fail(`wrangler did not answer ${origin}/healthz within ${READY_TIMEOUT_MS / 1000} s; stopping`);
}

/** Polls `url` until it answers 200, wrangler exits, or the timeout passes. */
async function waitUntilReady(url) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (child && Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
      if (res.ok) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}
