import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, inject, it, type MockInstance, vi } from "vitest";
import { sanitizeTitle } from "../src/generation/conversation-title";
import type { Conversation } from "../src/store/types";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  newTag,
  newUser,
  openTurn,
  type StandInRequest,
  standInRequests,
  startedData,
  streamTurn,
} from "./helpers/api";
import type { ReservationRow, UsageRecordRow } from "./helpers/db-rows";
import { dbOf } from "./helpers/shards";

/*
 * The title call quotes the conversation's first exchange in its one user message, so the
 * stand-in directives written in the user's first message reach it too (the stand-in reads them
 * from the last user message of a request). These tests use that on purpose: `tag=` finds the
 * title request in the stand-in's log, `ttft=` slows it down, `thinking` makes it fail.
 */

const titleModel = env.TITLE_MODEL;

let log: MockInstance<typeof console.log>;
beforeEach(() => {
  log = vi.spyOn(console, "log");
});
afterEach(() => vi.restoreAllMocks());

/** Resolves with the outcome of the conversation's title job, once its `title.finished` line was logged. */
function titleOutcome(conversationId: string, nth = 1): Promise<string> {
  return eventually(async () => {
    const outcomes = log.mock.calls
      .map((args) => {
        try {
          return JSON.parse(String(args[0])) as Record<string, unknown>;
        } catch {
          return null;
        }
      })
      .filter((l) => l?.event === "title.finished" && l.conversation_id === conversationId)
      .map((l) => String(l!.outcome));
    return outcomes[nth - 1];
  });
}

