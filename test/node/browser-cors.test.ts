import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { importJWK, SignJWT } from "jose";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestHarness, type TestHarness } from "wrangler";
// @ts-expect-error plain ESM module without type declarations
import { startStandIn } from "../../tools/dashscope-stand-in/server.mjs";
import { type JwksServer, startJwksServer } from "../support/jwks-server.mjs";

/**
 * A web page on one origin streams a turn from the Worker on another, in a real browser: Debian's
 * Chromium (`apt-get install chromium`, which .ci/run does when it is missing) driven by
 * playwright-core. The Worker runs in wrangler's test harness (workerd behind a real HTTP port),
 * with the DashScope and identity provider stand-ins the Worker tests use.
 */

const CHROMIUM = "/usr/bin/chromium";
/** Chromium without the sandbox (root in a container has none), GPU, QUIC or any background traffic. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const ISSUER = "https://issuer.test/";
const AUDIENCE = "edge-chat-browser-test";
const STAND_IN_API_KEY = "sk-stand-in-browser-test";

/** What the page's `streamTurn` (fixtures/cors-page.html) resolves to. */
type PageTurn = StreamedTurn | { error: string };
interface StreamedTurn {
  status: number;
  contentType: string | null;
  requestId: string | null;
  rateLimitLimit: string | null;
  accelBuffering: string | null;
  chunks: number;
  events: { event: string; data: { message?: { id: string; content: string | null } } }[];
}
/** Defined by the page's script; only called inside the page (`page.evaluate`). */
declare function streamTurn(
  api: string,
  token: string,
  conversationId: string,
  content: string,
): Promise<PageTurn>;

/** Serves the page at `/` on 127.0.0.1 (port chosen by the system). */
async function servePage(html: string): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === "/") res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let standIn: { baseUrl: string; close: () => Promise<void> };
let jwks: JwksServer;
let allowedPage: Awaited<ReturnType<typeof servePage>>;
let refusedPage: Awaited<ReturnType<typeof servePage>>;
let worker: TestHarness;
let api: string;
let browser: BrowserContext;
let profileDir: string;

beforeAll(async () => {
  // wrangler's local runtime otherwise fetches a `request.cf` sample from workers.cloudflare.com.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_SEND_METRICS = "false";
  const html = await readFile(path.join(import.meta.dirname, "fixtures/cors-page.html"), "utf8");
  [standIn, jwks, allowedPage, refusedPage] = await Promise.all([
    startStandIn({ host: "127.0.0.1", port: 0, apiKey: STAND_IN_API_KEY }),
    startJwksServer({ host: "127.0.0.1", port: 0 }),
    servePage(html),
    servePage(html),
  ]);
  worker = createTestHarness({
    root: path.join(import.meta.dirname, "../.."),
    workers: [
      {
        configPath: "./wrangler.toml",
        vars: {
          CORS_ALLOWED_ORIGINS: allowedPage.origin,
          DASHSCOPE_BASE_URL: standIn.baseUrl,
          AUTH_JWKS_URL: `${jwks.origin}/jwks/main.json`,
          AUTH_ISSUER: ISSUER,
          AUTH_AUDIENCE: AUDIENCE,
          TITLE_MODEL: "off",
        },
        // Over whatever a developer's .dev.vars holds.
        secrets: { DASHSCOPE_API_KEY: STAND_IN_API_KEY, AUTH_DEV_JWKS: "", AUTH_DEV_HOSTS: "" },
      },
    ],
  });
  const { url } = await worker.listen();
  api = url.origin;
  await worker.getWorker().applyD1Migrations("DB");
  profileDir = await mkdtemp(path.join(os.tmpdir(), "edge-chat-chromium-"));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await worker?.close();
  await Promise.all([standIn?.close(), jwks?.close(), allowedPage?.close(), refusedPage?.close()]);
  if (profileDir) await rm(profileDir, { recursive: true, force: true });
}, 60_000);

async function tokenFor(userId: string): Promise<string> {
  const key = await importJWK(jwks.rs256PrivateJwk, "RS256");
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid: jwks.rs256PrivateJwk.kid })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key);
}

/** A conversation of `userId`'s, made from Node (no CORS involved). */
async function newConversation(token: string): Promise<string> {
  const res = await fetch(`${api}/v1/conversations`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function storedMessages(token: string, conversationId: string) {
  const res = await fetch(`${api}/v1/conversations/${conversationId}/messages`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { id: string; role: string; content: string | null }[] }).data;
}

describe("a page on another origin, in Chromium", () => {
  it("streams a turn from the Worker when its origin is allowed", async () => {
    const token = await tokenFor(`browser-${crypto.randomUUID()}`);
    const conversationId = await newConversation(token);
    const page = await browser.newPage();
    await page.goto(`${allowedPage.origin}/`);
    expect(new URL(page.url()).origin).not.toBe(api);

    const turn = await page.evaluate(
      ([base, bearer, id]) => streamTurn(base, bearer, id, "hi [[stand-in tokens=12 itl=20]]"),
      [api, token, conversationId] as const,
    );
    await page.close();

    if ("error" in turn) throw new Error(`the page's request failed: ${turn.error}`);
    expect(turn.status).toBe(200);
    expect(turn.contentType).toMatch(/^text\/event-stream/);
    // Read as it streamed: 12 tokens 20 ms apart do not arrive in one piece.
    expect(turn.chunks).toBeGreaterThan(1);
    const names = turn.events.map((e) => e.event);
    expect(names[0]).toBe("turn.started");
    expect(names).toContain("message.delta");
    expect(names.at(-1)).toBe("message.completed");
    // The page reads the headers the Worker exposes, and not the others.
    expect(turn.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(turn.rateLimitLimit).toBe("60");
    expect(turn.accelBuffering).toBeNull();

    const answer = turn.events.at(-1)?.data.message;
    const stored = await storedMessages(token, conversationId);
    expect(stored.map((m) => m.role).sort()).toEqual(["assistant", "user"]);
    const storedAnswer = stored.find((m) => m.role === "assistant");
    expect(answer?.id).toBe(storedAnswer?.id);
    expect(answer?.content).toBe(storedAnswer?.content);
    expect(answer?.content?.length).toBeGreaterThan(0);
  }, 60_000);

  it("fails from an origin that is not allowed, and nothing is sent", async () => {
    const token = await tokenFor(`browser-${crypto.randomUUID()}`);
    const conversationId = await newConversation(token);
    const page = await browser.newPage();
    await page.goto(`${refusedPage.origin}/`);
    const turn = await page.evaluate(
      ([base, bearer, id]) => streamTurn(base, bearer, id, "hi [[stand-in tokens=3]]"),
      [api, token, conversationId] as const,
    );
    await page.close();
    // Chromium's message for a request CORS blocked; the reason goes to the console only.
    expect(turn).toEqual({ error: "TypeError: Failed to fetch" });
    // The preflight failed, so the POST never left the browser.
    expect(await storedMessages(token, conversationId)).toEqual([]);
  }, 60_000);
});
