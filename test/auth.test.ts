import { env, exports } from "cloudflare:workers";
import { Hono } from "hono";
import { base64url, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AppEnv } from "../src/app-env";
import { createDevModeGate, DEV_AUDIENCE, DEV_ISSUER } from "../src/auth/dev-mode";
import {
  ABSENT_KID_MEMORY_MS,
  createJwksMemory,
  JwksCache,
  type JwksMemory,
  jwksKvKeys,
  REFETCH_INTERVAL_MS,
} from "../src/auth/jwks-cache";
import { verifyAccessToken } from "../src/auth/verify-jwt";
import { requireAuth } from "../src/middleware/auth";
import { onError } from "../src/middleware/error-handler";
import { authHeaders, testAuthSettings, tokenFor } from "./helpers/auth";

const { issuer, audience, jwksOrigin } = testAuthSettings();
const SKEW_SECONDS = 60;

/** A JWKS path of the stand-in used by this test only, so fetch counters are not shared. */
const uniquePath = (name: string) => `/jwks/${name}-${crypto.randomUUID()}.json`;

async function fetchesOf(path: string): Promise<number> {
  const res = await fetch(`${jwksOrigin}/__jwks/stats?path=${encodeURIComponent(path)}`);
  return ((await res.json()) as { fetches: number }).fetches;
}

async function rotate(path: string): Promise<JWK> {
  const res = await fetch(`${jwksOrigin}/__jwks/rotate?path=${encodeURIComponent(path)}`, { method: "POST" });
  return ((await res.json()) as { privateJwk: JWK }).privateJwk;
}

async function setFailing(path: string, on: boolean): Promise<void> {
  await fetch(`${jwksOrigin}/__jwks/fail?path=${encodeURIComponent(path)}&on=${on ? 1 : 0}`, {
    method: "POST",
  });
}

/** A key pair no JWKS publishes. */
async function strayKey(alg: "ES256" | "RS256", kid: string): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
  };
}

/** The real middleware on a minimal app, so it can run against modified configuration. */
function probeApp() {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.use("/v1/*", requireAuth);
  app.get("/v1/whoami", (c) => c.json({ user_id: c.get("userId") }));
  return app;
}

