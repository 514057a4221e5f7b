import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  newUser,
  openTurn,
  readSse,
  startedData,
  streamTurn,
} from "./helpers/api";
import type { ChatCompletion, ErrorBody, OpenAiErrorBody, UsageReport } from "./helpers/api-types";
import type { ReservationRow, UsageRecordRow } from "./helpers/db-rows";
import { dbOf } from "./helpers/shards";

const records = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT * FROM usage_records WHERE user_id = ? ORDER BY created_at")
      .bind(userId)
      .all<UsageRecordRow>()
  ).results;
const reservations = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT * FROM quota_reservations WHERE user_id = ?")
      .bind(userId)
      .all<ReservationRow>()
  ).results;
const setBudget = (userId: string, tokens: number | null) =>
  dbOf(userId).prepare("UPDATE users SET daily_token_budget = ? WHERE id = ?").bind(tokens, userId).run();
const usage = async (userId: string, query = "") => {
  const res = await call(userId, "GET", `/usage${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as UsageReport;
};

describe("the usage ledger", () => {
  it("a completed answer writes exactly one record, the daily aggregate, and releases its reservation", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const { events } = await streamTurn(alice, conv.id, {
      content: "hi [[stand-in tokens=7]]",
      client_message_id: "u-1",
    });
    const message = endMessage(events.at(-1));
    // A retry of the same send is the same turn: still one record.
    await streamTurn(alice, conv.id, { content: "hi [[stand-in tokens=7]]", client_message_id: "u-1" });

    const [record, ...more] = await records(alice);
    expect(more).toHaveLength(0);
    expect(record).toMatchObject({
      id: message.id,
      status: "completed",
      model: "qwen-plus",
      prompt_tokens: message.usage!.prompt_tokens,
      completion_tokens: 7,
      total_tokens: message.usage!.total_tokens,
      estimated: 0,
    });
    // qwen-plus: 0.4 USD per 1M input tokens, 1.2 per 1M output tokens.
    expect(record!.cost_usd).toBeCloseTo((message.usage!.prompt_tokens * 0.4 + 7 * 1.2) / 1e6, 12);
    expect(await reservations(alice)).toEqual([]);

    const report = await usage(alice);
    expect(report.data).toEqual([
      {
        day: record!.day,
        model: "qwen-plus",
        requests: 1,
        prompt_tokens: message.usage!.prompt_tokens,
        completion_tokens: 7,
        total_tokens: message.usage!.total_tokens,
        cached_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: record!.cost_usd,
      },
    ]);
    expect(report.totals.total_tokens).toBe(message.usage!.total_tokens);
  });

  it("interrupted and stopped answers are recorded once; a failure before the stream is not", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const interrupted = await streamTurn(alice, conv.id, {
      content: "x [[stand-in tokens=10 midstream=openai after=4]]",
    });
    const failed = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "x [[stand-in error=data_inspection_failed]]",
    });
    expect(failed.status).toBe(422);
    const reader = await openTurn(alice, conv.id, { content: "x [[stand-in tokens=300 itl=10]]" });
    const messageId = startedData(await reader.next()).assistant_message.id;
    await reader.next();
    await call(alice, "POST", `/messages/${messageId}/stop`);
    await reader.rest();

    const rows = await records(alice);
    expect(rows.map((r) => r.status)).toEqual(["interrupted", "cancelled"]);
    expect(rows[0]!.id).toBe(endMessage(interrupted.events.at(-1)).id);
    expect(rows[1]).toMatchObject({ id: messageId, estimated: 1 });
    expect(await reservations(alice)).toEqual([]);
    const report = await usage(alice);
    expect(report.totals.requests).toBe(2);
    expect(report.totals.total_tokens).toBe(rows[0]!.total_tokens + rows[1]!.total_tokens);
  });

  it("rejects bad ranges", async () => {
    const alice = newUser("alice");
    await expectError(await call(alice, "GET", "/usage?from=2026-13-01"), 400, "invalid_request", "from");
    await expectError(
      await call(alice, "GET", "/usage?from=2026-05-02&to=2026-05-01"),
      400,
      "invalid_request",
      "from",
    );
    await expectError(
      await call(alice, "GET", "/usage?from=2020-01-01&to=2026-01-01"),
      400,
      "invalid_request",
      "from",
    );
  });
});

describe("daily quotas", () => {
  it("20 parallel turns against a small budget never overspend it", async () => {
    const alice = newUser("alice");
    const convs = await Promise.all(Array.from({ length: 20 }, () => createConversation(alice)));
    const budget = 1_500;
    await setBudget(alice, budget);
    const responses = await Promise.all(
      convs.map((conv) =>
        call(alice, "POST", `/conversations/${conv.id}/messages`, {
          content: "hi [[stand-in tokens=40 itl=5]]",
          parameters: { max_tokens: 200 },
        }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    const refused = responses.filter((r) => r.status === 429);
    for (const r of refused) {
      expect(r.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(((await r.json()) as ErrorBody).error.code).toBe("quota_exceeded");
    }
    await Promise.all(responses.filter((r) => r.status === 200).map((r) => readSse(r)));
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);

    const report = await usage(alice);
    // Reservations are worst cases, so even the settled total stays within the budget.
    expect(report.totals.total_tokens).toBeLessThanOrEqual(budget);
    expect(report.totals.requests).toBe(statuses.filter((s) => s === 200).length);
    expect(await reservations(alice)).toEqual([]);
  });

  it("expired reservations of answers that never settled stop counting", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await setBudget(alice, 10_000);
    const day = new Date().toISOString().slice(0, 10);
    const hold = (id: string, expiresAt: number) =>
      dbOf(alice)
        .prepare(
          "INSERT INTO quota_reservations (id, user_id, day, tokens, expires_at) VALUES (?, ?, ?, 9900, ?)",
        )
        .bind(id, alice, day, expiresAt)
        .run();
    await hold("orphan-live", Date.now() + 60_000);
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "hi",
        parameters: { max_tokens: 2000 },
      }),
      429,
      "quota_exceeded",
    );
    await dbOf(alice)
      .prepare("UPDATE quota_reservations SET expires_at = ? WHERE id = 'orphan-live'")
      .bind(Date.now() - 1)
      .run();
    const { events } = await streamTurn(alice, conv.id, {
      content: "hi [[stand-in tokens=2]]",
      parameters: { max_tokens: 2000 },
    });
    expect(events.at(-1)!.event).toBe("message.completed");
  });

  it("a refused turn stores nothing; a blocked user cannot start turns", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await setBudget(alice, 10);
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "hi" }),
      429,
      "quota_exceeded",
    );
    await setBudget(alice, null);
    await dbOf(alice).prepare("UPDATE users SET blocked_at = ? WHERE id = ?").bind(Date.now(), alice).run();
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "hi" }),
      403,
      "forbidden",
    );
    const count = await dbOf(alice)
      .prepare("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?")
      .bind(conv.id)
      .first<{ n: number }>();
    expect(count!.n).toBe(0);
    expect(await reservations(alice)).toEqual([]);
  });
});

describe("/v1/chat/completions in the ledger and quota", () => {
  const completion = (userId: string, body: Record<string, unknown>) =>
    call(userId, "POST", "/chat/completions", { model: "qwen-plus", ...body });

  it("streamed and non-streamed calls each write one record; a failure before the stream writes none", async () => {
    const alice = newUser("alice");
    await createConversation(alice); // creates the user row
    const streamed = await completion(alice, {
      messages: [{ role: "user", content: "hi [[stand-in tokens=6]]" }],
      stream: true,
    });
    expect(streamed.status).toBe(200);
    const text = await streamed.text();
    expect(text).toContain("data: [DONE]");
    expect(text).not.toContain('"usage":{'); // not asked for: the usage chunk is the ledger's only
    const plain = await completion(alice, {
      messages: [{ role: "user", content: "hi [[stand-in tokens=4]]" }],
    });
    const body = (await plain.json()) as ChatCompletion;
    const failed = await completion(alice, {
      messages: [{ role: "user", content: "x [[stand-in error=data_inspection_failed]]" }],
    });
    expect(failed.status).toBe(422);

    const rows = await eventually(async () => {
      const r = await records(alice);
      return r.length === 2 && (await reservations(alice)).length === 0 ? r : null;
    });
    expect(rows.map((r) => [r.conversation_id, r.completion_tokens, r.estimated])).toEqual([
      [null, 6, 0],
      [null, 4, 0],
    ]);
    expect(rows[1]!.total_tokens).toBe(body.usage!.total_tokens);
    expect((await usage(alice)).totals.requests).toBe(2);
  });

  it("over the budget is 429 quota_exceeded in OpenAI's envelope", async () => {
    const alice = newUser("alice");
    await createConversation(alice);
    await setBudget(alice, 100);
    const res = await completion(alice, { messages: [{ role: "user", content: "hi" }], max_tokens: 500 });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(((await res.json()) as OpenAiErrorBody).error).toMatchObject({
      code: "quota_exceeded",
      type: expect.any(String),
    });
    expect(await records(alice)).toEqual([]);
  });

  it("a streamed tool call cut off before usage came is estimated from its fragments", async () => {
    const alice = newUser("alice");
    await createConversation(alice);
    const tool = {
      type: "function",
      function: {
        name: "get_weather",
        parameters: { type: "object", properties: { location: { type: "string" } } },
      },
    };
    // The connection drops after the call's fragments, before the finish chunk and usage.
    const res = await completion(alice, {
      messages: [{ role: "user", content: "weather? [[stand-in tool_call disconnect=1]]" }],
      tools: [tool],
      stream: true,
    });
    expect(await res.text()).toContain('"code":"upstream_error"');
    const [record] = await eventually(async () => {
      const rows = await records(alice);
      return rows.length === 1 ? rows : null;
    });
    expect(record).toMatchObject({ status: "failed", estimated: 1 });
    expect(record!.completion_tokens).toBeGreaterThan(0);
  });
});
