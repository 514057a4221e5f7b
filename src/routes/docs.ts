import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { openApiDocument } from "../openapi/document";

/**
 * The viewer (Swagger UI) is served from this Worker's static assets under {@link VIEWER_PATH}
 * (copied from the `swagger-ui-dist` package, pinned exactly, by scripts/build-docs-assets.mjs),
 * so `/docs` needs no network beyond this origin. Only the page and its start-up script are
 * served here.
 */
export const VIEWER_PATH = "/docs/swagger-ui";

// Nothing on the page may come from, or talk to, another origin; Swagger UI sets inline styles
// and draws icons from data: URLs.
const DOCS_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>edge-chat API reference</title>
    <link rel="icon" type="image/png" href="${VIEWER_PATH}/favicon-32x32.png" />
    <link rel="stylesheet" href="${VIEWER_PATH}/swagger-ui.css" />
  </head>
  <body>
    <noscript>The interactive reference needs JavaScript. The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
    <div id="swagger-ui"></div>
    <script src="${VIEWER_PATH}/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
`;

// A file rather than an inline script, so the CSP needs no 'unsafe-inline' for scripts.
// `validatorUrl: null` keeps Swagger UI from sending the document to its online validator.
const INIT_JS = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
`;

/** `/openapi.json` (the OpenAPI 3.1 document) and `/docs` (an interactive reference); no auth. */
export const docsRoutes = new Hono<AppEnv>()
  .get("/openapi.json", (c) => c.json(openApiDocument()))
  .get("/docs", (c) => c.html(DOCS_HTML, 200, { "content-security-policy": DOCS_CSP }))
  .get("/docs/init.js", (c) =>
    c.body(INIT_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }),
  );
