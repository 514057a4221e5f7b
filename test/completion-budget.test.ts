import { describe, expect, it } from "vitest";
import { MIN_REPLY_TOKENS } from "../src/chat/usage";
import { call, eventually, newTag, newUser, standInRequests } from "./helpers/api";
import type { OpenAiErrorBody, UsageReport } from "./helpers/api-types";
import { dbOf } from "./helpers/shards";

/**
 * Issue 12 fault 4 on `POST /v1/chat/completions`: parallel calls of one user against a small
 * daily budget. Each call reserves its prompt plus its whole reply bounds (the model's maximum
 * output and chain of thought when the call sets no limit), or what remains of the budget, so
 * the day's settled usage stays within the budget plus one call's reservation.
 */

const BUDGET = 50_000;
const PARALLEL = 20;
/** qwen-plus's maximum output (src/chat/models.ts), its answer bound without `max_tokens`. */
const QWEN_PLUS_MAX_OUTPUT = 32_768;
/** The default chain-of-thought bound (DEFAULT_MAX_REASONING_TOKENS). */
const DEFAULT_MAX_REASONING = 81_920;
/** The most estimated tokens of one stand-in delta (one word from its vocabulary). */
const ONE_DELTA = 8;

const addUser = async (budget: number) => {
  const user = newUser("budget");
  await dbOf(user)
    .prepare("INSERT INTO users (id, created_at, daily_token_budget) VALUES (?, ?, ?)")
    .bind(user, Date.now(), budget)
    .run();
  return user;
};

const reservations = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT COUNT(*) AS n FROM quota_reservations WHERE user_id = ?")
      .bind(userId)
      .first<{ n: number }>()
  )?.n ?? 0;

/** The day's settled usage, once every call's settlement (written after its response) has landed. */
async function settled(userId: string): Promise<UsageReport> {
  await eventually(async () => (await reservations(userId)) === 0);
  const res = await call(userId, "GET", "/usage");
  expect(res.status).toBe(200);
  return (await res.json()) as UsageReport;
}

/** The `data:` payloads of an SSE body. */
const dataFrames = (text: string) =>
  text
    .split(/\n\n/)
    .flatMap((block) => block.split("\n"))
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trim());

interface Outcome {
  status: number;
  /** The streamed chunks' finish reasons, and whether the stream ended with `[DONE]`. */
  finishReasons: string[];
  done: boolean;
  errorCode: string | null;
}

/** Sends `PARALLEL` copies of `body` at once and reads every answer to its end. */
async function inParallel(user: string, body: () => Record<string, unknown>): Promise<Outcome[]> {
  const responses = await Promise.all(
    Array.from({ length: PARALLEL }, () => call(user, "POST", "/chat/completions", body())),
  );
  return Promise.all(
    responses.map(async (res): Promise<Outcome> => {
      if (res.status !== 200) {
        const error = ((await res.json()) as OpenAiErrorBody).error;
        return { status: res.status, finishReasons: [], done: false, errorCode: error.code };
      }
      const frames = dataFrames(await res.text());
      const chunks = frames.filter((f) => f !== "[DONE]").map((f) => JSON.parse(f));
      return {
        status: 200,
        finishReasons: chunks.flatMap((c) =>
          (c.choices ?? []).flatMap((ch: { finish_reason?: string | null }) =>
            ch.finish_reason ? [ch.finish_reason] : [],
          ),
        ),
        done: frames.at(-1) === "[DONE]",
        errorCode: chunks.find((c) => c.error)?.error.code ?? null,
      };
    }),
  );
}

/** Checks what every parallel case must show, and returns the settled total. */
async function expectWithinBudget(user: string, outcomes: Outcome[], oneReservation: number) {
  const answered = outcomes.filter((o) => o.status === 200);
  const refused = outcomes.filter((o) => o.status !== 200);
  for (const o of refused) {
    expect(o.status).toBe(429);
    expect(o.errorCode).toBe("quota_exceeded");
  }
  for (const o of answered) {
    expect(o.errorCode).toBeNull();
    expect(o.done).toBe(true);
  }
  const report = await settled(user);
  // Every call that started is settled, once.
  expect(report.totals.requests).toBe(answered.length);
  expect(report.totals.total_tokens).toBeLessThanOrEqual(BUDGET + oneReservation);
  return { answered, refused, total: report.totals.total_tokens };
}

const longSystemMessage = () => "All work and no play makes a dull model. ".repeat(2_440).slice(0, 100_000);

