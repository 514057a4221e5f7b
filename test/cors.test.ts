import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../src/app";
import { loadConfig } from "../src/config";
import { call, createConversation, expectError, newUser, readSse } from "./helpers/api";
import { authHeaders } from "./helpers/auth";

/** In CORS_ALLOWED_ORIGINS of the test Worker (vitest.config.ts). */
const ALLOWED = "https://app.example.test";
/** Configured as `http://LOCALHOST:5173/`: the browser sends the origin in this form. */
const ALLOWED_AS_WRITTEN_OTHERWISE = "http://localhost:5173";
const REFUSED = "https://evil.example.test";

const preflight = (origin: string, path: string, method: string, headers: string) =>
  exports.default.fetch(`http://localhost${path}`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
  });

const listOf = (value: string | null) => (value ?? "").split(",").map((s) => s.trim().toLowerCase());

/** Asserts what every response to `origin` (allowed) carries. */
function expectCors(res: Response, origin: string) {
  expect(res.headers.get("access-control-allow-origin")).toBe(origin);
  expect(listOf(res.headers.get("vary"))).toContain("origin");
  const exposed = listOf(res.headers.get("access-control-expose-headers"));
  for (const name of [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "retry-after",
    "x-request-id",
    "www-authenticate",
    "x-d1-bookmark",
  ]) {
    expect(exposed).toContain(name);
  }
  expect(res.headers.get("access-control-allow-credentials")).toBeNull();
}

/** Asserts that `res` carries no CORS header at all. */
function expectNoCors(res: Response) {
  const cors = [...res.headers.keys()].filter((name) => name.startsWith("access-control-"));
  expect(cors).toEqual([]);
}

describe("CORS", () => {
  it("answers a preflight from an allowed origin with 204 and no credentials", async () => {
    const requested = "authorization,content-type,idempotency-key,last-event-id,x-d1-bookmark";
    const res = await preflight(ALLOWED, "/v1/conversations/x/messages", "POST", requested);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(listOf(res.headers.get("vary"))).toContain("origin");
    expect(listOf(res.headers.get("access-control-allow-methods"))).toEqual(
      expect.arrayContaining(["get", "post", "put", "patch", "delete"]),
    );
    expect(listOf(res.headers.get("access-control-allow-headers"))).toEqual(
      expect.arrayContaining(requested.split(",")),
    );
    expect(res.headers.get("access-control-max-age")).toBe("7200");
    expect(await res.text()).toBe("");

    // The same for an origin configured with a trailing slash and upper case, and on paths outside /v1.
    const other = await preflight(ALLOWED_AS_WRITTEN_OTHERWISE, "/openapi.json", "GET", "authorization");
    expect(other.status).toBe(204);
    expect(other.headers.get("access-control-allow-origin")).toBe(ALLOWED_AS_WRITTEN_OTHERWISE);
  });

  it("gives a refused origin no CORS headers, on its preflight nor on its requests", async () => {
    const pre = await preflight(REFUSED, "/v1/conversations", "POST", "authorization,content-type");
    expect(pre.status).toBe(204);
    expectNoCors(pre);
    expect(listOf(pre.headers.get("vary"))).toContain("origin");

    const userId = newUser("cors-refused");
    const res = await call(userId, "GET", "/conversations", undefined, { headers: { origin: REFUSED } });
    expect(res.status).toBe(200);
    expectNoCors(res);
    // A configured list makes every response depend on Origin, for caches in between.
    expect(listOf(res.headers.get("vary"))).toContain("origin");

    // An origin differing only in scheme or port is another origin.
    const http = await call(userId, "GET", "/conversations", undefined, {
      headers: { origin: "http://app.example.test" },
    });
    expectNoCors(http);
  });

  it("puts the headers on errors: 401 without a token, 404, 400", async () => {
    const unauthenticated = await exports.default.fetch("http://localhost/v1/conversations", {
      headers: { origin: ALLOWED },
    });
    expectCors(unauthenticated, ALLOWED);
    expect(unauthenticated.headers.get("www-authenticate")).toMatch(/^Bearer/);
    await expectError(unauthenticated, 401, "unauthorized");

    const userId = newUser("cors-errors");
    const missing = await call(userId, "GET", "/no-such-route", undefined, { headers: { origin: ALLOWED } });
    expectCors(missing, ALLOWED);
    await expectError(missing, 404, "not_found");

    const bad = await call(userId, "POST", "/conversations", { title: 42 }, { headers: { origin: ALLOWED } });
    expectCors(bad, ALLOWED);
    expect(bad.headers.get("x-request-id")).toBeTruthy();
    await expectError(bad, 400, "invalid_request", "title");
  });

  it("puts the headers on a 429 and on an answer stream", async () => {
    const userId = newUser("cors-limited");
    const admin = await exports.default.fetch(`http://localhost/admin/v1/users/${userId}/rate-limit`, {
      method: "PUT",
      headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ tier: "strict" }),
    });
    expect(admin.status).toBe(200);
    const conv = await createConversation(userId);

    const streamed = await call(
      userId,
      "POST",
      `/conversations/${conv.id}/messages`,
      { content: "hi [[stand-in tokens=3]]" },
      { headers: { origin: ALLOWED } },
    );
    expectCors(streamed, ALLOWED);
    expect(streamed.headers.get("x-ratelimit-limit-requests")).toBe("3");
    const { events } = await readSse(streamed);
    expect(events.at(-1)?.event).toBe("message.completed");

    // The strict tier allows 3 turns a minute (vitest.config.ts); its window is aligned to the
    // wall clock, so a run that straddles a minute needs up to 3 more before the refusal.
    let refused: Response | undefined;
    for (let i = 0; i < 7 && !refused; i++) {
      const res = await call(
        userId,
        "POST",
        "/chat/completions",
        { model: "qwen-plus", messages: [{ role: "user", content: "hi [[stand-in tokens=2]]" }] },
        { headers: { origin: ALLOWED } },
      );
      if (res.status === 429) refused = res;
      else await res.text();
    }
    if (!refused) throw new Error("no 429 after 7 calls on the strict tier");
    expectCors(refused, ALLOWED);
    expect(refused.headers.get("retry-after")).toBe("60");
  });

  it("with `*`, allows any origin and echoes it", async () => {
    const anyOrigin = { ...env, CORS_ALLOWED_ORIGINS: "*" };
    const res = await app.request(
      "http://localhost/v1/conversations",
      { headers: { origin: REFUSED, ...(await authHeaders(newUser("cors-any"))) } },
      anyOrigin,
    );
    expect(res.status).toBe(200);
    expectCors(res, REFUSED);
    const pre = await app.request(
      "http://localhost/v1/conversations",
      {
        method: "OPTIONS",
        headers: { origin: REFUSED, "access-control-request-method": "POST" },
      },
      anyOrigin,
    );
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(REFUSED);
  });

  it("reads CORS_ALLOWED_ORIGINS as origins, ignoring what is not one", () => {
    const origins = (value: string) => loadConfig({ CORS_ALLOWED_ORIGINS: value }).corsAllowedOrigins;
    expect(origins("")).toEqual([]);
    expect(origins(" https://A.example.com/ ,http://localhost:8081")).toEqual([
      "https://a.example.com",
      "http://localhost:8081",
    ]);
    expect(origins("https://a.example.com/path, ftp://b.example.com, *.example.com")).toEqual([]);
    expect(origins("https://a.example.com, *")).toBe("*");
  });
});
