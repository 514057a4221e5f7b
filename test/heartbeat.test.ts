import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { HEARTBEAT_INTERVAL_MS } from "../src/generation/conversation-generation";
import { createConversation, endMessage, newUser, openTurn } from "./helpers/api";

const alarmOf = (conversationId: string) =>
  runInDurableObject(
    env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId)),
    (_i, state) => state.storage.getAlarm(),
  );

it("keeps a heartbeat alarm while an answer is in flight, and a firing heartbeat does not end it", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const reader = await openTurn(alice, conv.id, { content: "long [[stand-in tokens=60 itl=20]]" });
  await reader.next();
  const scheduled = await alarmOf(conv.id);
  expect(scheduled).not.toBeNull();
  expect(scheduled! - Date.now()).toBeLessThanOrEqual(HEARTBEAT_INTERVAL_MS);

  // The heartbeat fires mid-answer (as it would every 30 s): it reschedules itself, the answer goes on.
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  const next = await alarmOf(conv.id);
  expect(next).not.toBeNull();
  expect(next!).toBeGreaterThan(Date.now());
  const rest = await reader.rest();
  expect(rest.at(-1)!.event).toBe("message.completed");
  expect(endMessage(rest.at(-1)).usage!.completion_tokens).toBe(60);
});
