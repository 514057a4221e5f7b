import { expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  newTag,
  newUser,
  openTurn,
  resume,
  SseReader,
  standInRequests,
  startedData,
} from "./helpers/api";
import type { UsageRecordRow } from "./helpers/db-rows";
import { dbOf, rowsOnAllShards } from "./helpers/shards";

const ledger = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT * FROM usage_records WHERE user_id = ?")
      .bind(userId)
      .all<UsageRecordRow>()
  ).results;

it("deleting a conversation mid-answer stops the answer, bills what was generated and ends every stream", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const phone = await openTurn(alice, conv.id, { content: `long [[stand-in tokens=400 itl=10 tag=${tag}]]` });
  const messageId = startedData(await phone.next()).assistant_message.id;
  const tablet = new SseReader(await resume(alice, messageId));
  for (let i = 0; i < 3; i++) await phone.next();

  // Another user's delete at the same id changes nothing.
  await expectError(await call(newUser("bob"), "DELETE", `/conversations/${conv.id}`), 404, "not_found");

  expect((await call(alice, "DELETE", `/conversations/${conv.id}`)).status).toBe(204);

  for (const reader of [phone, tablet]) {
    const rest = await reader.rest();
    const last = rest.at(-1)!;
    expect(last.event).toBe("message.failed");
    expect(rest.filter((e) => e.event === "message.completed")).toEqual([]);
    const ended = endMessage(last);
    expect(ended.id).toBe(messageId);
    expect(ended.status).toBe("cancelled");
    expect(ended.error).toMatchObject({ code: "conversation_deleted" });
  }
  await eventually(async () => ((await standInRequests(tag))[0]?.outcome === "client_closed" ? true : null));
  const [upstream] = await standInRequests(tag);
  expect(upstream!.tokens_sent).toBeLessThan(400);

  // Exactly one ledger record, for what was generated (an estimate: no usage chunk came).
  const records = await ledger(alice);
  expect(records).toHaveLength(1);
  expect(records[0]).toMatchObject({
    id: messageId,
    conversation_id: conv.id,
    status: "cancelled",
    estimated: 1,
  });
  expect(records[0]!.completion_tokens).toBeGreaterThan(0);
  expect(records[0]!.completion_tokens).toBeLessThan(400);

  // Nothing was resurrected.
  await expectError(await call(alice, "GET", `/conversations/${conv.id}`), 404, "not_found");
  await expectError(await call(alice, "GET", `/messages/${messageId}`), 404, "not_found");
  await expectError(await resume(alice, messageId), 404, "not_found");
  const rows = await rowsOnAllShards("SELECT id FROM messages WHERE conversation_id = ?", conv.id);
  expect(rows).toHaveLength(0);
});

it("a conversation deleted after its answer ended is deleted as before, its answer's events with it", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const phone = await openTurn(alice, conv.id, { content: "short [[stand-in tokens=3]]" });
  const messageId = startedData(await phone.next()).assistant_message.id;
  expect((await phone.rest()).at(-1)!.event).toBe("message.completed");
  expect((await call(alice, "DELETE", `/conversations/${conv.id}`)).status).toBe(204);
  await expectError(await resume(alice, messageId), 404, "not_found");
  await expectError(await call(alice, "DELETE", `/conversations/${conv.id}`), 404, "not_found");
  const [record] = await ledger(alice);
  expect(record).toMatchObject({ id: messageId, status: "completed" });
});
