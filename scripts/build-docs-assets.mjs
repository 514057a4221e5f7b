#!/usr/bin/env node
// Copies the API reference viewer served at /docs (Swagger UI from the `swagger-ui-dist` package,
// pinned to an exact version in package.json) into public/docs/swagger-ui/, the Worker's static
// assets (`[assets]` in wrangler.toml): served by Cloudflare without running the Worker and kept
// out of its bundle, so /docs works with no network. public/ is generated, not committed.
// Runs as wrangler's build command (before `wrangler dev` and `wrangler deploy`) and from
// vitest.config.ts before the tests.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Files of swagger-ui-dist served under /docs/swagger-ui/ (its license and notice included). */
export const VIEWER_FILES = [
  "swagger-ui-bundle.js",
  "swagger-ui.css",
  "favicon-32x32.png",
  "LICENSE",
  "NOTICE",
];

/** Copies the viewer into `<rootDir>/public/docs/swagger-ui/`, leaving identical files alone. */
export function buildDocsAssets(rootDir) {
  const source = path.join(rootDir, "node_modules", "swagger-ui-dist");
  const target = path.join(rootDir, "public", "docs", "swagger-ui");
  if (!existsSync(source)) throw new Error("swagger-ui-dist is not installed; run `npm install` first");
  mkdirSync(target, { recursive: true });
  for (const file of VIEWER_FILES) {
    const from = path.join(source, file);
    const to = path.join(target, file);
    if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
    copyFileSync(from, to);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  buildDocsAssets(path.resolve(path.dirname(fileURLToPath(import.meta.url)), ".."));
}
