import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { ConversationGeneration } from "../src/generation/conversation-generation";
import { createConversation, eventually, newUser, streamTurn } from "./helpers/api";

type Metrics = ConversationGeneration["metrics"];

function metricsOf(conversationId: string): Promise<Metrics> {
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));
  return eventually(() =>
    runInDurableObject(stub, (instance: ConversationGeneration) =>
      instance.metrics.lastTurn.afterStream > 0 ? structuredClone(instance.metrics) : null,
    ),
  );
}

it("a turn waits for no D1 round trip before its upstream call: it commits concurrently, and stores the answer in one", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  // Some history first, so the turn really builds on it.
  await streamTurn(alice, conv.id, { content: "first [[stand-in tokens=3]]" });
  const { events } = await streamTurn(alice, conv.id, { content: "second [[stand-in tokens=3]]" });
  expect(events.at(-1)!.event).toBe("message.completed");

  const metrics = await metricsOf(conv.id);
  expect(metrics.lastTurn).toEqual({ beforeUpstream: 0, concurrent: 1, afterStream: 1 });
  // Creating the conversation (through its object) and two turns of two round trips each: the
  // object never read its prompt state from D1.
  expect(metrics.d1RoundTrips).toBe(5);
});

it("an object without prompt state reads it from D1 once, then keeps it", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  await streamTurn(alice, conv.id, { content: "first [[stand-in tokens=3]]" });
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  // As after storage written before the prompt state existed, or dropped as stale.
  await runInDurableObject(stub, (_instance, state) => {
    state.storage.sql.exec("DELETE FROM prompt_conversation");
    state.storage.sql.exec("DELETE FROM prompt_messages");
  });

  await streamTurn(alice, conv.id, { content: "second [[stand-in tokens=3]]" });
  expect((await metricsOf(conv.id)).lastTurn).toEqual({ beforeUpstream: 1, concurrent: 1, afterStream: 1 });

  await streamTurn(alice, conv.id, { content: "third [[stand-in tokens=3]]" });
  expect((await metricsOf(conv.id)).lastTurn).toEqual({ beforeUpstream: 0, concurrent: 1, afterStream: 1 });
});