async function probe(
  headers: Record<string, string>,
  opts: { url?: string; env?: Partial<Env> } = {},
): Promise<{
  status: number;
  body: { user_id?: string; error?: { code: string; message: string } };
  text: string;
  challenge: string | null;
}> {
  const res = await probeApp().request(
    opts.url ?? "http://localhost/v1/whoami",
    { headers },
    { ...env, ...opts.env },
  );
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text, challenge: res.headers.get("www-authenticate") };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Asserts a 401 invalid_token rejection whose message matches `message` and does not echo the token. */
async function expectRejected(token: string, message: RegExp, opts?: Parameters<typeof probe>[1]) {
  const res = await probe(bearer(token), opts);
  expect(res.status).toBe(401);
  expect(res.body.error?.code).toBe("unauthorized");
  expect(res.body.error?.message).toMatch(message);
  expect(res.challenge).toBe('Bearer error="invalid_token"');
  expect(res.text).not.toContain(token);
  for (const part of token.split(".")) if (part.length > 8) expect(res.text).not.toContain(part);
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

afterEach(() => {
  vi.restoreAllMocks();
});

describe("through the Worker", () => {
  it("answers /v1/* without a token with 401 and a Bearer challenge", async () => {
    const res = await exports.default.fetch("http://localhost/v1/anything");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    expect(await res.json()).toMatchObject({ error: { code: "unauthorized" } });
  });

  it("answers /v1/* with a bad token with 401 invalid_token", async () => {
    const token = await tokenFor("alice", { claims: { aud: "someone-else" } });
    const res = await exports.default.fetch("http://localhost/v1/anything", { headers: bearer(token) });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    expect(await res.json()).toMatchObject({ error: { code: "unauthorized" } });
  });

  it.each(["RS256", "ES256"] as const)(
    "lets a good %s token through to routing (404 not_found, not 401)",
    async (alg) => {
      const token = await tokenFor("alice", { alg });
      const res = await exports.default.fetch("http://localhost/v1/anything", { headers: bearer(token) });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
    },
  );

  it("accepts authHeaders() from the test helper", async () => {
    const res = await exports.default.fetch("http://localhost/v1/anything", {
      headers: await authHeaders("bob"),
    });
    expect(res.status).toBe(404);
  });
});

describe("token verification (middleware)", () => {
  it.each(["RS256", "ES256"] as const)("accepts a valid %s token and sets userId from sub", async (alg) => {
    const res = await probe(bearer(await tokenFor("user-123", { alg })));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user_id: "user-123" });
  });

  it("rejects an HS256 token, even one keyed with a published public key", async () => {
    const rsaPublic = JSON.stringify((await (await fetch(env.AUTH_JWKS_URL!)).json()) as object);
    const claims = { iss: issuer, aud: audience, sub: "mallory", exp: nowSeconds() + 600 };
    for (const secret of ["secret", rsaPublic]) {
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", kid: "test-rs256-1" })
        .sign(new TextEncoder().encode(secret));
      await expectRejected(token, /RS256 or ES256/);
    }
  });

  it("rejects an unsigned (alg none) token", async () => {
    const enc = (v: object) => base64url.encode(JSON.stringify(v));
    const claims = { iss: issuer, aud: audience, sub: "mallory", exp: nowSeconds() + 600 };
    for (const alg of ["none", "None", "NONE"]) {
      await expectRejected(`${enc({ alg, typ: "JWT" })}.${enc(claims)}.`, /RS256 or ES256/);
    }
  });

  it("rejects a token signed with another algorithm (PS256)", async () => {
    const { privateKey } = await generateKeyPair("PS256");
    const token = await new SignJWT({ iss: issuer, aud: audience, sub: "x", exp: nowSeconds() + 600 })
      .setProtectedHeader({ alg: "PS256", kid: "test-rs256-1" })
      .sign(privateKey);
    await expectRejected(token, /RS256 or ES256/);
  });

  it("rejects the wrong issuer and the wrong audience", async () => {
    await expectRejected(await tokenFor("alice", { claims: { iss: "https://evil.test/" } }), /issuer/);
    await expectRejected(await tokenFor("alice", { claims: { aud: "another-app" } }), /audience/);
  });

  it("rejects a token expired beyond the clock skew and accepts one expired within it", async () => {
    await expectRejected(await tokenFor("alice", { expiresInSeconds: -(SKEW_SECONDS + 60) }), /expired/);
    const withinSkew = await probe(
      bearer(await tokenFor("alice", { expiresInSeconds: -(SKEW_SECONDS - 30) })),
    );
    expect(withinSkew.status).toBe(200);
  });

  it("honours nbf with the clock skew", async () => {
    await expectRejected(
      await tokenFor("alice", { claims: { nbf: nowSeconds() + SKEW_SECONDS + 120 } }),
      /not valid yet/,
    );
    const withinSkew = await probe(
      bearer(await tokenFor("alice", { claims: { nbf: nowSeconds() + SKEW_SECONDS - 30 } })),
    );
    expect(withinSkew.status).toBe(200);
  });

  it("rejects a token issued in the future beyond the clock skew and accepts one within it", async () => {
    const aYearAhead = nowSeconds() + 365 * 24 * 3600;
    await expectRejected(
      await tokenFor("alice", { claims: { iat: aYearAhead, exp: aYearAhead + 3600 } }),
      /issued in the future/,
    );
    await expectRejected(
      await tokenFor("alice", { claims: { iat: nowSeconds() + SKEW_SECONDS + 120 } }),
      /issued in the future/,
    );
    const withinSkew = await probe(
      bearer(await tokenFor("alice", { claims: { iat: nowSeconds() + SKEW_SECONDS - 30 } })),
    );
    expect(withinSkew.status).toBe(200);
  });

  it("rejects a sub that is not well-formed text or holds control characters", async () => {
    for (const sub of ["alice\ud83d", "alice\u0000", "alice\nbob"]) {
      await expectRejected(await tokenFor(sub), /"sub"/);
    }
  });

  it("requires exp", async () => {
    await expectRejected(await tokenFor("alice", { claims: { exp: undefined } }), /"exp"/);
  });

  it("requires a non-empty string sub of at most 255 characters", async () => {
    await expectRejected(await tokenFor("alice", { claims: { sub: undefined } }), /"sub"/);
    await expectRejected(await tokenFor(""), /"sub"/);
    await expectRejected(await tokenFor("x".repeat(256)), /"sub"/);
    await expectRejected(await tokenFor("alice", { claims: { sub: 42 } }), /"sub"/);
    expect((await probe(bearer(await tokenFor("x".repeat(255))))).status).toBe(200);
  });

  it("rejects a bad signature", async () => {
    // A different key under a published kid: the kid matches, the signature does not.
    const impostor = await strayKey("ES256", "test-es256-1");
    await expectRejected(await tokenFor("alice", { key: impostor.privateJwk }), /signature/);
    // A genuine token with its payload swapped.
    const [head, , sig] = (await tokenFor("alice")).split(".");
    const forged = base64url.encode(
      JSON.stringify({ iss: issuer, aud: audience, sub: "admin", exp: nowSeconds() + 600 }),
    );
    await expectRejected(`${head}.${forged}.${sig}`, /signature/);
  });

  it("rejects malformed Authorization headers without echoing them", async () => {
    const token = await tokenFor("alice");
    const cases: Array<[Record<string, string>, string]> = [
      [{}, "Bearer"],
      [{ authorization: "" }, "Bearer"],
      [{ authorization: `Basic ${btoa("alice:pw")}` }, 'Bearer error="invalid_request"'],
      [{ authorization: "Bearer" }, 'Bearer error="invalid_request"'],
      [{ authorization: `Bearer ${token} extra` }, 'Bearer error="invalid_request"'],
      [{ authorization: `Bearer ${token}"<>` }, 'Bearer error="invalid_request"'],
      [{ authorization: `Bearer ${"a".repeat(10_000)}` }, 'Bearer error="invalid_request"'],
      [{ authorization: "Bearer not-a-jwt" }, 'Bearer error="invalid_token"'],
      [{ authorization: "Bearer a.b.c" }, 'Bearer error="invalid_token"'],
    ];
    for (const [headers, challenge] of cases) {
      const res = await probe(headers);
      expect(res.status, JSON.stringify(headers).slice(0, 80)).toBe(401);
      expect(res.body.error?.code).toBe("unauthorized");
      expect(res.challenge).toBe(challenge);
      expect(res.text).not.toContain(token.split(".")[2]);
    }
  });

  it("accepts a lowercase bearer scheme (RFC 7235: schemes are case-insensitive)", async () => {
    expect((await probe({ authorization: `bearer ${await tokenFor("alice")}` })).status).toBe(200);
  });
});

