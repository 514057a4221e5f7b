/**
 * Control endpoints for tests and benchmarks (not part of DashScope):
 *   GET /__stand-in/health            → {"ok":true}
 *   GET /__stand-in/requests?tag=X    → log entries carrying tag X (all entries without `tag`)
 */
export const CONTROL_PREFIX = "/__stand-in/";

/**
 * Answers a control request; returns false when the path is not a control endpoint.
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 * @param {URL} url
 * @param {ReturnType<typeof import("./request-log.mjs").createRequestLog>} requestLog
 * @param {(err: unknown) => void} onError called when writing a listing fails midway
 * @returns {boolean}
 */
export function handleControl(req, res, url, requestLog, onError) {
  if (!url.pathname.startsWith(CONTROL_PREFIX)) return false;
  const json = (/** @type {number} */ status, /** @type {unknown} */ value) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(value));
  };
  if (req.method !== "GET") {
    json(405, { error: "method not allowed" });
    return true;
  }
  switch (url.pathname) {
    case `${CONTROL_PREFIX}health`:
      json(200, { ok: true });
      return true;
    case `${CONTROL_PREFIX}requests`:
      writeJsonArray(res, requestLog.find(url.searchParams.get("tag"))).catch(onError);
      return true;
    default:
      json(404, { error: "unknown control endpoint" });
      return true;
  }
}

/**
 * Writes a JSON array one element at a time, waiting for the socket to drain. The whole log
 * (up to 5000 entries with their request bodies) can exceed the longest string V8 can build
 * (2^29 - 24 characters, about 512 MiB), so it is never serialised as one string.
 * @param {import("node:http").ServerResponse} res
 * @param {unknown[]} items
 */
async function writeJsonArray(res, items) {
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
  let separator = "[";
  for (const item of items) {
    if (res.destroyed) return;
    if (!res.write(separator + JSON.stringify(item))) {
      await new Promise((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve(undefined);
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
    separator = ",";
  }
  res.end(separator === "[" ? "[]" : "]");
}
