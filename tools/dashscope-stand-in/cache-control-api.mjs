import { CONTROL_PREFIX } from "./control-api.mjs";

/**
 * Control endpoint of the simulated context cache (context-cache.mjs; not part of DashScope):
 *   GET    /__stand-in/cache → {"explicit_ttl_ms","implicit_ttl_ms"}, the cache's settings
 *   DELETE /__stand-in/cache → {"cleared":N}, every entry of every key and model forgotten
 */
const CACHE_PATH = `${CONTROL_PREFIX}cache`;

/**
 * Answers a cache control request; returns false for any other path.
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 * @param {URL} url
 * @param {ReturnType<typeof import("./context-cache.mjs").createContextCache>} cache
 * @returns {boolean}
 */
export function handleCacheControl(req, res, url, cache) {
  if (url.pathname !== CACHE_PATH) return false;
  const json = (/** @type {number} */ status, /** @type {unknown} */ value) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(value));
  };
  if (req.method === "GET")
    json(200, {
      explicit_ttl_ms: cache.settings.explicitTtlMs,
      implicit_ttl_ms: cache.settings.implicitTtlMs,
    });
  else if (req.method === "DELETE") json(200, { cleared: cache.clear() });
  else json(405, { error: "method not allowed" });
  return true;
}
