import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { ToolCallFragment } from "../src/dashscope/types";
import { EVENT_FLUSH_INTERVAL_MS } from "../src/generation/answer-log";
import {
  call,
  createConversation,
  eventually,
  listMessages,
  newUser,
  openTurn,
  readSse,
} from "./helpers/api";

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
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  await runInDurableObject(stub, (_instance, state) => state.abort("owner killed by the test")).catch(
    () => {},
  );
  // The client's stream breaks with its owner.
  await (async () => {
    for (;;) if ((await reader.read()).done) return;
  })().catch(() => {});
  // A stub whose object was reset is broken for good; a fresh one reaches the new instance.
  const fresh = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
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
  // Its logged terminal event carries the bookmark of the recovery's store, as a live one does.
  const { events } = await readSse(await call(alice, "GET", `/messages/${answer.id}/events`));
  expect(events.at(-1)!.event).toBe("message.failed");
  expect((events.at(-1)!.data as { d1_bookmark?: string }).d1_bookmark).toMatch(
    /^[0-9]{4}~[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/,
  );
});

it("a recovered answer keeps the tool calls and reasoning its events carried, as a live answer would", async () => {
  const alice = newUser("alice");
  const tools = ["get_weather", "get_time", "get_news"].map((name) => ({
    type: "function",
    function: { name, parameters: { type: "object", properties: { city: { type: "string" } } } },
  }));
  const conv = await createConversation(alice, { parameters: { tools, parallel_tool_calls: true } });
  // 8 reasoning tokens, then 3 calls of 3 fragments each: after 15 deltas the third call has begun
  // but not ended, and the model goes quiet until the owner dies.
  const reader = await openTurn(alice, conv.id, {
    content: "three calls [[stand-in thinking tool_call calls=3 stall=15]]",
  });
  const deltas: { reasoning_content?: string; tool_calls?: ToolCallFragment[] }[] = [];
  const fragments = () => deltas.flatMap((d) => d.tool_calls ?? []);
  while (fragments().length < 7) {
    const event = await reader.next();
    if (!event) throw new Error("ended early");
    if (event.event === "message.delta") deltas.push(event.data);
  }

  await new Promise((r) => setTimeout(r, 3 * EVENT_FLUSH_INTERVAL_MS));
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
  await runInDurableObject(stub, (_instance, state) => state.abort("owner killed by the test")).catch(
    () => {},
  );
  await reader.rest().catch(() => {});
  expect(
    await runDurableObjectAlarm(
      env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id)),
    ),
  ).toBe(true);

  const answer = await eventually(async () => {
    const [m] = await listMessages(alice, conv.id);
    return m && m.status !== "streaming" ? m : null;
  });
  expect(answer.status).toBe("interrupted");
  expect(answer.reasoning_content).toBe(deltas.map((d) => d.reasoning_content ?? "").join(""));
  // The two whole calls, assembled by index as the fragments came; the third, cut off, is left out.
  const byIndex = (i: number) => fragments().filter((f) => f.index === i);
  const expected = [0, 1].map((i) => ({
    id: byIndex(i)[0]!.id,
    type: "function",
    function: {
      name: byIndex(i)[0]!.function!.name,
      arguments: byIndex(i)
        .map((f) => f.function?.arguments ?? "")
        .join(""),
    },
  }));
  expect(answer.tool_calls).toEqual(expected);
  expect(byIndex(2).length).toBeGreaterThan(0);
  expect(answer.usage).toMatchObject({ estimated: true });
  expect(answer.usage!.completion_tokens).toBeGreaterThan(0);
});
