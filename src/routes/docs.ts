import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { openApiDocument } from "../openapi/document";

/**
 * The API reference viewer (Scalar), pinned to a major version. It is loaded by the browser from
 * a CDN, so `/docs` needs network access on the reader's side; the Worker serves only this page.
 */
const REFERENCE_SCRIPT_URL = "https://cdn.jsdelivr.net/npm/@scalar/api-reference@1";

const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>edge-chat API reference</title>
  </head>
  <body>
    <noscript>The interactive reference needs JavaScript. The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="${REFERENCE_SCRIPT_URL}"></script>
  </body>
</html>
`;

/** `/openapi.json` (the OpenAPI 3.1 document) and `/docs` (an interactive reference); no auth. */
export const docsRoutes = new Hono<AppEnv>()
  .get("/openapi.json", (c) => c.json(openApiDocument()))
  .get("/docs", (c) => c.html(DOCS_HTML));
