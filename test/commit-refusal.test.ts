import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import {
  call,
  createConversation,
  eventually,
  expectError,
  listMessages,
  newTag,
  newUser,
  type StandInRequest,
  standInRequests,
  streamTurn,
} from "./helpers/api";
import { dbOf } from "./helpers/shards";

/*
 * A turn starts its upstream call at once and commits to D1 concurrently; a commit that refuses
 * must take the call back before a byte of it is relayed, store nothing and bill nothing.
 */

const setBudget = (userId: string, tokens: number | null) =>
  exports.default.fetch(`http://localhost/admin/v1/users/${userId}/budget`, {
    method: "PUT",
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ daily_token_budget: tokens }),
  });

const ledger = async (userId: string) =>
  (await dbOf(userId).prepare("SELECT id FROM usage_records WHERE user_id = ?").bind(userId).all()).results;

/** The stand-in saw the tagged calls end without sending a token (or never saw them). */
async function expectAbandoned(tag: string): Promise<StandInRequest[]> {
  return eventually(async () => {
    const requests = await standInRequests(tag);
    if (requests.some((r) => r.outcome === null)) return null; // still being answered
    for (const r of requests) {
      expect(r.outcome).toBe("client_closed");
      expect(r.tokens_sent).toBe(0);
    }
    return requests.length === 0 ? [] : requests;
  });
}

it("a quota refusal aborts the call; while it is remembered DashScope is not called; a raised budget counts at once", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  expect((await setBudget(alice, 5)).status).toBe(200);

  const first = newTag();
  await expectError(
    await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `hello [[stand-in ttft=300 tag=${first}]]`,
    }),
    429,
    "quota_exceeded",
  );
  await expectAbandoned(first);

  // Remembered: the next send commits first, and is refused before any call.
  const second = newTag();
  await expectError(
    await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `hello again [[stand-in tag=${second}]]`,
    }),
    429,
    "quota_exceeded",
  );
  expect(await standInRequests(second)).toEqual([]);
  expect(await listMessages(alice, conv.id)).toEqual([]);
  expect(await ledger(alice)).toEqual([]);

  // The memo never outlives the budget it was refused under.
  expect((await setBudget(alice, 100_000)).status).toBe(200);
  const third = newTag();
  const { events } = await streamTurn(alice, conv.id, { content: `now [[stand-in tokens=3 tag=${third}]]` });
  expect(events.at(-1)!.event).toBe("message.completed");
  expect(await standInRequests(third)).toHaveLength(1);
});

it("a conversation deleted behind its object's back: 404, the call aborted, nothing stored", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  await streamTurn(alice, conv.id, { content: "first [[stand-in tokens=3]]" });
  await dbOf(alice).prepare("DELETE FROM conversations WHERE id = ?").bind(conv.id).run();

  const tag = newTag();
  await expectError(
    await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `hello [[stand-in ttft=300 tag=${tag}]]`,
    }),
    404,
    "not_found",
  );
  await expectAbandoned(tag);
  const { results } = await dbOf(alice)
    .prepare("SELECT id FROM messages WHERE conversation_id = ?")
    .bind(conv.id)
    .all();
  expect(results).toEqual([]);
});

it("a stale prompt state: the call built from it is abandoned, and the turn is built again from D1", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { system_prompt: "You are the old prompt." });
  await streamTurn(alice, conv.id, { content: "first [[stand-in tokens=3]]" });
  // A change made without the conversation's object (a script, a restore): the version moves.
  await dbOf(alice)
    .prepare("UPDATE conversations SET system_prompt = ? WHERE id = ?")
    .bind("You are the new prompt.", conv.id)
    .run();

  const tag = newTag();
  const { events } = await streamTurn(alice, conv.id, {
    content: `second [[stand-in echo ttft=200 tag=${tag}]]`,
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const deltas = events.filter((e) => e.event === "message.delta");
  const answer = deltas.map((e) => (e.data as { content?: string }).content ?? "").join("");
  expect(answer).toContain("You are the new prompt.");
  expect(answer).not.toContain("You are the old prompt.");

  // The call built from the stale state may have been taken back before it reached DashScope.
  const requests = await eventually(async () => {
    const r = await standInRequests(tag);
    return r.some((x) => x.outcome === "completed") && r.every((x) => x.outcome !== null) ? r : null;
  });
  const fresh = requests.filter((r) => r.outcome === "completed");
  expect(fresh).toHaveLength(1);
  expect(fresh[0]!.body.messages[0]).toMatchObject({ role: "system", content: "You are the new prompt." });
  for (const stale of requests.filter((r) => r.outcome !== "completed")) {
    expect(stale.body.messages[0]).toMatchObject({ role: "system", content: "You are the old prompt." });
    expect(stale.outcome).toBe("client_closed");
    expect(stale.tokens_sent).toBe(0);
  }
  // One user message and one answer per turn: the abandoned commit wrote nothing.
  expect(await listMessages(alice, conv.id)).toHaveLength(4);
});
