#!/usr/bin/env node
import { parseArgs } from "node:util";
import { startStandIn } from "./server.mjs";

/**
 * CLI for `npm run stand-in`:
 *   --port 8790 --host 127.0.0.1 --api-key sk-... --ttft-ms 0 --inter-token-ms 0 [--quiet]
 *   [--cache-ttl-ms 300000] [--implicit-cache-ttl-ms 300000]
 * Each flag falls back to an environment variable: STAND_IN_PORT, STAND_IN_HOST, STAND_IN_API_KEY,
 * STAND_IN_TTFT_MS, STAND_IN_INTER_TOKEN_MS, STAND_IN_CACHE_TTL_MS, STAND_IN_IMPLICIT_CACHE_TTL_MS. Without an API key any `sk-` bearer token is accepted.
 */

const DEFAULT_PORT = 8790;

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    "api-key": { type: "string" },
    "ttft-ms": { type: "string" },
    "inter-token-ms": { type: "string" },
    "cache-ttl-ms": { type: "string" },
    "implicit-cache-ttl-ms": { type: "string" },
    quiet: { type: "boolean", default: false },
  },
});

/**
 * @param {string | undefined} flag
 * @param {string | undefined} env
 * @param {number} fallback
 * @param {string} name
 */
function intSetting(flag, env, fallback, name) {
  const raw = flag ?? env;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`stand-in: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const standIn = await startStandIn({
  host: values.host ?? process.env.STAND_IN_HOST ?? "127.0.0.1",
  port: intSetting(values.port, process.env.STAND_IN_PORT, DEFAULT_PORT, "port"),
  apiKey: values["api-key"] ?? process.env.STAND_IN_API_KEY,
  ttftMs: intSetting(values["ttft-ms"], process.env.STAND_IN_TTFT_MS, 0, "ttft-ms"),
  interTokenMs: intSetting(
    values["inter-token-ms"],
    process.env.STAND_IN_INTER_TOKEN_MS,
    0,
    "inter-token-ms",
  ),
  log: !values.quiet,
  cacheTtlMs: intSetting(values["cache-ttl-ms"], process.env.STAND_IN_CACHE_TTL_MS, 300_000, "cache-ttl-ms"),
  implicitCacheTtlMs: intSetting(
    values["implicit-cache-ttl-ms"],
    process.env.STAND_IN_IMPLICIT_CACHE_TTL_MS,
    300_000,
    "implicit-cache-ttl-ms",
  ),
});

console.log(`DashScope stand-in listening: ${standIn.baseUrl}`);

let stopping = false;
/** @param {string} signal */
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`stand-in: ${signal}, shutting down`);
  await standIn.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
