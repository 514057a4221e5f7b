import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../src/app";
import { call, createConversation, expectError, newUser } from "./helpers/api";
import { authHeaders } from "./helpers/auth";
import { dbOf } from "./helpers/shards";

const ADMIN = "http://localhost/admin/v1";
const adminToken = () => env.ADMIN_TOKEN!;

/** Calls an operator route with `authorization` as given (none when undefined). */
function adminCall(
  authorization: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers["content-type"] = "application/json";
  return exports.default.fetch(`${ADMIN}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const asAdmin = (method: string, path: string, body?: unknown) =>
  adminCall(`Bearer ${adminToken()}`, method, path, body);

/** Every operator route, with a valid body where one is needed. */
const routes = (userId: string): [string, string, unknown?][] => [
  ["GET", `/users/${userId}`],
  ["PUT", `/users/${userId}/budget`, { daily_token_budget: 1000 }],
  ["PUT", `/users/${userId}/rate-limit`, { tier: "relaxed" }],
  ["POST", `/users/${userId}/block`],
  ["DELETE", `/users/${userId}/block`],
  ["GET", `/users/${userId}/usage?from=2026-01-01&to=2026-01-31`],
];

interface Limits {
  id: string;
  daily_token_budget: number | null;
  rate_limit_tier: string | null;
  effective_rate_limit_tier: string;
  rate_limit_per_minute: number;
  blocked: boolean;
  blocked_at: string | null;
}

async function limitsOf(userId: string): Promise<Limits> {
  const res = await asAdmin("GET", `/users/${userId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Limits;
}

describe("operator routes", () => {
  it("refuse no token, a user's JWT, a user's API key and a wrong admin token on every route", async () => {
    const alice = newUser("alice");
    await createConversation(alice);
    const keyRes = await call(alice, "POST", "/api-keys", {});
    const { key } = (await keyRes.json()) as { key: string };
    const jwt = (await authHeaders(alice)).authorization!;
    const token = adminToken();
    const sameLengthWrong = token.slice(0, -1) + (token.endsWith("x") ? "y" : "x");
    const credentials = [
      undefined,
      jwt,
      `Bearer ${key}`,
      `Bearer ${sameLengthWrong}`,
      `Bearer ${token}extra`,
      `Basic ${btoa(`admin:${token}`)}`,
    ];
    for (const [method, path, body] of routes(alice)) {
      for (const authorization of credentials) {
        const res = await adminCall(authorization, method, path, body);
        await expectError(res, 401, "unauthorized");
      }
    }
    // None of those writes happened.
    const row = await dbOf(alice)
      .prepare("SELECT daily_token_budget, rate_limit_tier, blocked_at FROM users WHERE id = ?")
      .bind(alice)
      .first();
    expect(row).toEqual({ daily_token_budget: null, rate_limit_tier: null, blocked_at: null });
  });

  it("do not exist without a usable ADMIN_TOKEN", async () => {
    const alice = newUser("alice");
    for (const ADMIN_TOKEN of [undefined, "", "too-short-token"]) {
      for (const [method, path, body] of routes(alice)) {
        const res = await app.request(
          `${ADMIN}${path}`,
          {
            method,
            headers: { authorization: `Bearer ${ADMIN_TOKEN ?? ""}`, "content-type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
          },
          { ...env, ADMIN_TOKEN },
        );
        await expectError(res, 404, "not_found");
      }
    }
  });

  it("say locally why they are off, and on a deployment answer like an unknown route", async () => {
    const alice = newUser("alice");
    for (const ADMIN_TOKEN of [undefined, "too-short-token"]) {
      const local = await app.request(
        `http://localhost:8787/admin/v1/users/${alice}`,
        {},
        { ...env, ADMIN_TOKEN },
      );
      const { message } = await expectError(local, 404, "not_found");
      expect(message).toMatch(/^Operator routes are off: ADMIN_TOKEN is (not set|shorter than 32)/);
      expect(message).toContain(".dev.vars");
      expect(message).not.toMatch(/No route/);
    }
    const deployed = await app.request(
      `https://chat.example.com/admin/v1/users/${alice}`,
      {},
      { ...env, ADMIN_TOKEN: undefined },
    );
    const unknown = await app.request("https://chat.example.com/admin/v2/anything", {}, env);
    expect(deployed.status).toBe(404);
    const [a, b] = [await deployed.json(), await unknown.json()];
    expect(a).toEqual({
      error: { code: "not_found", message: `No route for GET /admin/v1/users/${alice}.` },
    });
    expect(b).toEqual({ error: { code: "not_found", message: "No route for GET /admin/v2/anything." } });
  });

  it("never accept the admin token on the user API", async () => {
    const res = await exports.default.fetch("http://localhost/v1/conversations", {
      headers: { authorization: `Bearer ${adminToken()}` },
    });
    await expectError(res, 401, "unauthorized");
  });

  it("set a user's budget, rate-limit tier and block, and show them", async () => {
    const bob = newUser("bob");
    await expectError(await asAdmin("GET", `/users/${bob}`), 404, "not_found");

    // A user can be configured before their first request.
    const budget = await asAdmin("PUT", `/users/${bob}/budget`, { daily_token_budget: 50_000 });
    expect(budget.status).toBe(200);
    expect(await budget.json()).toMatchObject({
      id: bob,
      daily_token_budget: 50_000,
      rate_limit_tier: null,
      effective_rate_limit_tier: "standard",
      blocked: false,
    });

    const tier = await asAdmin("PUT", `/users/${bob}/rate-limit`, { tier: "strict" });
    expect(tier.status).toBe(200);
    expect(await env.CACHE.get(`ratetier:${bob}`)).toBe("strict");

    const blocked = await asAdmin("POST", `/users/${bob}/block`);
    expect(blocked.status).toBe(200);
    const shown = await limitsOf(bob);
    expect(shown).toMatchObject({
      daily_token_budget: 50_000,
      rate_limit_tier: "strict",
      effective_rate_limit_tier: "strict",
      rate_limit_per_minute: 3,
      blocked: true,
    });
    expect(Date.parse(shown.blocked_at!)).not.toBeNaN();
    // Blocking again keeps the original time.
    await asAdmin("POST", `/users/${bob}/block`);
    expect((await limitsOf(bob)).blocked_at).toBe(shown.blocked_at);

    const row = await dbOf(bob)
      .prepare("SELECT daily_token_budget, rate_limit_tier, blocked_at FROM users WHERE id = ?")
      .bind(bob)
      .first();
    expect(row).toEqual({
      daily_token_budget: 50_000,
      rate_limit_tier: "strict",
      blocked_at: expect.any(Number),
    });
    // The stored milliseconds, shown cut to the whole second.
    expect(Math.floor(Number(row?.blocked_at) / 1000) * 1000).toBe(Date.parse(shown.blocked_at!));

    // Back to the defaults.
    await asAdmin("DELETE", `/users/${bob}/block`);
    await asAdmin("PUT", `/users/${bob}/budget`, { daily_token_budget: null });
    await asAdmin("PUT", `/users/${bob}/rate-limit`, { tier: null });
    expect(await limitsOf(bob)).toMatchObject({
      daily_token_budget: null,
      rate_limit_tier: null,
      effective_rate_limit_tier: "standard",
      rate_limit_per_minute: 60,
      blocked: false,
      blocked_at: null,
    });
    expect(await env.CACHE.get(`ratetier:${bob}`)).toBe("default");
  });

  it("keep the user's existing data when configuring them", async () => {
    const carol = newUser("carol");
    const conv = await createConversation(carol, { title: "kept" });
    await asAdmin("PUT", `/users/${carol}/budget`, { daily_token_budget: 0 });
    const res = await call(carol, "GET", `/conversations/${conv.id}`);
    expect(res.status).toBe(200);
    expect((await limitsOf(carol)).daily_token_budget).toBe(0);
  });

  it("validate their bodies", async () => {
    const dave = newUser("dave");
    await expectError(
      await asAdmin("PUT", `/users/${dave}/budget`, { daily_token_budget: "lots" }),
      400,
      "invalid_request",
      "daily_token_budget",
    );
    await expectError(
      await asAdmin("PUT", `/users/${dave}/budget`, { daily_token_budget: 1.5 }),
      400,
      "invalid_request",
      "daily_token_budget",
    );
    await expectError(
      await asAdmin("PUT", `/users/${dave}/budget`, { daily_token_budget: -2 }),
      400,
      "invalid_request",
      "daily_token_budget",
    );
    await expectError(
      await asAdmin("PUT", `/users/${dave}/budget`, {}),
      400,
      "invalid_request",
      "daily_token_budget",
    );
    await expectError(
      await asAdmin("PUT", `/users/${dave}/rate-limit`, { tier: "gold" }),
      400,
      "invalid_request",
      "tier",
    );
    await expectError(await asAdmin("GET", `/users/${dave}`), 404, "not_found");
  });

  it("block a user's turns until unblocked", async () => {
    const erin = newUser("erin");
    const conv = await createConversation(erin);
    await asAdmin("POST", `/users/${erin}/block`);
    await expectError(
      await call(erin, "POST", `/conversations/${conv.id}/messages`, { content: "hi [[stand-in tokens=2]]" }),
      403,
      "forbidden",
    );
    await asAdmin("DELETE", `/users/${erin}/block`);
    const res = await call(erin, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi [[stand-in tokens=2]]",
    });
    expect(res.status).toBe(200);
    await res.text();
  });

  it("read any user's usage", async () => {
    const frank = newUser("frank");
    await dbOf(frank).batch([
      dbOf(frank)
        .prepare(
          `INSERT INTO usage_daily (user_id, day, model, requests, prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, cost_usd)
         VALUES (?, '2026-03-02', 'qwen-plus', 2, 100, 50, 150, 10, 0, 0.25)`,
        )
        .bind(frank),
      dbOf(frank)
        .prepare(
          `INSERT INTO usage_daily (user_id, day, model, requests, prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, cost_usd)
         VALUES (?, '2026-03-05', 'qwen-plus', 1, 10, 5, 15, 0, 0, 0.5)`,
        )
        .bind(frank),
    ]);
    const res = await asAdmin("GET", `/users/${frank}/usage?from=2026-03-01&to=2026-03-03`);
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      from: string;
      to: string;
      data: { day: string; total_tokens: number }[];
      totals: { requests: number; total_tokens: number };
    };
    expect(report.from).toBe("2026-03-01");
    expect(report.to).toBe("2026-03-03");
    expect(report.data.map((d) => [d.day, d.total_tokens])).toEqual([["2026-03-02", 150]]);
    expect(report.totals).toMatchObject({ requests: 2, total_tokens: 150 });
    await expectError(
      await asAdmin("GET", `/users/${frank}/usage?from=March`),
      400,
      "invalid_request",
      "from",
    );
    await expectError(
      await asAdmin("GET", `/users/${frank}/usage?from=2026-03-05&to=2026-03-01`),
      400,
      "invalid_request",
      "from",
    );
  });
});
