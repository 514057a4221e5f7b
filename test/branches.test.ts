import { expect, it } from "vitest";
import type { Message } from "../src/store/types";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  listMessages,
  newTag,
  newUser,
  readSse,
  standInRequests,
  startedData,
  streamTurn,
} from "./helpers/api";

/** The texts the stand-in received in its one request tagged `tag`, role-prefixed (the system prompt left out unless `system`). */
async function sentUpstream(tag: string, system = false): Promise<string[]> {
  const [request] = await standInRequests(tag);
  return request!.body.messages
    .filter((m) => system || m.role !== "system")
    .map((m) => `${m.role}:${typeof m.content === "string" ? m.content : "…"}`);
}

async function turn(
  userId: string,
  conversationId: string,
  content: string,
  extra: Record<string, unknown> = {},
) {
  const { events } = await streamTurn(userId, conversationId, { content, ...extra });
  expect(events.at(-1)!.event).toBe("message.completed");
  const started = startedData(events[0]);
  return { user: started.user_message, answer: started.assistant_message };
}

const get = async (userId: string, path: string) => {
  const res = await call(userId, "GET", path);
  expect(res.status).toBe(200);
  return res.json();
};

it("an edit starts a branch: the model sees the path to parent_id, the old branch stays", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const first = await turn(alice, conv.id, "one [[stand-in tokens=2]]");
  const second = await turn(alice, conv.id, "two [[stand-in tokens=2]]");

  const tag = newTag();
  const edited = await turn(alice, conv.id, `two, edited [[stand-in tokens=2 tag=${tag}]]`, {
    parent_id: first.answer.id,
  });
  const sent = await sentUpstream(tag);
  expect(sent.map((s) => s.split(":")[0])).toEqual(["user", "assistant", "user"]);
  expect(sent[0]).toContain("one");
  expect(sent[2]).toContain("two, edited");
  expect(sent.join("\n")).not.toContain("two [[");

  // The active path is the new branch; the edit is the second version at its point.
  const path = await listMessages(alice, conv.id);
  expect(path.map((m) => m.id)).toEqual([edited.answer.id, edited.user.id, first.answer.id, first.user.id]);
  expect(path[1]).toMatchObject({ parent_id: first.answer.id, sibling_index: 1, sibling_count: 2 });
  expect(path[0]).toMatchObject({ sibling_index: 0, sibling_count: 1 });
  expect(edited.user).toMatchObject({ sibling_index: 1, sibling_count: 2 });

  // Nothing was deleted: the old branch is its own path, and its user message a sibling.
  const old = (await get(alice, `/conversations/${conv.id}/messages?leaf_id=${second.answer.id}`)) as {
    data: Message[];
  };
  expect(old.data.map((m) => m.id)).toEqual([
    second.answer.id,
    second.user.id,
    first.answer.id,
    first.user.id,
  ]);
  const siblings = (await get(alice, `/messages/${edited.user.id}/siblings`)) as { data: Message[] };
  expect(siblings.data.map((m) => [m.id, m.sibling_index])).toEqual([
    [second.user.id, 0],
    [edited.user.id, 1],
  ]);
  const conversation = (await get(alice, `/conversations/${conv.id}`)) as { active_leaf_id: string };
  expect(conversation.active_leaf_id).toBe(edited.answer.id);
});

it("moving active_leaf_id changes what the next turn sends upstream", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const first = await turn(alice, conv.id, "one [[stand-in tokens=2]]");
  const second = await turn(alice, conv.id, "two [[stand-in tokens=2]]");
  await turn(alice, conv.id, "two, edited [[stand-in tokens=2]]", { parent_id: first.answer.id });

  // Back to the first branch: through its user message, to the newest leaf below it.
  const res = await call(alice, "PATCH", `/conversations/${conv.id}`, { active_leaf_id: second.user.id });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { active_leaf_id: string }).active_leaf_id).toBe(second.answer.id);

  const tag = newTag();
  const third = await turn(alice, conv.id, `three [[stand-in tokens=2 tag=${tag}]]`);
  const sent = await sentUpstream(tag);
  expect(sent.map((s) => s.split(":")[0])).toEqual(["user", "assistant", "user", "assistant", "user"]);
  expect(sent[2]).toContain("two [[");
  expect(third.user.parent_id).toBe(second.answer.id);
});

it("parent_id null edits the first message: the model sees no history", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { system_prompt: "Be brief." });
  const first = await turn(alice, conv.id, "one [[stand-in tokens=2]]");
  await turn(alice, conv.id, "two [[stand-in tokens=2]]");
  const tag = newTag();
  const edited = await turn(alice, conv.id, `one, again [[stand-in tokens=2 tag=${tag}]]`, {
    parent_id: null,
  });
  expect(await sentUpstream(tag, true)).toEqual([
    "system:Be brief.",
    expect.stringContaining("user:one, again"),
  ]);
  expect(edited.user).toMatchObject({ parent_id: null, sibling_index: 1, sibling_count: 2 });
  expect((await listMessages(alice, conv.id)).map((m) => m.id)).toEqual([edited.answer.id, edited.user.id]);
  expect((await get(alice, `/messages/${first.user.id}`)) as Message).toMatchObject({ sibling_count: 2 });
});

