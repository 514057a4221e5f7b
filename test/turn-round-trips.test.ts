import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { ConversationGeneration } from "../src/generation/conversation-generation";
import { createConversation, eventually, newUser, streamTurn } from "./helpers/api";

it("a turn costs one D1 round trip before the upstream call and one after the stream", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  // Some history first, so the turn really reads it.
  await streamTurn(alice, conv.id, { content: "first [[stand-in tokens=3]]" });
  const { events } = await streamTurn(alice, conv.id, { content: "second [[stand-in tokens=3]]" });
  expect(events.at(-1)!.event).toBe("message.completed");

  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  const turn = await eventually(() =>
    runInDurableObject(stub, (instance: ConversationGeneration) =>
      instance.metrics.lastTurn.afterStream > 0
        ? { ...instance.metrics.lastTurn, total: instance.metrics.d1RoundTrips }
        : null,
    ),
  );
  expect(turn).toEqual({ beforeUpstream: 1, afterStream: 1, total: 4 });
});
