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
 * @returns {boolean}
 */
export function handleControl(req, res, url, requestLog) {
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
      json(200, requestLog.find(url.searchParams.get("tag")));
      return true;
    default:
      json(404, { error: "unknown control endpoint" });
      return true;
  }
}
