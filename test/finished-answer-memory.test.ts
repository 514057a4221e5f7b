import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { ConversationGeneration } from "../src/generation/conversation-generation";
import {
  createConversation,
  eventually,
  newUser,
  openTurn,
  readSse,
  resume,
  startedData,
} from "./helpers/api";

it("an idle conversation object holds no event text of its finished answer, which still resumes exactly once", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  const held = () => runInDurableObject(stub, (instance: ConversationGeneration) => instance.heldEventText);

  // 2,000 tokens (deltas of one upstream read share an event): some 200,000 characters of SSE text.
  const reader = await openTurn(alice, conv.id, { content: "long [[stand-in tokens=2000 itl=1]]" });
  const started = (await reader.next())!;
  const first = [started];
  for (let i = 0; i < 50; i++) first.push((await reader.next())!);
  // While the answer is generated its events are held (the accessor measures something real).
  expect(await held()).toBeGreaterThan(50 * 50);
  const all = [...first, ...(await reader.rest())];
  expect(all.at(-1)!.event).toBe("message.completed");
  expect(all.length).toBeGreaterThan(1000);

  // Once the answer has ended, nothing of it stays in memory.
  await eventually(async () => (await held()) === 0);
  expect(await held()).toBe(0);

  // It is replayed from the answer log: every event once, in order, from the start and from the middle.
  const messageId = startedData(started).assistant_message.id;
  const replayed = (await readSse(await resume(alice, messageId))).events;
  expect(replayed.map((e) => Number(e.id))).toEqual(all.map((_, i) => i + 1));
  expect(replayed).toEqual(all);
  expect((await readSse(await resume(alice, messageId, 1000))).events).toEqual(all.slice(1000));
  expect(await held()).toBe(0);
});