describe("JWKS cache", () => {
  it("fetches the JWKS once, then serves it from memory and KV", async () => {
    const path = uniquePath("cache");
    const url = `${jwksOrigin}${path}`;
    const deps = {
      kv: env.CACHE,
      fetch: (i: RequestInfo | URL, init?: RequestInit) => fetch(i, init),
      now: Date.now,
      ttlSeconds: 3600,
    };
    const verifyDeps = (memory: JwksMemory) => ({
      keys: new JwksCache(url, { ...deps, memory }),
      issuer,
      audience,
      clockSkewSeconds: SKEW_SECONDS,
    });

    // A warm isolate answers from memory without touching KV.
    let kvReads = 0;
    const countingKv = {
      get: ((...args: Parameters<KVNamespace["get"]>) => {
        kvReads++;
        return env.CACHE.get(...args);
      }) as KVNamespace["get"],
      put: env.CACHE.put.bind(env.CACHE),
    };
    const memory = createJwksMemory();
    await verifyAccessToken(await tokenFor("warm"), {
      ...verifyDeps(memory),
      keys: new JwksCache(url, { ...deps, kv: countingKv, memory }),
    });
    const readsWhenWarm = kvReads;
    for (let i = 0; i < 3; i++) {
      await verifyAccessToken(await tokenFor("w"), {
        ...verifyDeps(memory),
        keys: new JwksCache(url, { ...deps, kv: countingKv, memory }),
      });
    }
    expect(kvReads).toBe(readsWhenWarm);

    for (let i = 0; i < 5; i++) {
      const alg = i % 2 ? "ES256" : "RS256";
      expect(await verifyAccessToken(await tokenFor(`u${i}`, { alg }), verifyDeps(memory))).toEqual({
        userId: `u${i}`,
      });
    }
    expect(await fetchesOf(path)).toBe(1);

    // Another isolate (empty memory) reads KV instead of the network.
    expect(await verifyAccessToken(await tokenFor("u-kv"), verifyDeps(createJwksMemory()))).toEqual({
      userId: "u-kv",
    });
    expect(await fetchesOf(path)).toBe(1);

    // Stored under a hash of the URL, with the configured TTL.
    const { set } = await jwksKvKeys(url);
    expect(set).not.toContain(jwksOrigin);
    const listed = await env.CACHE.list({ prefix: set });
    expect(listed.keys).toHaveLength(1);
    const expiration = listed.keys[0]?.expiration ?? 0;
    expect(expiration).toBeGreaterThan(nowSeconds() + 3000);
    expect(expiration).toBeLessThanOrEqual(nowSeconds() + 3600 + 5);
  });

  it("keeps the middleware's JWKS fetches at one across many requests", async () => {
    const path = uniquePath("middleware");
    const overrides = { AUTH_JWKS_URL: `${jwksOrigin}${path}` };
    for (let i = 0; i < 4; i++) {
      expect((await probe(await authHeaders(`m${i}`), { env: overrides })).status).toBe(200);
    }
    expect(await fetchesOf(path)).toBe(1);
  });

  it("refetches once on an unknown kid and accepts a newly rotated key", async () => {
    const path = uniquePath("rotate");
    const cache = new JwksCache(`${jwksOrigin}${path}`, {
      kv: env.CACHE,
      fetch: (i, init) => fetch(i, init),
      now: Date.now,
      ttlSeconds: 3600,
      memory: createJwksMemory(),
    });
    const deps = { keys: cache, issuer, audience, clockSkewSeconds: SKEW_SECONDS };
    await verifyAccessToken(await tokenFor("before"), deps);
    expect(await fetchesOf(path)).toBe(1);

    const rotated = await rotate(path);
    expect(await verifyAccessToken(await tokenFor("after", { key: rotated }), deps)).toEqual({
      userId: "after",
    });
    expect(await fetchesOf(path)).toBe(2);
    // The new set is cached now: no further fetch.
    expect(await verifyAccessToken(await tokenFor("again", { key: rotated }), deps)).toEqual({
      userId: "again",
    });
    expect(await fetchesOf(path)).toBe(2);
  });

  it("refetches for a repeated unknown kid once, then not again for a minute", async () => {
    const path = uniquePath("burst");
    let now = Date.now();
    const cache = () =>
      new JwksCache(`${jwksOrigin}${path}`, {
        kv: env.CACHE,
        fetch: (i, init) => fetch(i, init),
        now: () => now,
        ttlSeconds: 3600,
        memory,
      });
    const memory = createJwksMemory();
    const deps = () => ({ keys: cache(), issuer, audience, clockSkewSeconds: SKEW_SECONDS });
    await verifyAccessToken(await tokenFor("warm"), deps());
    expect(await fetchesOf(path)).toBe(1);

    const stray = await strayKey("ES256", "never-published");
    const token = await tokenFor("mallory", { key: stray.privateJwk });
    const attempts = [
      ...(await Promise.allSettled(Array.from({ length: 5 }, () => verifyAccessToken(token, deps())))),
    ];
    expect(await fetchesOf(path)).toBe(2);

    // Another isolate in the same location sees the refetch recorded in KV.
    now += REFETCH_INTERVAL_MS / 2;
    const otherIsolate = new JwksCache(`${jwksOrigin}${path}`, {
      kv: env.CACHE,
      fetch: (i, init) => fetch(i, init),
      now: () => now,
      ttlSeconds: 3600,
      memory: createJwksMemory(),
    });
    await expect(
      verifyAccessToken(token, { keys: otherIsolate, issuer, audience, clockSkewSeconds: SKEW_SECONDS }),
    ).rejects.toThrow();
    expect(await fetchesOf(path)).toBe(2);

    // The same unknown kid every 10 s: remembered as absent, no refetch within the minute.
    for (let i = 0; i < 5; i++) {
      now += 10_000;
      attempts.push(...(await Promise.allSettled([verifyAccessToken(token, deps())])));
    }
    expect(attempts.every((r) => r.status === "rejected")).toBe(true);
    expect(String((attempts[0] as PromiseRejectedResult).reason.message)).toMatch(/key/);
    expect(await fetchesOf(path)).toBe(2);

    // A minute after the refetch that did not find it, the kid may trigger one again.
    now += ABSENT_KID_MEMORY_MS - 50_000 - REFETCH_INTERVAL_MS / 2 + 1;
    await expect(verifyAccessToken(token, deps())).rejects.toThrow();
    expect(await fetchesOf(path)).toBe(3);
    // Good tokens kept working throughout.
    expect(await verifyAccessToken(await tokenFor("fine"), deps())).toEqual({ userId: "fine" });
  });

  it("honours a key rotation within the refetch interval while tokens with bogus kids keep arriving", async () => {
    const path = uniquePath("rotation-under-burst");
    let now = Date.now();
    const memory = createJwksMemory();
    const deps = () => ({
      keys: new JwksCache(`${jwksOrigin}${path}`, {
        kv: env.CACHE,
        fetch: (i, init) => fetch(i, init),
        now: () => now,
        ttlSeconds: 3600,
        memory,
      }),
      issuer,
      audience,
      clockSkewSeconds: SKEW_SECONDS,
    });
    await verifyAccessToken(await tokenFor("warm"), deps());
    expect(await fetchesOf(path)).toBe(1);

    // 30 tokens, each with a kid nobody publishes: one refetch, shared.
    const stray = await strayKey("ES256", "stray");
    const bogus = (n: number) => tokenFor("mallory", { key: stray.privateJwk, kid: `bogus-${n}` });
    const burst = await Promise.allSettled(
      Array.from({ length: 30 }, async (_, n) => verifyAccessToken(await bogus(n), deps())),
    );
    expect(burst.every((r) => r.status === "rejected")).toBe(true);
    expect(await fetchesOf(path)).toBe(2);

    // The identity provider rotates to a new key; a new bogus kid keeps arriving every second.
    const rotated = await rotate(path);
    const real = await tokenFor("after-rotation", { key: rotated });
    const start = now;
    let acceptedAfterMs: number | undefined;
    for (let second = 1; second <= 60; second++) {
      now += 1_000;
      await expect(verifyAccessToken(await bogus(100 + second), deps())).rejects.toThrow(/key/);
      const accepted = await verifyAccessToken(real, deps()).then(
        (result) => result.userId === "after-rotation",
        () => false,
      );
      if (accepted) acceptedAfterMs ??= now - start;
      else expect(acceptedAfterMs).toBeUndefined();
    }
    // Honoured within seconds (the refetch interval), not after the minute-long throttle.
    expect(acceptedAfterMs).toBeDefined();
    expect(acceptedAfterMs).toBeLessThanOrEqual(Math.min(REFETCH_INTERVAL_MS, 10_000));
    // A minute of new bogus kids costs at most one fetch per 5 s, not one per request.
    expect(await fetchesOf(path)).toBeLessThanOrEqual(2 + 60_000 / 5_000);
  });

  it("keeps using the cached set when the JWKS endpoint fails", async () => {
    const path = uniquePath("failing");
    const url = `${jwksOrigin}${path}`;
    let now = Date.now();
    const memory = createJwksMemory();
    const deps = () => ({
      keys: new JwksCache(url, {
        kv: env.CACHE,
        fetch: (i, init) => fetch(i, init),
        now: () => now,
        ttlSeconds: 3600,
        memory,
      }),
      issuer,
      audience,
      clockSkewSeconds: SKEW_SECONDS,
    });
    await verifyAccessToken(await tokenFor("warm"), deps());
    await setFailing(path, true);

    // Unknown kid: the refetch fails, good tokens still verify with the cached set.
    const stray = await strayKey("RS256", "stray");
    await expect(verifyAccessToken(await tokenFor("x", { key: stray.privateJwk }), deps())).rejects.toThrow(
      /key/,
    );
    expect(await fetchesOf(path)).toBe(2);
    expect(await verifyAccessToken(await tokenFor("still-ok"), deps())).toEqual({ userId: "still-ok" });

    // Memory stale and KV gone (expired): the stale copy is used rather than failing.
    await env.CACHE.delete((await jwksKvKeys(url)).set);
    now += 120_000;
    expect(await verifyAccessToken(await tokenFor("stale-ok"), deps())).toEqual({ userId: "stale-ok" });
    expect(await fetchesOf(path)).toBe(3);
  });

  it("answers 502 upstream_error when no key set can be had at all", async () => {
    const path = uniquePath("down");
    await setFailing(path, true);
    const errorLog = vi.spyOn(console, "error").mockImplementation(() => {});
    const token = await tokenFor("alice");
    const res = await probe(bearer(token), { env: { AUTH_JWKS_URL: `${jwksOrigin}${path}` } });
    expect(res.status).toBe(502);
    expect(res.body.error?.code).toBe("upstream_error");
    expect(errorLog).toHaveBeenCalled();
    expect(JSON.stringify(errorLog.mock.calls)).not.toContain(token);
  });
});

