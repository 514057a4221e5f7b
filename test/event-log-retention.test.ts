import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { AnswerLog } from "../src/generation/answer-log";
import { call, createConversation, newUser, readSse, resume, startedData } from "./helpers/api";

it("after the retention period an answer's events are collected; a late resume still gets its terminal event", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const { events } = await readSse(
    await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "hi [[stand-in tokens=4]]" }),
  );
  const messageId = startedData(events[0]).assistant_message.id;
  await readSse(
    await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "next [[stand-in tokens=1]]",
    }),
  );

  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  const left = await runInDurableObject(stub, (_instance, state) => {
    const log = new AnswerLog(state.storage, (err) => {
      throw err;
    });
    // As if a day had passed: everything finished before "now + 1 ms" is past retention.
    log.collect(Date.now() + 1, 86_400_000);
    return log.events(messageId, 0).length;
  });
  expect(left).toBe(0);

  const late = (await readSse(await resume(alice, messageId, 2))).events;
  // The same event, its d1_bookmark that of the read that rebuilt it (at least as new).
  const original = events.at(-1)!;
  expect(late).toEqual([{ ...original, data: { ...original.data, d1_bookmark: expect.any(String) } }]);
  const bookmarkOf = (event: (typeof late)[number]) => (event.data as { d1_bookmark?: string }).d1_bookmark!;
  expect(bookmarkOf(late[0]!) >= bookmarkOf(original)).toBe(true);
  // Tagged with the user's shard, as every bookmark handed out (store/sessions.ts `tagBookmark`).
  expect(bookmarkOf(late[0]!)).toMatch(/^[0-9]{4}~[0-9a-f-]{59}$/);
  expect((await readSse(await resume(alice, messageId, events.length))).events).toEqual([]);
});
