import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

// /docs must work with no network: the page, its script and the viewer come from this origin
// (the viewer from the Worker's static assets), and the page's CSP forbids every other origin.

const ORIGIN = "http://localhost";
/**
 * GET as a browser would: static assets are answered by the assets server before the Worker
 * runs (the Workers runtime's router; `exports.default` is the Worker alone), the rest by the Worker.
 */
async function get(path: string): Promise<Response> {
  const asset = await env.ASSETS.fetch(`${ORIGIN}${path}`);
  if (asset.status !== 404) return asset;
  await asset.body?.cancel();
  return exports.default.fetch(`${ORIGIN}${path}`);
}

/** The paths a page loads: every `src` and `<link>` `href`. */
function loadedPaths(html: string): string[] {
  return [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"/g)].map((m) => m[1]!);
}

const CONTENT_TYPES: Record<string, RegExp> = { css: /text\/css/, js: /javascript/, png: /image\/png/ };

describe("/docs", () => {
  it("serves the reference page and everything it loads from this origin, without auth", async () => {
    const res = await get("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/src="\/\/|href="\/\//);
    const paths = loadedPaths(html);
    expect(paths).toEqual([
      "/docs/swagger-ui/favicon-32x32.png",
      "/docs/swagger-ui/swagger-ui.css",
      "/docs/swagger-ui/swagger-ui-bundle.js",
      "/docs/init.js",
    ]);

    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:|\*/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);

    for (const path of paths) {
      const asset = await get(path);
      expect(asset.status, path).toBe(200);
      expect(asset.headers.get("content-type"), path).toMatch(CONTENT_TYPES[path.split(".").pop()!]!);
      expect((await asset.arrayBuffer()).byteLength, path).toBeGreaterThan(100);
    }
  });

  it("serves the pinned Swagger UI bundle as a static asset, with no CDN in it", async () => {
    const bundle = await (await get("/docs/swagger-ui/swagger-ui-bundle.js")).text();
    expect(bundle).toContain("SwaggerUIBundle");
    // Hosts a viewer would load code, styles or fonts from.
    expect(bundle).not.toMatch(
      /cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com|fonts\.(googleapis|gstatic)\.com/,
    );
    expect((await get("/docs/swagger-ui/LICENSE")).status).toBe(200);
  });

  it("starts the viewer on /openapi.json with the online validator off", async () => {
    const init = await (await get("/docs/init.js")).text();
    expect(init).toContain('url: "/openapi.json"');
    expect(init).toContain("validatorUrl: null");
    expect(init).not.toMatch(/https?:\/\//);
    expect((await get("/openapi.json")).status).toBe(200);
  });
});
