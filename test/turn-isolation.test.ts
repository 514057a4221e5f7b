import { expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  newTag,
  newUser,
  standInRequests,
  streamTurn,
} from "./helpers/api";
import { rowsOnAllShards } from "./helpers/shards";

it("another user's conversation and messages are 404 on the turn routes, and nothing is written", async () => {
  const alice = newUser("alice");
  const bob = newUser("bob");
  const conv = await createConversation(alice);
  const { events } = await streamTurn(alice, conv.id, { content: "secret [[stand-in tokens=2]]" });
  const aliceAnswer = endMessage(events.at(-1));

  const tag = newTag();
  await expectError(
    await call(bob, "POST", `/conversations/${conv.id}/messages`, { content: `hi [[stand-in tag=${tag}]]` }),
    404,
    "not_found",
  );
  await expectError(
    await call(bob, "POST", `/conversations/${conv.id}/messages`, { content: "hi", stream: false }),
    404,
    "not_found",
  );
  await expectError(await call(bob, "GET", `/messages/${aliceAnswer.id}`), 404, "not_found");
  expect(await standInRequests(tag)).toHaveLength(0);
  const rows = await rowsOnAllShards<{ user_id: string }>(
    "SELECT user_id FROM messages WHERE conversation_id = ?",
    conv.id,
  );
  expect(rows.map((r) => r.user_id)).toEqual([alice, alice]);

  // The owner sees it.
  const own = await call(alice, "GET", `/messages/${aliceAnswer.id}`);
  expect(own.status).toBe(200);
  expect(await own.json()).toEqual(aliceAnswer);
});

it("unknown and malformed ids are 404", async () => {
  const alice = newUser("alice");
  await expectError(
    await call(alice, "POST", "/conversations/not-an-id/messages", { content: "hi" }),
    404,
    "not_found",
  );
  await expectError(
    await call(alice, "POST", `/conversations/${crypto.randomUUID()}/messages`, { content: "hi" }),
    404,
    "not_found",
  );
  await expectError(await call(alice, "GET", "/messages/nope"), 404, "not_found");
});
