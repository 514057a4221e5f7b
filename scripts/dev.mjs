#!/usr/bin/env node
// `npm run dev`: the Worker on http://localhost:8787 with local D1/KV/Durable Objects, offline.
// 1. a local dev identity (key pair + AUTH_DEV_JWKS in .dev.vars) for `npm run token`;
// 2. D1 migrations applied to the local database;
// 3. without DASHSCOPE_API_KEY (environment or .dev.vars), the DashScope stand-in as upstream;
// 4. `wrangler dev`, with any extra arguments passed through (`npm run dev -- --port 9000`).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startStandIn } from "../tools/dashscope-stand-in/server.mjs";
import { ensureDevAuth } from "./dev-auth.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const STAND_IN_PORT = Number(process.env.STAND_IN_PORT || 8790);
const STAND_IN_KEY = "sk-edge-chat-local-stand-in";

const say = (line) => console.log(`[edge-chat] ${line}`);

await ensureDevAuth(root);
say("local auth ready: mint a token with `npm run token -- <user-id>`");

const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local"], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, CI: "true" },
});
if (migrate.status !== 0) {
  console.error("[edge-chat] applying D1 migrations failed");
  process.exit(migrate.status ?? 1);
}

const args = ["dev", ...process.argv.slice(2)];
let standIn = null;
if (!hasApiKey()) {
  standIn = await startStandIn({ host: "127.0.0.1", port: STAND_IN_PORT, apiKey: STAND_IN_KEY });
  args.push("--var", `DASHSCOPE_BASE_URL:${standIn.baseUrl}`, "--var", `DASHSCOPE_API_KEY:${STAND_IN_KEY}`);
  say(`no DASHSCOPE_API_KEY set: answers come from the local DashScope stand-in at ${standIn.baseUrl}`);
  say("select stand-in behaviours with a directive in a message, e.g. [[stand-in tokens=40 reasoning=10]]");
} else {
  say("DASHSCOPE_API_KEY is set: answers come from DashScope");
}

const child = spawn(wrangler, args, { cwd: root, stdio: "inherit" });
const stop = (signal) => child.kill(signal);
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
child.on("exit", async (code) => {
  await standIn?.close();
  process.exit(code ?? 0);
});

/** A key in the environment or in .dev.vars means the real DashScope. */
function hasApiKey() {
  if (process.env.DASHSCOPE_API_KEY) return true;
  const devVars = path.join(root, ".dev.vars");
  if (!existsSync(devVars)) return false;
  return /^\s*(export\s+)?DASHSCOPE_API_KEY\s*=\s*['"]?[^'"\s]+/m.test(readFileSync(devVars, "utf8"));
}
