import http from "node:http";
import { handleCacheControl } from "./cache-control-api.mjs";
import { handleChatCompletions } from "./chat-handler.mjs";
import { createContextCache } from "./context-cache.mjs";
import { handleControl } from "./control-api.mjs";
import { createRequestLog } from "./request-log.mjs";

/**
 * Local stand-in for DashScope's OpenAI-compatible Chat Completions endpoint. Plain Node, no dependencies;
 * used by the test suite (Vitest globalSetup), `npm run dev` without an API key, and benchmarks.
 * Behaviour and directives are documented in README.md next to this file.
 */

export const BASE_PATH = "/compatible-mode/v1";
const CHAT_PATH = `${BASE_PATH}/chat/completions`;
/** Request bodies above this are refused; large enough for context-window tests on million-token models. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * @typedef {{ origin: string, baseUrl: string, port: number, close(): Promise<void>,
 *   requests: import("./request-log.mjs").LogEntry[] }} StandIn
 */

/**
 * Starts the stand-in.
 * @param {{ host?: string, port?: number, apiKey?: string, ttftMs?: number, interTokenMs?: number, log?: boolean,
 *   cacheTtlMs?: number, implicitCacheTtlMs?: number }} [options]
 *   `apiKey` empty or undefined accepts any `sk-` bearer token; `ttftMs`/`interTokenMs` are default delays
 *   (overridable per request with the `ttft=`/`itl=` directives); `log` prints one line per request;
 *   `cacheTtlMs`/`implicitCacheTtlMs` are the context cache's explicit and implicit TTLs (default 5 minutes).
 * @returns {Promise<StandIn>}
 */
export async function startStandIn({
  host = "127.0.0.1",
  port = 0,
  apiKey,
  ttftMs = 0,
  interTokenMs = 0,
  log = false,
  cacheTtlMs,
  implicitCacheTtlMs,
} = {}) {
  const requestLog = createRequestLog();
  const contextCache = createContextCache({ explicitTtlMs: cacheTtlMs, implicitTtlMs: implicitCacheTtlMs });
  const handlerOptions = { apiKey: apiKey || undefined, ttftMs, interTokenMs, log, requestLog, contextCache };
  /** @type {Set<import("node:net").Socket>} */
  const sockets = new Set();

  const server = http.createServer((req, res) => {
    // An exception escaping a request listener would end the whole process, and with it
    // `npm run dev`, which hosts the stand-in: every failure becomes this request's 500.
    try {
      route(req, res);
    } catch (err) {
      failRequest(res, err);
    }
  });

  /**
   * @param {import("node:http").IncomingMessage} req
   * @param {import("node:http").ServerResponse} res
   */
  function route(req, res) {
    // `URL.parse` returns null (instead of throwing) for a request target such as `http://[::1`.
    const url = URL.parse(req.url ?? "/", "http://stand-in.local");
    if (url === null) {
      sendJson(res, 400, {
        error: {
          message: "Bad request target",
          type: "invalid_request_error",
          param: null,
          code: "bad_request",
        },
      });
      return;
    }
    if (handleCacheControl(req, res, url, contextCache)) return;
    if (handleControl(req, res, url, requestLog, (err) => failRequest(res, err))) return;
    if (url.pathname !== CHAT_PATH) {
      sendJson(res, 404, {
        error: { message: "Not Found", type: "invalid_request_error", param: null, code: "not_found" },
      });
      return;
    }
    if (req.method !== "POST") {
      sendJson(res, 405, {
        error: {
          message: "Method Not Allowed",
          type: "invalid_request_error",
          param: null,
          code: "method_not_allowed",
        },
      });
      return;
    }
    readBody(req)
      .then((raw) => handleChatCompletions(req, res, raw, handlerOptions))
      .catch((err) => failRequest(res, err));
  }

  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(undefined);
    });
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;

  return {
    origin,
    baseUrl: `${origin}${BASE_PATH}`,
    port: actualPort,
    requests: requestLog.entries,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // server.close only stops accepting; keep-alive sockets and hanging streams must be cut explicitly.
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections?.();
      }),
  };
}

/**
 * @param {import("node:http").IncomingMessage} req
 * @returns {Promise<Buffer>}
 */
function readBody(req) {
  return new Promise((resolve, reject) => {
    /** @type {Buffer[]} */
    const parts = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error("request body too large"));
        req.destroy();
        return;
      }
      parts.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

/**
 * Ends a request whose handling threw: a 500 when nothing was sent yet, else a cut connection.
 * @param {import("node:http").ServerResponse} res
 * @param {unknown} err
 */
function failRequest(res, err) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, 500, {
    error: {
      message: String(/** @type {any} */ (err)?.message ?? err),
      type: "internal_error",
      param: null,
      code: "internal_error",
    },
  });
}

/**
 * @param {import("node:http").ServerResponse} res
 * @param {number} status
 * @param {unknown} value
 */
function sendJson(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}