describe("a daily budget under parallel /v1/chat/completions calls", () => {
  it("holds with a 100,000-character system message in each call", async () => {
    const user = await addUser(BUDGET);
    const tag = newTag();
    const outcomes = await inParallel(user, () => ({
      model: "qwen-plus",
      stream: true,
      messages: [
        { role: "system", content: longSystemMessage() },
        { role: "user", content: `Hi [[stand-in tokens=20 tag=${tag}]]` },
      ],
    }));
    // About 25,000 prompt tokens: the first call's grant is all that remains, and no other call
    // finds its prompt plus MIN_REPLY_TOKENS left.
    const prompt = 25_000 + 20;
    const { answered, refused } = await expectWithinBudget(user, outcomes, prompt + QWEN_PLUS_MAX_OUTPUT);
    expect(answered.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(answered.every((o) => o.finishReasons.every((r) => r === "stop"))).toBe(true);
    expect(await standInRequests(tag)).toHaveLength(answered.length);
  });

  it("holds with enable_thinking and no thinking_budget, telling DashScope the granted reasoning room", async () => {
    const user = await addUser(BUDGET);
    const tag = newTag();
    const outcomes = await inParallel(user, () => ({
      model: "qwen-plus",
      stream: true,
      stream_options: { include_usage: true },
      enable_thinking: true,
      messages: [{ role: "user", content: `Think [[stand-in reasoning=20000 tokens=20 tag=${tag}]]` }],
    }));
    const { answered, total } = await expectWithinBudget(
      user,
      outcomes,
      QWEN_PLUS_MAX_OUTPUT + DEFAULT_MAX_REASONING,
    );
    expect(answered.length).toBeGreaterThan(0);
    // Before, each call held only 2 × 8,192 tokens while thinking 20,000: three fit and settled
    // 60,000 and more. Now the grants never add up to more than the budget.
    expect(total).toBeLessThanOrEqual(BUDGET);
    const sent = await standInRequests(tag);
    expect(sent).toHaveLength(answered.length);
    for (const request of sent) {
      // Every grant here is partial (the worst case is ~114,700 tokens): DashScope is told both
      // shares, which together stay within what was granted.
      const body = request.body as { max_tokens?: number; thinking_budget?: number };
      expect(body.thinking_budget).toBeGreaterThan(0);
      expect(body.max_tokens).toBeGreaterThan(0);
      expect(body.thinking_budget! + body.max_tokens!).toBeLessThanOrEqual(BUDGET);
    }
  });

  it("holds with a 200 KB tool definition: a prompt the budget cannot hold is never sent", async () => {
    const user = await addUser(BUDGET);
    const tag = newTag();
    const tool = {
      type: "function",
      function: {
        name: "lookup",
        description: "Looks things up. ".repeat(12_000).slice(0, 200_000),
        parameters: { type: "object", properties: { q: { type: "string" } } },
      },
    };
    const outcomes = await inParallel(user, () => ({
      model: "qwen-plus",
      stream: true,
      tools: [tool],
      messages: [{ role: "user", content: `Look it up [[stand-in tokens=5 tag=${tag}]]` }],
    }));
    // 50,000 prompt tokens of definitions alone: no call finds its prompt plus MIN_REPLY_TOKENS.
    await expectWithinBudget(user, outcomes, 0);
    expect(outcomes.every((o) => o.status === 429)).toBe(true);
    expect(await standInRequests(tag)).toEqual([]);
  });

  it("holds with long answers and no max_tokens, cutting them like max_tokens", async () => {
    const user = await addUser(BUDGET);
    const tag = newTag();
    const outcomes = await inParallel(user, () => ({
      model: "qwen-plus",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: `Write a lot [[stand-in tokens=30000 tag=${tag}]]` }],
    }));
    const { answered, total } = await expectWithinBudget(user, outcomes, QWEN_PLUS_MAX_OUTPUT + 100);
    expect(answered.length).toBeGreaterThan(0);
    // Before: 8,192 tokens held per call, 30,000 generated by each of six calls. Now the grants
    // add up to the budget at most, and a cut passes its grant by the one delta (a word of at
    // most a few tokens) that reached it.
    expect(total).toBeLessThanOrEqual(BUDGET + answered.length * ONE_DELTA);
    // Answers longer than their grant end as a max_tokens cut would, with [DONE], and are
    // settled with an estimate marked as one (DashScope's usage chunk never came).
    for (const o of answered) expect(o.finishReasons).toEqual(["length"]);
    const rows = await dbOf(user)
      .prepare("SELECT status, estimated FROM usage_records WHERE user_id = ?")
      .bind(user)
      .all<{ status: string; estimated: number }>();
    expect(rows.results).toEqual(answered.map(() => ({ status: "completed", estimated: 1 })));
    for (const request of await standInRequests(tag)) {
      // A full grant leaves qwen-plus its own default (its maximum output); a partial one is sent.
      const maxTokens = (request.body as { max_tokens?: number }).max_tokens;
      if (maxTokens !== undefined) expect(maxTokens).toBeLessThan(QWEN_PLUS_MAX_OUTPUT);
    }
  });

  it("one call at a time under a roomy budget, long answers and long reasoning complete", async () => {
    const user = await addUser(2_000_000);
    for (const extra of [
      { content: "Write [[stand-in tokens=6000]]", params: {} },
      { content: "Think [[stand-in reasoning=6000 tokens=3000]]", params: { enable_thinking: true } },
    ]) {
      const res = await call(user, "POST", "/chat/completions", {
        model: "qwen-plus",
        stream: true,
        stream_options: { include_usage: true },
        ...extra.params,
        messages: [{ role: "user", content: `${extra.content} ${newTag()}` }],
      });
      expect(res.status).toBe(200);
      const frames = dataFrames(await res.text());
      expect(frames.at(-1)).toBe("[DONE]");
      const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
      const finish = chunks.flatMap((c) =>
        c.choices.map((ch: { finish_reason: string | null }) => ch.finish_reason),
      );
      expect(finish.filter(Boolean)).toEqual(["stop"]);
      const usage = chunks.at(-1).usage;
      expect(usage.estimated).toBeUndefined();
      expect(usage.completion_tokens).toBeGreaterThanOrEqual(6_000);
    }
    const report = await settled(user);
    expect(report.totals.requests).toBe(2);
  });

  it("refuses a call whose prompt leaves less than MIN_REPLY_TOKENS, and grants one that leaves more", async () => {
    const user = await addUser(2_000);
    // ~1,000 prompt tokens: 2,000 − 1,000 leaves room for the minimum reply, not for 32,768.
    const text = "x".repeat(4_000);
    const tag = newTag();
    const res = await call(user, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: `${text} [[stand-in tokens=5 tag=${tag}]]` }],
    });
    expect(res.status).toBe(200);
    const [sent] = await standInRequests(tag);
    const maxTokens = (sent!.body as { max_tokens?: number }).max_tokens!;
    expect(maxTokens).toBeGreaterThanOrEqual(MIN_REPLY_TOKENS);
    expect(maxTokens).toBeLessThan(1_000);
    await settled(user);
    // What remains now (2,000 − ~1,020 settled) cannot hold another such prompt and its minimum.
    const refused = await call(user, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: `${text} [[stand-in tokens=5 tag=${newTag()}]]` }],
    });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as OpenAiErrorBody).error.code).toBe("quota_exceeded");
  });

  it("bounds a thinking-only model DashScope cannot be told about, also when not streamed", async () => {
    // qwq-plus takes no thinking_budget and its maximum output is not in the table: only the
    // count of what streams in bounds it. Non-streamed, it is streamed upstream and assembled.
    const user = await addUser(3_000);
    const tag = newTag();
    const res = await call(user, "POST", "/chat/completions", {
      model: "qwq-plus",
      messages: [
        { role: "user", content: `Think long [[stand-in reasoning=5000 itl=1 tokens=5 tag=${tag}]]` },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: { finish_reason: string; message: { content: string } }[];
      usage: { total_tokens: number; estimated?: boolean };
    };
    expect(body.choices.map((c) => c.finish_reason)).toEqual(["length"]);
    expect(body.usage.estimated).toBe(true);
    const [sent] = await standInRequests(tag);
    expect(sent!.body).not.toHaveProperty("thinking_budget");
    expect(sent!.body).not.toHaveProperty("max_tokens");
    // The upstream was cancelled at the cut, not read to its end.
    const ended = await eventually(async () => {
      const [entry] = await standInRequests(tag);
      return entry?.ended_at ? entry : null;
    });
    expect(ended.outcome).toBe("client_closed");
    expect(ended.tokens_sent).toBeLessThan(5_000);
    const report = await settled(user);
    expect(report.totals.total_tokens).toBeLessThanOrEqual(3_000 + ONE_DELTA);
    expect(report.totals.total_tokens).toBe(body.usage.total_tokens);
  });

  it("streams upstream a non-streamed call whose partial grant a model of unknown maximum output cannot be told", async () => {
    // qwen-turbo's maximum output is not in the table: a lowered max_tokens could be above it
    // (a 400), so the call is streamed upstream, counted, and answered as one JSON body.
    const user = await addUser(3_000);
    const tag = newTag();
    const res = await call(user, "POST", "/chat/completions", {
      model: "qwen-turbo",
      messages: [{ role: "user", content: `Write a lot [[stand-in tokens=5000 itl=1 tag=${tag}]]` }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      object: string;
      choices: { finish_reason: string; message: { content: string } }[];
      usage: { total_tokens: number; estimated?: boolean };
    };
    expect(body.object).toBe("chat.completion");
    expect(body.choices.map((c) => c.finish_reason)).toEqual(["length"]);
    expect(body.choices[0]!.message.content.length).toBeGreaterThan(0);
    expect(body.usage.estimated).toBe(true);
    const [sent] = await standInRequests(tag);
    expect(sent!.stream).toBe(true);
    expect(sent!.body).not.toHaveProperty("max_tokens");
    // The upstream was cancelled at the cut, not read to its end.
    const ended = await eventually(async () => {
      const [entry] = await standInRequests(tag);
      return entry?.ended_at ? entry : null;
    });
    expect(ended.outcome).toBe("client_closed");
    expect(ended.tokens_sent).toBeLessThan(5_000);
    const report = await settled(user);
    expect(report.totals.total_tokens).toBeLessThanOrEqual(3_000 + ONE_DELTA);
  });
});