const getConversation = async (userId: string, id: string) => {
  const res = await call(userId, "GET", `/conversations/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Conversation;
};

const titleRequests = async (tag: string) =>
  (await standInRequests(tag)).filter((r) => r.model === titleModel);
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

async function completedTurn(userId: string, conversationId: string, body: Record<string, unknown>) {
  const { events } = await streamTurn(userId, conversationId, body);
  expect(events.at(-1)!.event).toBe("message.completed");
  return endMessage(events.at(-1));
}

/** The stand-in's answer to a logged request, asked again (its answers are a pure function of the body). */
async function standInAnswer(request: StandInRequest) {
  const res = await fetch(`${inject("standInBaseUrl")}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${inject("standInApiKey")}`, "content-type": "application/json" },
    body: JSON.stringify(request.body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    choices: { message: { content: string } }[];
    usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  };
}

describe("generated titles", () => {
  it("an untitled conversation gets a title from its first exchange by TITLE_MODEL, billed to the user's ledger", async () => {
    expect(titleModel).toBeTruthy();
    const alice = newUser("title");
    const tag = newTag();
    const conv = await createConversation(alice);
    expect(conv.title).toBeNull();
    const answer = await completedTurn(alice, conv.id, {
      content: `Plan a weekend in Kyoto [[stand-in tokens=5 tag=${tag}]]`,
    });

    const titled = await eventually(async () => (await getConversation(alice, conv.id)).title);
    expect(await titleOutcome(conv.id)).toBe("titled");

    // One title request, made after the answer had ended, non-streamed, bounded, quoting the exchange.
    const [first, title, ...more] = await standInRequests(tag);
    expect(more).toEqual([]);
    expect(first!.model).not.toBe(titleModel);
    expect(title!.model).toBe(titleModel);
    expect(title!.started_at).toBeGreaterThanOrEqual(first!.ended_at!);
    expect(title!.stream).toBe(false);
    expect(title!.body.max_tokens).toBe(32);
    const [system, quoted, ...rest] = title!.body.messages;
    expect(rest).toEqual([]);
    expect(system!.role).toBe("system");
    expect(String(system!.content)).toMatch(/title/);
    expect(quoted!.role).toBe("user");
    expect(quoted!.content).toBe(
      `User: Plan a weekend in Kyoto [[stand-in tokens=5 tag=${tag}]]\n\nAssistant: ${answer.content as string}`,
    );

    // The title is the stand-in's answer to that request, as one short line (asked again below:
    // one more request in its log).
    const reply = await standInAnswer(title!);
    expect(titled).toBe(sanitizeTitle(reply.choices[0]!.message.content));
    expect(titled).not.toMatch(/\n/);
    expect(titled.length).toBeLessThanOrEqual(80);

    // The title call's usage is in the user's ledger, with the conversation, and nothing stays reserved.
    const titleRecords = (await records(alice)).filter((r) => r.model === titleModel);
    expect(titleRecords).toEqual([
      expect.objectContaining({
        conversation_id: conv.id,
        status: "completed",
        prompt_tokens: reply.usage.prompt_tokens,
        completion_tokens: reply.usage.completion_tokens,
        total_tokens: reply.usage.total_tokens,
        estimated: 0,
      }),
    ]);
    // qwen-flash: 0.05 USD per 1M input tokens, 0.4 per 1M output tokens.
    expect(titleRecords[0]!.cost_usd).toBeCloseTo(
      (reply.usage.prompt_tokens * 0.05 + reply.usage.completion_tokens * 0.4) / 1e6,
      12,
    );
    expect(await reservations(alice)).toEqual([]);
    const usage = (await (await call(alice, "GET", "/usage")).json()) as { data: { model: string }[] };
    expect(usage.data.map((d) => d.model).sort()).toEqual([titleModel, answer.model].sort());

    // The next answer is not the first: no second title call.
    const asked = (await titleRequests(tag)).length;
    await completedTurn(alice, conv.id, { content: `And in Osaka? [[stand-in tokens=2 tag=${tag}]]` });
    expect(await titleRequests(tag)).toHaveLength(asked);
    expect((await getConversation(alice, conv.id)).title).toBe(titled);
  });

  it("a title set at creation is never replaced, and no title call is made", async () => {
    const bob = newUser("title");
    const tag = newTag();
    const conv = await createConversation(bob, { title: "My own title" });
    await completedTurn(bob, conv.id, { content: `hello [[stand-in tokens=3 tag=${tag}]]` });
    expect(await titleOutcome(conv.id)).toBe("settled");
    expect(await titleRequests(tag)).toEqual([]);
    expect((await getConversation(bob, conv.id)).title).toBe("My own title");
    expect((await records(bob)).map((r) => r.model)).not.toContain(titleModel);
  });

  it("a title set by PATCH while the title call runs is kept; the call is still billed", async () => {
    const carol = newUser("title");
    const tag = newTag();
    const conv = await createConversation(carol);
    // `ttft=` delays the answer and the title call alike: the PATCH lands inside the title call.
    await completedTurn(carol, conv.id, { content: `hello [[stand-in tokens=3 ttft=1500 tag=${tag}]]` });
    const running = await eventually(async () => {
      const [request] = await titleRequests(tag);
      return request && request.outcome === null ? request : null;
    });
    const patched = await call(carol, "PATCH", `/conversations/${conv.id}`, { title: "Chosen by me" });
    expect(patched.status).toBe(200);
    expect(await titleOutcome(conv.id)).toBe("kept");
    const [request] = await titleRequests(tag);
    expect(request).toMatchObject({ seq: running.seq, outcome: "completed", status: 200 });
    expect((await getConversation(carol, conv.id)).title).toBe("Chosen by me");
    expect((await records(carol)).filter((r) => r.model === titleModel)).toEqual([
      expect.objectContaining({ conversation_id: conv.id, status: "completed" }),
    ]);
    expect(await reservations(carol)).toEqual([]);
  });

  it("a failed title call leaves the title null and is not retried, on the next turn nor on an edit", async () => {
    const dave = newUser("title");
    const tag = newTag();
    const conv = await createConversation(dave);
    // `thinking` makes the stand-in think on every request carrying it: the answer (streamed)
    // completes, the title call (non-streamed) is refused with 400, as DashScope refuses a
    // non-streamed call that thinks.
    await completedTurn(dave, conv.id, { content: `hello [[stand-in thinking tokens=3 tag=${tag}]]` });
    expect(await titleOutcome(conv.id)).toBe("failed");
    const [failed, ...others] = await titleRequests(tag);
    expect(others).toEqual([]);
    expect(failed).toMatchObject({ status: 400, outcome: "error" });
    expect(await reservations(dave)).toEqual([]);
    expect((await records(dave)).map((r) => r.model)).not.toContain(titleModel);

    const next = await completedTurn(dave, conv.id, { content: `again [[stand-in tokens=2 tag=${tag}]]` });
    // An edit of the first message: its answer is the first completed one of its path, and the
    // attempt recorded in D1 is what stops a second call.
    await completedTurn(dave, conv.id, {
      content: `hello, edited [[stand-in tokens=2 tag=${tag}]]`,
      parent_id: null,
    });
    expect(await titleOutcome(conv.id, 2)).toBe("settled");
    expect(await titleRequests(tag)).toHaveLength(1);
    expect((await getConversation(dave, conv.id)).title).toBeNull();
    expect(next.status).toBe("completed");
  });

  it("a user over budget gets no title, and the answer is unaffected", async () => {
    const erin = newUser("title");
    const tag = newTag();
    const conv = await createConversation(erin);
    // The answer is granted its reservation; while it streams (3 tokens, 300 ms apart) the user's
    // budget drops to 10 tokens, which the answer's own usage exceeds: the title call is refused.
    const reader = await openTurn(erin, conv.id, {
      content: `hi [[stand-in tokens=3 itl=300 tag=${tag}]]`,
    });
    expect(startedData(await reader.next()).assistant_message.status).toBe("streaming");
    await dbOf(erin).prepare("UPDATE users SET daily_token_budget = 10 WHERE id = ?").bind(erin).run();
    const events = await reader.rest();
    const answer = endMessage(events.at(-1));
    expect(answer).toMatchObject({ status: "completed", finish_reason: "stop" });
    expect(answer.usage!.completion_tokens).toBe(3);
    expect(answer.usage!.total_tokens).toBeGreaterThan(10);

    expect(await titleOutcome(conv.id)).toBe("over_budget");
    expect(await titleRequests(tag)).toEqual([]);
    expect((await getConversation(erin, conv.id)).title).toBeNull();
    expect((await records(erin)).map((r) => r.model)).toEqual([answer.model]);
    expect(await reservations(erin)).toEqual([]);
  });
});
