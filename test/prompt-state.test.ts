import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { PromptState } from "../src/generation/prompt-state";
import type { HistoryRow } from "../src/store/turns";
import { call, createConversation, newTag, newUser, standInRequests, streamTurn } from "./helpers/api";
import { dbOf } from "./helpers/shards";

const stub = (id: string) => env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(id));

it("a turn after PATCH of the system prompt, model and defaults uses the new ones", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { system_prompt: "Be brief." });
  await streamTurn(alice, conv.id, { content: "first [[stand-in tokens=3]]" });
  const patched = await call(alice, "PATCH", `/conversations/${conv.id}`, {
    system_prompt: "Be thorough.",
    model: "qwen-max",
    parameters: { temperature: 0.25 },
  });
  expect(patched.status).toBe(200);

  const tag = newTag();
  const { events } = await streamTurn(alice, conv.id, { content: `second [[stand-in tokens=3 tag=${tag}]]` });
  expect(events.at(-1)!.event).toBe("message.completed");
  const [request] = await standInRequests(tag);
  expect(request!.body.messages[0]).toEqual({ role: "system", content: "Be thorough." });
  expect(request!.body.model).toBe("qwen-max");
  expect(request!.body).toMatchObject({ temperature: 0.25 });
  // The history came along: first user message and its answer, then the new message.
  expect(request!.body.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
});

it("the object's prompt state follows the conversation in D1, version included", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { system_prompt: "Hi." });
  await streamTurn(alice, conv.id, { content: "one [[stand-in tokens=3]]" });
  await streamTurn(alice, conv.id, { content: "two [[stand-in tokens=3]]" });
  await call(alice, "PATCH", `/conversations/${conv.id}`, { system_prompt: "Hello." });

  const d1 = await dbOf(alice)
    .prepare("SELECT system_prompt, version FROM conversations WHERE id = ?")
    .bind(conv.id)
    .first<{ system_prompt: string; version: number }>();
  const ids = (
    await dbOf(alice)
      .prepare("SELECT id FROM messages WHERE conversation_id = ? ORDER BY id DESC")
      .bind(conv.id)
      .all<{ id: string }>()
  ).results.map((r) => r.id);
  await runInDurableObject(stub(conv.id), (_instance, state) => {
    const held = new PromptState(state.storage.sql, 200).get()!;
    expect(held.conversation).toMatchObject({
      system_prompt: "Hello.",
      version: d1!.version,
      user_id: alice,
    });
    expect(held.history.map((m) => m.id)).toEqual(ids);
  });
});

it("the history window is bounded and follows the active path", async () => {
  await runInDurableObject(stub(`window-${crypto.randomUUID()}`), (_instance, state) => {
    const store = new PromptState(state.storage.sql, 5);
    const row = (i: number, parent: number | null): HistoryRow => ({
      id: `m${String(i).padStart(3, "0")}`,
      parent_id: parent === null ? null : `m${String(parent).padStart(3, "0")}`,
      role: i % 2 ? "user" : "assistant",
      content_json: JSON.stringify(`message ${i}`),
      tool_calls_json: null,
      tool_call_id: null,
      status: "completed",
    });
    const history = Array.from({ length: 12 }, (_, i) => row(12 - i, 12 - i === 1 ? null : 11 - i));
    store.replace({
      conversation: {
        id: "c",
        user_id: "u",
        version: 7,
        system_prompt: null,
        model: null,
        params_json: "{}",
        active_leaf_id: null,
      },
      history,
    });
    expect(store.get()!.history.map((m) => m.id)).toEqual(["m012", "m011", "m010", "m009", "m008"]);

    // A write from version 7 applies and moves the state; the window stays at 5.
    const applied = store.advance({ before: 7, after: 9 }, () =>
      store.putMessages([
        {
          id: "m013",
          parent_id: "m012",
          role: "user",
          content: "message 13",
          status: "completed",
        } as never,
      ]),
    );
    expect(applied).toBe(true);
    expect(store.version()).toBe(9);
    expect(store.get()!.history.map((m) => m.id)).toEqual(["m013", "m012", "m011", "m010", "m009"]);

    // A write that did not start from this state's version: someone else wrote in between.
    expect(store.advance({ before: 10, after: 11 }, () => {})).toBe(false);
    expect(store.get()).toBeNull();
  });
});
