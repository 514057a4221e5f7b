import { expect, it } from "vitest";
import {
  call,
  createConversation,
  eventually,
  listMessages,
  newTag,
  newUser,
  parseSse,
  standInRequests,
  startedData,
} from "./helpers/api";

it("a client that leaves after the first delta still gets the whole answer stored, with usage", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: `Tell me a story [[stand-in tokens=30 itl=40 tag=${tag}]]`,
  });
  expect(res.status).toBe(200);

  // Read until the first message.delta arrives, then hang up.
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("event: message.delta")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("stream ended early");
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  const seen = parseSse(text.slice(0, text.lastIndexOf("\n\n") + 2)).events;
  const messageId = startedData(seen[0]).assistant_message.id;

  const stored = await eventually(async () => {
    const [m] = await listMessages(alice, conv.id);
    return m && m.id === messageId && m.status !== "streaming" ? m : null;
  }, 15_000);
  expect(stored.status).toBe("completed");
  expect(stored.finish_reason).toBe("stop");
  expect(stored.usage?.completion_tokens).toBe(30);
  expect(stored.usage?.total_tokens).toBe(stored.usage!.prompt_tokens + 30);
  expect((stored.content as string).split(" ").length).toBe(30);

  const [upstream] = await standInRequests(tag);
  expect(upstream!.outcome).toBe("completed");
  expect(upstream!.tokens_sent).toBe(30);
});
