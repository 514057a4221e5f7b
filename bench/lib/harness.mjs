import { readFileSync } from "node:fs";
import path from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { startStandIn } from "../../tools/dashscope-stand-in/server.mjs";
import { SUMMARY_MODEL, TOKEN_ECONOMY_MODEL, TOKEN_ECONOMY_WINDOW } from "../scenarios/token-economy.mjs";
import { createDevAuth } from "./auth.mjs";
import { findWorkerdPid } from "./proc.mjs";
import { applyMigrations } from "./seed.mjs";
import { jsonRequest } from "./stream-client.mjs";
import { readWorkerConfig } from "./worker-config.mjs";

/**
 * Everything a bench run talks to, on 127.0.0.1: the DashScope stand-in (in this process), and one
 * workerd (Miniflare) running two Workers side by side with the same compatibility date and flags —
 * edge-chat, and the bare pass-through Worker. Each Worker gets its own direct socket, so requests
 * reach it without Miniflare's entry Worker in between.
 */

const STAND_IN_API_KEY = "sk-bench-stand-in";
const EDGE = "edge-chat";
const EDGE_TIMELINE = "edge-chat-timeline";
/** edge-chat with its history layout off (`HISTORY_FOLD=off`): the token-economy scenario's "drop oldest". */
const EDGE_DROP_OLDEST = "edge-chat-drop-oldest";
const PASSTHROUGH = "passthrough";
/**
 * `: ping` interval of the timeline Worker, short enough that pings show within the 5 s first-token
 * wait of the timeline scenario (deployed: SSE_PING_INTERVAL_MS = 15,000 in wrangler.toml).
 */
export const TIMELINE_PING_INTERVAL_MS = 1000;

/**
 * The bundle's modules for Miniflare: the bench entry (bench/workers/edge-chat-entry.mjs, which wraps
 * `DB` to add a settable delay to every D1 call) placed next to the bundle, which it imports as `./index.js`.
 */
function edgeModules(root, scriptPath) {
  const buildDir = path.dirname(scriptPath);
  return {
    modulesRoot: buildDir,
    modules: [
      {
        type: "ESModule",
        path: path.join(buildDir, "bench-entry.mjs"),
        contents: readFileSync(path.join(root, "bench/workers/edge-chat-entry.mjs"), "utf8"),
      },
      { type: "ESModule", path: path.join(buildDir, "index.js"), contents: readFileSync(scriptPath, "utf8") },
    ],
  };
}

/**
 * @param {{ root: string, scriptPath: string, timeline?: boolean, inspector?: boolean }} options root of
 *   the repository; the built Worker bundle; whether to run a second edge-chat Worker with a short ping
 *   interval (its own D1, KV and Durable Objects) for the timeline scenario; whether to open workerd's
 *   V8 inspector (on a free port) for heap snapshots; whether to run an edge-chat Worker with
 *   `HISTORY_FOLD=off` (its own D1, KV and Durable Objects) for the token-economy scenario
 */
