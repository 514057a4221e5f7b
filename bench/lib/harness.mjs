import path from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { startStandIn } from "../../tools/dashscope-stand-in/server.mjs";
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
const PASSTHROUGH = "passthrough";

/**
 * @param {{ root: string, scriptPath: string }} options root of the repository; the built Worker bundle
 */
export async function startHarness({ root, scriptPath }) {
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
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      handleStructuredLogs: onLog,
      workers: [
        {
          name: EDGE,
          modules: true,
          scriptPath,
          ...runtime,
          d1Databases: ["DB"],
          kvNamespaces: ["CACHE"],
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
            DASHSCOPE_BASE_URL: standIn.baseUrl,
            DASHSCOPE_API_KEY: STAND_IN_API_KEY,
            AUTH_DEV_JWKS: auth.jwksJson,
          },
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
        },
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

  const harness = {
    config,
    standIn,
    auth,
    db,
    turnLogs,
    errorLogs,
    workerdPid: findWorkerdPid(),
    directUrl: `${standIn.baseUrl}/chat/completions`,
    standInAuth: { authorization: `Bearer ${STAND_IN_API_KEY}`, "content-type": "application/json" },
    passthroughUrl,
    edgeOrigin,
    /** Headers of a call to edge-chat as `userId`. */
    async edgeHeaders(userId, requestId) {
      return {
        authorization: `Bearer ${await auth.tokenFor(userId)}`,
        "content-type": "application/json",
        ...(requestId ? { "x-request-id": requestId } : {}),
      };
    },
    /** Creates `count` conversations for `userId`; returns their ids. */
    async createConversations(userId, count) {
      const ids = [];
      const headers = await harness.edgeHeaders(userId);
      for (let i = 0; i < count; i++) {
        const res = await jsonRequest("POST", `${edgeOrigin}/v1/conversations`, headers, {});
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
