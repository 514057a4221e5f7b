import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { EVENT_FLUSH_INTERVAL_MS } from "../src/generation/answer-log";
import { call, createConversation, eventually, listMessages, newUser } from "./helpers/api";

it("an answer whose owner died is closed as interrupted with what was received", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: "long [[stand-in tokens=200 itl=30]]",
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while ((text.match(/event: message.delta/g) ?? []).length < 3) {
    const { value, done } = await reader.read();
    if (done) throw new Error("ended early");
    text += decoder.decode(value, { stream: true });
  }
  const firstDelta = JSON.parse(/event: message.delta\ndata: (.*)\n/.exec(text)![1]!).content as string;

  // Events reach the owner's storage within EVENT_FLUSH_INTERVAL_MS; then the owner dies (as on a
  // deploy or a crash) and its heartbeat alarm wakes a fresh instance.
  await new Promise((r) => setTimeout(r, 3 * EVENT_FLUSH_INTERVAL_MS));
  const stub = env.GENERATIONS.get(env.GENERATIONS.idFromName(conv.id));
  await runInDurableObject(stub, (_instance, state) => state.abort("owner killed by the test")).catch(
    () => {},
  );
  // The client's stream breaks with its owner.
  await (async () => {
    for (;;) if ((await reader.read()).done) return;
  })().catch(() => {});
  // A stub whose object was reset is broken for good; a fresh one reaches the new instance.
  const fresh = env.GENERATIONS.get(env.GENERATIONS.idFromName(conv.id));
  expect(await runDurableObjectAlarm(fresh)).toBe(true);

  const answer = await eventually(async () => {
    const [m] = await listMessages(alice, conv.id);
    return m && m.status !== "streaming" ? m : null;
  });
  expect(answer.status).toBe("interrupted");
  expect(answer.error).toMatchObject({ code: "interrupted" });
  expect(answer.content as string).toMatch(new RegExp(`^${firstDelta}`));
  expect((answer.content as string).split(" ").length).toBeLessThan(200);
  // DashScope never sent usage for it: the ledger gets an estimate, marked as such.
  expect(answer.usage).toMatchObject({ estimated: true });
  expect(answer.usage!.completion_tokens).toBeGreaterThan(0);
});
