import { describe, expect, it } from "vitest";
import { call, createConversation, endMessage, eventually, newTag, newUser, readSse } from "./helpers/api";
import type { UsageReport } from "./helpers/api-types";
import { dbOf } from "./helpers/shards";

/**
 * Issue 12 fault 4 on the conversation API: parallel turns of one user in 20 conversations
 * against a small daily budget. A turn reserves the prompt as it will be sent (the
 * conversation's own system prompt, history, tool definitions) plus its whole reply bounds (the
 * model's maximum output and chain of thought unless the turn bounds them), or what remains of
 * the budget, and an answer is cut where its grant ends: the day's settled usage stays within
 * the budget (each cut passes its grant by at most the one delta that reached it).
 */

const BUDGET = 50_000;
const PARALLEL = 20;
/** The most estimated tokens of one stand-in delta (one word of its vocabulary). */
const ONE_DELTA = 8;

const addUser = async (budget: number) => {
  const user = newUser("budget");
  await dbOf(user)
    .prepare("INSERT INTO users (id, created_at, daily_token_budget) VALUES (?, ?, ?)")
    .bind(user, Date.now(), budget)
    .run();
  return user;
};

async function settled(userId: string): Promise<UsageReport> {
  await eventually(async () => {
    const row = await dbOf(userId)
      .prepare("SELECT COUNT(*) AS n FROM quota_reservations WHERE user_id = ?")
      .bind(userId)
      .first<{ n: number }>();
    return row?.n === 0;
  });
  const res = await call(userId, "GET", "/usage");
  expect(res.status).toBe(200);
  return (await res.json()) as UsageReport;
}

interface Outcome {
  status: number;
  code: string | null;
  finishReason: string | null;
  answerStatus: string | null;
}

/** One turn in each of `PARALLEL` conversations at once, each read to its end. */
async function inParallel(
  user: string,
  conversation: Record<string, unknown>,
  body: () => Record<string, unknown>,
): Promise<Outcome[]> {
  const conversations = await Promise.all(
    Array.from({ length: PARALLEL }, () => createConversation(user, conversation)),
  );
  const responses = await Promise.all(
    conversations.map((c) => call(user, "POST", `/conversations/${c.id}/messages`, body())),
  );
  return Promise.all(
    responses.map(async (res): Promise<Outcome> => {
      if (res.status !== 200) {
        const { error } = (await res.json()) as { error: { code: string } };
        return { status: res.status, code: error.code, finishReason: null, answerStatus: null };
      }
      const { events } = await readSse(res);
      const answer = endMessage(events.at(-1));
      return { status: 200, code: null, finishReason: answer.finish_reason, answerStatus: answer.status };
    }),
  );
}

async function expectWithinBudget(user: string, outcomes: Outcome[]) {
  const answered = outcomes.filter((o) => o.status === 200);
  for (const o of outcomes.filter((o) => o.status !== 200)) {
    expect(o).toMatchObject({ status: 429, code: "quota_exceeded" });
  }
  for (const o of answered) expect(o.answerStatus).toBe("completed");
  const report = await settled(user);
  // Every answer is settled, once; refused turns stored nothing and cost nothing.
  expect(report.totals.requests).toBe(answered.length);
  expect(report.totals.total_tokens).toBeLessThanOrEqual(BUDGET + answered.length * ONE_DELTA);
  return { answered, total: report.totals.total_tokens };
}

describe("a daily budget under parallel turns", () => {
  it("holds with a 100,000-character system prompt in each conversation, from its first turn", async () => {
    const user = await addUser(BUDGET);
    const systemPrompt = "All work and no play makes a dull model. ".repeat(2_440).slice(0, 100_000);
    const outcomes = await inParallel(user, { system_prompt: systemPrompt }, () => ({
      content: "Hi [[stand-in tokens=20]]",
    }));
    const { answered } = await expectWithinBudget(user, outcomes);
    expect(answered.length).toBeGreaterThan(0);
    expect(answered.length).toBeLessThan(PARALLEL);
  });

  it("holds with enable_thinking and no thinking_budget", async () => {
    const user = await addUser(BUDGET);
    const outcomes = await inParallel(user, {}, () => ({
      content: "Think [[stand-in reasoning=20000 tokens=20]]",
      parameters: { enable_thinking: true },
    }));
    const { answered } = await expectWithinBudget(user, outcomes);
    expect(answered.length).toBeGreaterThan(0);
  });

  it("holds with a 200 KB tool definition", async () => {
    const user = await addUser(BUDGET);
    const tool = {
      type: "function",
      function: {
        name: "lookup",
        description: "Looks things up. ".repeat(12_000).slice(0, 200_000),
        parameters: { type: "object", properties: { q: { type: "string" } } },
      },
    };
    const outcomes = await inParallel(user, { parameters: { tools: [tool] } }, () => ({
      content: "Look it up [[stand-in tokens=5]]",
    }));
    // 50,000 prompt tokens of definitions: no turn finds its prompt and a minimal reply left.
    await expectWithinBudget(user, outcomes);
    expect(outcomes.every((o) => o.status === 429)).toBe(true);
  });

  it("holds with long answers and no max_tokens, cutting them like max_tokens", async () => {
    const user = await addUser(BUDGET);
    const tag = newTag();
    const outcomes = await inParallel(user, {}, () => ({
      content: `Write a lot [[stand-in tokens=30000 tag=${tag}]]`,
    }));
    const { answered } = await expectWithinBudget(user, outcomes);
    expect(answered.length).toBeGreaterThan(1);
    // An answer longer than its grant ends as a max_tokens cut would, settled with an estimate.
    expect(answered.some((o) => o.finishReason === "length")).toBe(true);
    const rows = await dbOf(user)
      .prepare("SELECT status, estimated FROM usage_records WHERE user_id = ?")
      .bind(user)
      .all<{ status: string; estimated: number }>();
    expect(rows.results.every((r) => r.status === "completed")).toBe(true);
    expect(rows.results.some((r) => r.estimated === 1)).toBe(true);
  });

  it("one turn at a time under a roomy budget: long answers and long reasoning complete", async () => {
    const user = await addUser(2_000_000);
    const conv = await createConversation(user);
    for (const body of [
      { content: "Write [[stand-in tokens=6000]]" },
      { content: "Think [[stand-in reasoning=6000 tokens=3000]]", parameters: { enable_thinking: true } },
    ]) {
      const { events } = await readSse(await call(user, "POST", `/conversations/${conv.id}/messages`, body));
      expect(endMessage(events.at(-1))).toMatchObject({ status: "completed", finish_reason: "stop" });
    }
  });
});
