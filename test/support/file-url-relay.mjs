import { createServer } from "node:http";

/**
 * A public origin for the Worker under test, so the DashScope stand-in can fetch a signed file URL
 * (`FILE_URL_BASE`) as DashScope fetches it from a deployed Worker. The Worker runs inside vitest's
 * workerd and has no listening socket, so the test relays: a request arriving here is held until the
 * test takes it (`GET /__relay/next`, long-polled), runs it through the Worker itself
 * (`exports.default.fetch`) and posts the response back (`POST /__relay/respond/<n>`, the status in
 * `x-relay-status`, the media type in `content-type`). Only what a file URL needs: GET, no request body.
 */

/** How long `/__relay/next` waits for a request before answering 204. */
const POLL_MS = 2_000;

/**
 * @param {{ host?: string, port?: number }} [options]
 * @returns {Promise<{ origin: string, close(): Promise<void> }>}
 */
export async function startFileUrlRelay({ host = "127.0.0.1", port = 0 } = {}) {
  /** @type {{ n: number, path: string, res: import("node:http").ServerResponse }[]} */
  const pending = [];
  /** @type {Map<number, import("node:http").ServerResponse>} */
  const held = new Map();
  /** @type {((req: { n: number, path: string }) => void)[]} */
  const waiting = [];
  let seq = 0;

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://relay");
    if (req.method === "GET" && url.pathname === "/__relay/next") {
      const next = pending.shift();
      if (next) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ n: next.n, path: next.path }));
        return;
      }
      const timer = setTimeout(() => {
        const i = waiting.indexOf(deliver);
        if (i >= 0) waiting.splice(i, 1);
        res.writeHead(204);
        res.end();
      }, POLL_MS);
      /** @param {{ n: number, path: string }} request */
      const deliver = (request) => {
        clearTimeout(timer);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(request));
      };
      waiting.push(deliver);
      return;
    }
    const respond = /^\/__relay\/respond\/(\d+)$/.exec(url.pathname);
    if (req.method === "POST" && respond) {
      const target = held.get(Number(respond[1]));
      held.delete(Number(respond[1]));
      /** @type {Buffer[]} */
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => {
        target?.writeHead(Number(req.headers["x-relay-status"] ?? 502), {
          "content-type": String(req.headers["content-type"] ?? "application/octet-stream"),
        });
        target?.end(Buffer.concat(chunks));
        res.writeHead(204);
        res.end();
      });
      return;
    }
    // A request for the Worker: held until the test relays it.
    const request = { n: ++seq, path: `${url.pathname}${url.search}` };
    held.set(request.n, res);
    const deliver = waiting.shift();
    if (deliver) deliver(request);
    else pending.push({ ...request, res });
  });
  await new Promise((resolve) => server.listen(port, host, () => resolve(undefined)));
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    origin: `http://${host}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        for (const res of held.values()) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}