export async function startHarness({
  root,
  scriptPath,
  timeline = false,
  inspector = false,
  dropOldest = false,
}) {
  const config = readWorkerConfig(path.join(root, "wrangler.toml"));
  const standIn = await startStandIn({ host: "127.0.0.1", port: 0, apiKey: STAND_IN_API_KEY });
  const auth = await createDevAuth();

  /** Parsed `turn.finished` lines the Worker logged, in order. */
  const turnLogs = [];
  /** Anything else the Workers logged at error level (reported if the run had errors). */
  const errorLogs = [];
  const onLog = ({ level, message }) => {
    // The Worker's lines are JSON with `level` and `event` first (src/log/log.ts).
    if (message.includes('"event":"turn.finished"')) turnLogs.push(JSON.parse(message));
    else if (level === "error" || level === "warn") errorLogs.push(message);
  };

  const runtime = {
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
  };
  const edgeWorker = (name, extraBindings) => ({
    name,
    ...edgeModules(root, scriptPath),
    ...runtime,
    // Two shards, as a sharded deployment binds them (src/store/shards.ts); the bench's user
    // lives on one of them.
    d1Databases: { DB: `${name}-db`, DB_1: `${name}-db-1` },
    kvNamespaces: { CACHE: `${name}-kv` },
    r2Buckets: { FILES: `${name}-files` },
    durableObjects: {
      CONVERSATION_GENERATION: { className: "ConversationGeneration", useSQLite: true },
    },
    // The limiter runs on every turn, as deployed, but never refuses the bench's one user.
    ratelimits: {
      RATE_LIMIT_STANDARD: { namespace_id: "1001", simple: { limit: 1_000_000, period: 60 } },
      RATE_LIMIT_RELAXED: { namespace_id: "1002", simple: { limit: 1_000_000, period: 60 } },
      RATE_LIMIT_STRICT: { namespace_id: "1003", simple: { limit: 1_000_000, period: 60 } },
    },
    bindings: {
      ...config.vars,
      // The bench measures overhead; one user sends thousands of turns, so no daily budget
      // (the quota reservation still runs in every turn's first batch).
      DAILY_TOKEN_BUDGET: "unlimited",
      // The token-economy scenario's model: qwen-plus (by its family) with a 16k-token window.
      MODEL_CONTEXT_TOKENS: JSON.stringify({
        ...JSON.parse(config.vars.MODEL_CONTEXT_TOKENS || "{}"),
        [TOKEN_ECONOMY_MODEL]: TOKEN_ECONOMY_WINDOW,
      }),
      // Running summaries by the stand-in's digest model (priced as qwen-flash, SUMMARY_MODEL's
      // default): it cannot summarise, so it answers with the lines it was given that carry `keep`.
      SUMMARY_MODEL,
      DASHSCOPE_BASE_URL: standIn.baseUrl,
      DASHSCOPE_API_KEY: STAND_IN_API_KEY,
      AUTH_DEV_JWKS: auth.jwksJson,
      ...extraBindings,
    },
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
  });
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      handleStructuredLogs: onLog,
      ...(inspector ? { inspectorPort: 0 } : {}),
      workers: [
        edgeWorker(EDGE, {}),
        ...(timeline
          ? [edgeWorker(EDGE_TIMELINE, { SSE_PING_INTERVAL_MS: String(TIMELINE_PING_INTERVAL_MS) })]
          : []),
        ...(dropOldest ? [edgeWorker(EDGE_DROP_OLDEST, { HISTORY_FOLD: "off" })] : []),
        {
          name: PASSTHROUGH,
          modules: true,
          scriptPath: path.join(root, "bench/workers/passthrough.mjs"),
          ...runtime,
          bindings: {
            UPSTREAM_URL: `${standIn.baseUrl}/chat/completions`,
            UPSTREAM_API_KEY: STAND_IN_API_KEY,
          },
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
        },
      ],
    }),
  );
  await mf.ready;
  const edgeOrigin = (await mf.unsafeGetDirectURL(EDGE)).origin;
  const passthroughUrl = (await mf.unsafeGetDirectURL(PASSTHROUGH)).href;
  const db = await mf.getD1Database("DB", EDGE);
  await applyMigrations(db, path.join(root, "migrations"));
  const shards = [db, await mf.getD1Database("DB_1", EDGE)];
  await applyMigrations(shards[1], path.join(root, "migrations"));
  const timelineOrigin = timeline ? (await mf.unsafeGetDirectURL(EDGE_TIMELINE)).origin : null;
  for (const shard of ["DB", "DB_1"])
    if (timeline)
      await applyMigrations(await mf.getD1Database(shard, EDGE_TIMELINE), path.join(root, "migrations"));
  const dropOldestWorker = dropOldest
    ? {
        origin: (await mf.unsafeGetDirectURL(EDGE_DROP_OLDEST)).origin,
        shards: [
          await mf.getD1Database("DB", EDGE_DROP_OLDEST),
          await mf.getD1Database("DB_1", EDGE_DROP_OLDEST),
        ],
      }
    : null;
  if (dropOldestWorker)
    for (const shard of dropOldestWorker.shards) await applyMigrations(shard, path.join(root, "migrations"));

  const harness = {
    config,
    /** The inspector's WebSocket URL of the edge-chat isolate, or null without `inspector`. */
    edgeInspectorUrl: inspector ? `ws://${(await mf.getInspectorURL()).host}/core:user:${EDGE}` : null,
    standIn,
    auth,
    db,
    /** Both shard databases of the edge-chat Worker, `DB` first. */
    shards,
    /** The shard database holding a conversation (a user's rows are on one of the two shards). */
    async dbHolding(conversationId) {
      for (const shard of shards) {
        const row = await shard
          .prepare("SELECT 1 FROM conversations WHERE id = ?")
          .bind(conversationId)
          .first();
        if (row) return shard;
      }
      throw new Error(`conversation ${conversationId} is on no shard`);
    },
    turnLogs,
    errorLogs,
    workerdPid: findWorkerdPid(),
    directUrl: `${standIn.baseUrl}/chat/completions`,
    standInAuth: { authorization: `Bearer ${STAND_IN_API_KEY}`, "content-type": "application/json" },
    passthroughUrl,
    edgeOrigin,
    /** Origin of the edge-chat Worker with the short ping interval, or null when not started. */
    timelineOrigin,
    /** The edge-chat Worker with `HISTORY_FOLD=off` (`{ origin, shards }`), or null when not started. */
    dropOldestWorker,
    /**
     * Sets the delay added to every D1 call of the edge-chat Worker at `origin` and its Durable
     * Objects (bench/workers/edge-chat-entry.mjs).
     */
    async setD1Delay(ms, origin = edgeOrigin) {
      const res = await jsonRequest("POST", `${origin}/__bench/d1-delay`, {}, { ms });
      if (res.status !== 200 || res.json?.ms !== ms)
        throw new Error(`setting the D1 delay: HTTP ${res.status} ${JSON.stringify(res.json)}`);
    },
    /** Headers of a call to edge-chat as `userId`. */
    async edgeHeaders(userId, requestId) {
      return {
        authorization: `Bearer ${await auth.tokenFor(userId)}`,
        "content-type": "application/json",
        ...(requestId ? { "x-request-id": requestId } : {}),
      };
    },
    /** Creates `count` conversations for `userId` (on the Worker at `origin`); returns their ids. */
    async createConversations(userId, count, origin = edgeOrigin) {
      const ids = [];
      const headers = await harness.edgeHeaders(userId);
      for (let i = 0; i < count; i++) {
        const res = await jsonRequest("POST", `${origin}/v1/conversations`, headers, {});
        if (res.status !== 201)
          throw new Error(`creating a conversation: HTTP ${res.status} ${JSON.stringify(res.json)}`);
        ids.push(res.json.id);
      }
      return ids;
    },
    async close() {
      await mf.dispose();
      await standIn.close();
    },
  };
  return harness;
}
