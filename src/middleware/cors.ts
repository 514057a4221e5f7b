import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../app-env";

/** What a browser app sends besides the CORS-safelisted headers. */
const ALLOW_HEADERS = [
  "Authorization",
  "Content-Type",
  "Idempotency-Key",
  "Last-Event-ID",
  // The D1 bookmark an app sends back to read its own writes (middleware/d1-session.ts).
  "x-d1-bookmark",
];

/**
 * Response headers a page may read besides the CORS-safelisted ones (Fetch standard §3.2.5:
 * Cache-Control, Content-Language, Content-Length, Content-Type, Expires, Last-Modified, Pragma).
 * Listed by name: the `*` wildcard of `Access-Control-Expose-Headers` is not a prefix pattern.
 */
const EXPOSE_HEADERS = [
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "Retry-After",
  "WWW-Authenticate",
  "X-Request-Id",
  // GET /v1/export names its file here.
  "Content-Disposition",
  // The AI SDK UI message stream routes (../shared/API.md §2.5) mark their responses with it.
  "x-vercel-ai-ui-message-stream",
  // The latest D1 bookmark of the request (middleware/d1-session.ts).
  "x-d1-bookmark",
];

const ALLOW_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/**
 * Chromium caps a preflight's cache lifetime at 2 hours (services/network/public/cpp/cors/
 * preflight_result.cc, kMaxTimeout) and Firefox at 24 hours; 7200 s is the longest both honour.
 */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

/** hono/cors for an origin already checked against the list: it echoes the origin it is given. */
const allowedOriginCors = cors({
  origin: (origin) => origin,
  allowMethods: ALLOW_METHODS,
  allowHeaders: ALLOW_HEADERS,
  exposeHeaders: EXPOSE_HEADERS,
  maxAge: PREFLIGHT_MAX_AGE_SECONDS,
});

/**
 * CORS for the origins in `CORS_ALLOWED_ORIGINS` (`config.corsAllowedOrigins`), placed before auth:
 * a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered 204 without credentials,
 * and every response to an allowed origin, errors and answer streams included, carries
 * `Access-Control-Allow-Origin` (the origin echoed, also for `*`) and `Access-Control-Expose-Headers`.
 * No `Access-Control-Allow-Credentials`: the API authenticates with the `Authorization` header,
 * never cookies, so a page can only use a token it holds.
 *
 * hono/cors alone would still add its allow and expose headers for an origin it refuses, so the list
 * is checked here: a refused origin gets no `Access-Control-*` header at all, and its preflight a
 * bare 204 that the browser then fails.
 */
export const corsForAllowedOrigins: MiddlewareHandler<AppEnv> = async (c, next) => {
  const allowed = c.get("config").corsAllowedOrigins;
  const origin = c.req.header("origin");
  if (origin && (allowed === "*" || allowed.includes(origin))) return allowedOriginCors(c, next);
  if (origin && c.req.method === "OPTIONS" && c.req.header("access-control-request-method")) {
    return c.body(null, 204, { Vary: "Origin" });
  }
  await next();
  // With any origin configured, whether a response carries the headers depends on `Origin`.
  if (allowed === "*" || allowed.length > 0) c.header("Vary", "Origin", { append: true });
};