it("a parent_id that is not a message of the conversation is a 400 that stores nothing", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const other = await createConversation(alice);
  await turn(alice, conv.id, "one [[stand-in tokens=2]]");
  const elsewhere = await turn(alice, other.id, "elsewhere [[stand-in tokens=2]]");
  const before = await listMessages(alice, conv.id);
  // Another conversation's answer, malformed and unknown ids, and a user message (a user
  // message follows an answer).
  for (const parent_id of [
    elsewhere.answer.id,
    "not-an-id",
    "01a22cac-4d83-713f-a48a-db3131c53f16",
    before.at(-1)!.id,
  ]) {
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "x", parent_id }),
      400,
      "invalid_request",
      "parent_id",
    );
  }
  await expectError(
    await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      role: "tool",
      tool_call_id: "call_1",
      content: "x",
      parent_id: before[0]!.id,
    }),
    400,
    "invalid_request",
    "parent_id",
  );
  expect(await listMessages(alice, conv.id)).toEqual(before);
  // Another user's message as active leaf: 400 for the owner, 404 for the stranger.
  await expectError(
    await call(alice, "PATCH", `/conversations/${conv.id}`, { active_leaf_id: elsewhere.answer.id }),
    400,
    "invalid_request",
    "active_leaf_id",
  );
  await expectError(
    await call(newUser("bob"), "PATCH", `/conversations/${conv.id}`, { active_leaf_id: before[0]!.id }),
    404,
    "not_found",
  );
});

it("regenerate adds a sibling answer, streamed like a turn, retry-safe, and becomes the active leaf", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const first = await turn(alice, conv.id, "one [[stand-in tokens=2]]");
  const tag = newTag();
  const second = await turn(alice, conv.id, `two [[stand-in tokens=3 tag=${tag}]]`);

  const body = { client_message_id: `again-${tag}`, parameters: { temperature: 0.5 } };
  const res = await call(alice, "POST", `/messages/${second.answer.id}/regenerate`, body);
  const { events } = await readSse(res);
  expect(events.at(-1)!.event).toBe("message.completed");
  const started = startedData(events[0]);
  expect(started.user_message.id).toBe(second.user.id);
  const again = started.assistant_message;
  expect(again).toMatchObject({ parent_id: second.user.id, sibling_index: 1, sibling_count: 2 });
  // The model saw the path to the question, not the first answer to it.
  const [, request] = await standInRequests(tag);
  const roles = request!.body.messages.filter((m) => m.role !== "system").map((m) => m.role);
  expect(roles).toEqual(["user", "assistant", "user"]);
  expect(request!.body).toMatchObject({ temperature: 0.5 });

  // A retry is the same regeneration; another body under its id is a conflict.
  const retry = await readSse(await call(alice, "POST", `/messages/${second.answer.id}/regenerate`, body));
  expect(retry.events).toEqual(events);
  expect(await standInRequests(tag)).toHaveLength(2);
  await expectError(
    await call(alice, "POST", `/messages/${second.answer.id}/regenerate`, { ...body, parameters: {} }),
    409,
    "conflict",
    "client_message_id",
  );

  const path = await listMessages(alice, conv.id);
  expect(path.map((m) => m.id)).toEqual([again.id, second.user.id, first.answer.id, first.user.id]);
  const siblings = (await get(alice, `/messages/${again.id}/siblings`)) as { data: Message[] };
  expect(siblings.data.map((m) => m.id)).toEqual([second.answer.id, again.id]);
  // The next turn follows the new answer.
  const next = await turn(alice, conv.id, "three [[stand-in tokens=2]]");
  expect(next.user.parent_id).toBe(again.id);
});

it("regenerate retries a failed answer, and refuses what is not an answer", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const failed = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: "hi [[stand-in error=invalid_parameter fail_times=1]]",
  });
  expect(failed.status).toBe(400);
  const [answer, question] = await listMessages(alice, conv.id);
  expect(answer).toMatchObject({ role: "assistant", status: "failed" });

  // Every field is optional: no body at all.
  const { events } = await readSse(await call(alice, "POST", `/messages/${answer!.id}/regenerate`));
  expect(endMessage(events.at(-1))).toMatchObject({
    status: "completed",
    parent_id: question!.id,
    sibling_count: 2,
  });

  await expectError(
    await call(alice, "POST", `/messages/${question!.id}/regenerate`, {}),
    400,
    "invalid_request",
  );
  await expectError(
    await call(newUser("bob"), "POST", `/messages/${answer!.id}/regenerate`, {}),
    404,
    "not_found",
  );
});