describe("dev mode", () => {
  async function devSetup() {
    const key = await strayKey("ES256", "edge-chat-dev-1");
    const devJwks = JSON.stringify({ keys: [key.publicJwk] });
    const token = await tokenFor("dev-user", {
      key: key.privateJwk,
      claims: { iss: DEV_ISSUER, aud: DEV_AUDIENCE },
    });
    return { key, devJwks, token };
  }

  it.each(["http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787"])(
    "accepts dev tokens at %s",
    async (origin) => {
      const { devJwks, token } = await devSetup();
      const res = await probe(bearer(token), { url: `${origin}/v1/whoami`, env: { AUTH_DEV_JWKS: devJwks } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ user_id: "dev-user" });
      // Production tokens keep working next to dev mode.
      const prod = await probe(await authHeaders("prod-user"), {
        url: `${origin}/v1/whoami`,
        env: { AUTH_DEV_JWKS: devJwks },
      });
      expect(prod.body).toEqual({ user_id: "prod-user" });
    },
  );

  it("works offline without production config on localhost", async () => {
    const { devJwks, token } = await devSetup();
    const res = await probe(bearer(token), {
      env: { AUTH_DEV_JWKS: devJwks, AUTH_JWKS_URL: "", AUTH_ISSUER: "", AUTH_AUDIENCE: "" },
    });
    expect(res.status).toBe(200);
  });

  it("rejects dev tokens on any other host", async () => {
    const { devJwks, token } = await devSetup();
    vi.spyOn(console, "error").mockImplementation(() => {});
    for (const url of [
      "https://api.example.com/v1/whoami",
      "http://localhost.example.com/v1/whoami",
      "http://127.0.0.2/v1/whoami",
    ]) {
      const res = await probe(bearer(token), { url, env: { AUTH_DEV_JWKS: devJwks } });
      expect(res.status).toBe(401);
    }
    const unconfigured = await probe(bearer(token), {
      url: "https://api.example.com/v1/whoami",
      env: { AUTH_DEV_JWKS: devJwks, AUTH_JWKS_URL: "", AUTH_ISSUER: "", AUTH_AUDIENCE: "" },
    });
    expect(unconfigured.status).toBe(401);
  });

  it("requires the dev issuer and audience", async () => {
    const { devJwks, key } = await devSetup();
    const offline = { AUTH_DEV_JWKS: devJwks, AUTH_JWKS_URL: "", AUTH_ISSUER: "", AUTH_AUDIENCE: "" };
    const wrongAud = await tokenFor("dev-user", {
      key: key.privateJwk,
      claims: { iss: DEV_ISSUER, aud: "other" },
    });
    await expectRejected(wrongAud, /audience/, { env: offline });
    const wrongIss = await tokenFor("dev-user", {
      key: key.privateJwk,
      claims: { iss: "someone", aud: DEV_AUDIENCE },
    });
    await expectRejected(wrongIss, /issuer/, { env: offline });
  });

  it("tells the holder of an expired dev token to run npm run token", async () => {
    const { devJwks, key } = await devSetup();
    const expired = await tokenFor("dev-user", {
      key: key.privateJwk,
      claims: { iss: DEV_ISSUER, aud: DEV_AUDIENCE },
      expiresInSeconds: -(SKEW_SECONDS + 60),
    });
    const offline = { AUTH_DEV_JWKS: devJwks, AUTH_JWKS_URL: "", AUTH_ISSUER: "", AUTH_AUDIENCE: "" };
    await expectRejected(expired, /expired; mint a new one with `npm run token -- <user-id>`/, {
      env: offline,
    });
    // An identity provider's token still points at the identity provider.
    await expectRejected(
      await tokenFor("alice", { expiresInSeconds: -(SKEW_SECONDS + 60) }),
      /obtain a new one from the identity provider/,
      { env: { AUTH_DEV_JWKS: devJwks } },
    );
  });

  it("tells a dev token sent to another address that it works on localhost only, and how to allow that address", async () => {
    const { devJwks, token } = await devSetup();
    vi.spyOn(console, "error").mockImplementation(() => {});
    const offline = { AUTH_DEV_JWKS: devJwks, AUTH_JWKS_URL: "", AUTH_ISSUER: "", AUTH_AUDIENCE: "" };
    for (const env of [offline, { AUTH_DEV_JWKS: devJwks }]) {
      const refused = await probe(bearer(token), { url: "http://10.0.2.2:8787/v1/whoami", env });
      expect(refused.status).toBe(401);
      expect(refused.body.error?.message).toMatch(/accepted on localhost only/);
      expect(refused.body.error?.message).toContain("AUTH_DEV_HOSTS=10.0.2.2");
      expect(refused.text).not.toContain(token.split(".")[2]);
    }
    const allowed = await probe(bearer(token), {
      url: "http://10.0.2.2:8787/v1/whoami",
      env: { ...offline, AUTH_DEV_HOSTS: "10.0.2.2, 192.168.1.20" },
    });
    expect(allowed.body).toEqual({ user_id: "dev-user" });
    const lan = await probe(bearer(token), {
      url: "http://192.168.1.20:8787/v1/whoami",
      env: { ...offline, AUTH_DEV_HOSTS: "10.0.2.2, 192.168.1.20" },
    });
    expect(lan.body).toEqual({ user_id: "dev-user" });
    // Without the dev key set, AUTH_DEV_HOSTS does nothing.
    const noDevMode = await probe(bearer(token), {
      url: "http://10.0.2.2:8787/v1/whoami",
      env: { AUTH_DEV_HOSTS: "10.0.2.2" },
    });
    expect(noDevMode.status).toBe(401);
    expect(noDevMode.body.error?.message).not.toMatch(/localhost/);
  });

  it("accepts only private-network addresses in AUTH_DEV_HOSTS", async () => {
    const { devJwks, token } = await devSetup();
    const lines: string[] = [];
    const gate = createDevModeGate((line) => lines.push(line));
    const hosts = "api.example.com 8.8.8.8 [fd00::1] 172.32.0.1 10.0.2.2 fe80::1";
    expect(gate(devJwks, "https://api.example.com/v1/x", hosts)).toBeNull();
    expect(gate(devJwks, "http://8.8.8.8/v1/x", hosts)).toBeNull();
    expect(gate(devJwks, "http://172.32.0.1/v1/x", hosts)).toBeNull();
    for (const url of ["http://10.0.2.2/v1/x", "http://[fd00::1]/v1/x", "http://[fe80::1]:8787/v1/x"])
      expect(gate(devJwks, url, hosts), url).toEqual(JSON.parse(devJwks));
    expect(lines.filter((l) => l.includes("AUTH_DEV_HOSTS"))).toHaveLength(1);
    expect(lines.join("\n")).toContain("api.example.com");
    // Through the middleware, a public name in AUTH_DEV_HOSTS changes nothing.
    vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await probe(bearer(token), {
      url: "https://api.example.com/v1/whoami",
      env: { AUTH_DEV_JWKS: devJwks, AUTH_DEV_HOSTS: "api.example.com" },
    });
    expect(res.status).toBe(401);
  });

  it("logs a non-local AUTH_DEV_JWKS once per isolate", async () => {
    const { devJwks } = await devSetup();
    const lines: string[] = [];
    const gate = createDevModeGate((line) => lines.push(line));
    expect(gate(devJwks, "https://api.example.com/v1/x")).toBeNull();
    expect(gate(devJwks, "https://api.example.com/v1/y")).toBeNull();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("AUTH_DEV_JWKS is set on a non-local host; ignoring it");
    expect(gate(devJwks, "http://localhost/v1/x")).toEqual(JSON.parse(devJwks));
    expect(gate("", "http://localhost/v1/x")).toBeNull();
  });
});

describe("missing production config", () => {
  it.each(["AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE"] as const)(
    "fails closed without %s",
    async (name) => {
      const errorLog = vi.spyOn(console, "error").mockImplementation(() => {});
      const token = await tokenFor("alice");
      const res = await probe(bearer(token), { env: { [name]: "" } });
      expect(res.status).toBe(401);
      expect(res.body.error?.code).toBe("unauthorized");
      expect(res.body.error?.message).toMatch(/not configured/);
      expect(errorLog).toHaveBeenCalledTimes(1);
      const logged = JSON.stringify(errorLog.mock.calls);
      expect(logged).toMatch(/auth is not configured/);
      expect(logged).not.toContain(token);
    },
  );
});
