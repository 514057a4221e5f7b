import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, createConversation, eventually, expectError, newUser } from "./helpers/api";
import { dbOf } from "./helpers/shards";

/** The strict tier's limit in tests (vitest.config.ts overrides the binding's `simple.limit`). */
const STRICT_LIMIT = 3;
const WINDOW_MS = 60_000;

async function setTier(userId: string, tier: string | null): Promise<void> {
  const res = await exports.default.fetch(`http://localhost/admin/v1/users/${userId}/rate-limit`, {
    method: "PUT",
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ tier }),
  });
  expect(res.status).toBe(200);
}

async function turn(userId: string, conversationId: string): Promise<Response> {
  const res = await call(userId, "POST", `/conversations/${conversationId}/messages`, {
    content: "hi [[stand-in tokens=2]]",
  });
  return res;
}

/**
 * A turn whose answer is read to its end before it returns (the response stays readable): a
 * send while the previous answer of the conversation still streams is a 409 turn_in_progress,
 * not a rate-limit decision.
 */
async function finishedTurn(userId: string, conversationId: string): Promise<Response> {
  const res = await turn(userId, conversationId);
  await res.clone().text();
  return res;
}

const completion = (userId: string) =>
  call(userId, "POST", "/chat/completions", {
    model: "qwen-plus",
    messages: [{ role: "user", content: "hi [[stand-in tokens=2]]" }],
  });

/**
 * Runs `attempt` with a fresh user until it ran inside one limiter window. The local limiter's
 * windows are aligned to the wall clock, so a sequence that straddles a minute boundary starts
 * counting again halfway; such a run proves nothing and is repeated (at most once more).
 */
async function withinOneWindow(attempt: (userId: string) => Promise<Response[]>): Promise<Response[]> {
  for (let tries = 0; ; tries++) {
    const userId = newUser("limited");
    const start = Math.floor(Date.now() / WINDOW_MS);
    const responses = await attempt(userId);
    if (Math.floor(Date.now() / WINDOW_MS) === start || tries === 1) return responses;
  }
}

describe("rate limits", () => {
  it("refuse the turn after the tier's limit with 429 rate_limited and Retry-After", async () => {
    const responses = await withinOneWindow(async (userId) => {
      await setTier(userId, "strict");
      const conv = await createConversation(userId);
      const out: Response[] = [];
      for (let i = 0; i <= STRICT_LIMIT; i++) out.push(await finishedTurn(userId, conv.id));
      // Reading is not limited, even on the same path; the refused turn stored nothing.
      const listed = await call(userId, "GET", `/conversations/${conv.id}/messages?limit=100`);
      expect(listed.status).toBe(200);
      const turnsStored = ((await listed.json()) as { data: unknown[] }).data.length / 2;
      expect(turnsStored).toBe(out.filter((r) => r.status === 200).length);
      return out;
    });
    for (const res of responses.slice(0, STRICT_LIMIT)) {
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit-requests")).toBe(String(STRICT_LIMIT));
      expect(res.headers.get("x-ratelimit-reset-requests")).toBe("1m0s");
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    }
    const refused = responses[STRICT_LIMIT]!;
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(refused.headers.get("x-ratelimit-limit-requests")).toBe(String(STRICT_LIMIT));
    expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    await expectError(refused, 429, "rate_limited");
  });

  it("count chat completions with turns, and refuse them in OpenAI's error shape", async () => {
    const responses = await withinOneWindow(async (userId) => {
      await setTier(userId, "strict");
      const conv = await createConversation(userId);
      const out: Response[] = [];
      for (let i = 0; i < STRICT_LIMIT - 1; i++) out.push(await finishedTurn(userId, conv.id));
      out.push(await completion(userId), await completion(userId));
      for (const res of out) await res.clone().text();
      return out;
    });
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(responses[2]!.headers.get("x-ratelimit-limit-requests")).toBe(String(STRICT_LIMIT));
    const refused = responses[3]!;
    expect(refused.headers.get("retry-after")).toBe("60");
    const body = (await refused.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error.type).toBe("rate_limit_error");
  });

  it("apply the default tier to users without one, reading a tier set in D1 when KV has none", async () => {
    const plain = newUser("plain");
    const conv = await createConversation(plain);
    const res = await turn(plain, conv.id);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-limit-requests")).toBe("60");
    await res.text();
    // Cached after the response.
    await eventually(async () => (await env.CACHE.get(`ratetier:${plain}`)) === "default");

    // A tier written straight to D1 (say by another location's operator call) is read once the
    // cached one is gone: not on the request's path (which takes the default tier meanwhile, so
    // the turn's only D1 round trip before the upstream call stays its batch) but after it,
    // into KV; the next request has it.
    await dbOf(plain).prepare("UPDATE users SET rate_limit_tier = 'strict' WHERE id = ?").bind(plain).run();
    await env.CACHE.delete(`ratetier:${plain}`);
    const meanwhile = await turn(plain, conv.id);
    expect(meanwhile.headers.get("x-ratelimit-limit-requests")).toBe("60");
    await meanwhile.text();
    await eventually(async () => (await env.CACHE.get(`ratetier:${plain}`)) === "strict");
    const strict = await turn(plain, conv.id);
    expect(strict.headers.get("x-ratelimit-limit-requests")).toBe(String(STRICT_LIMIT));
    await strict.text();
  });

  it("limit each user separately", async () => {
    const responses = await withinOneWindow(async (userId) => {
      await setTier(userId, "strict");
      const other = newUser("other");
      await setTier(other, "strict");
      const mine = await createConversation(userId);
      const theirs = await createConversation(other);
      const out: Response[] = [];
      for (let i = 0; i < STRICT_LIMIT; i++) out.push(await finishedTurn(userId, mine.id));
      out.push(await finishedTurn(other, theirs.id), await finishedTurn(userId, mine.id));
      for (const res of out) await res.clone().text();
      return out;
    });
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 429]);
  });
});
