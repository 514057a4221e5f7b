import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  listMessages,
  newTag,
  newUser,
  readSse,
  standInRequests,
} from "./helpers/api";

/** A response's status, content type and body (JSON, or the SSE events). */
async function form(res: Response) {
  const type = res.headers.get("content-type") ?? "";
  const body = type.startsWith("text/event-stream") ? (await readSse(res)).events : await res.json();
  return { status: res.status, type: type.split(";")[0], body };
}

describe("a retried send gets what its first request got", () => {
  it.each([
    [true, true],
    [true, false],
    [false, true],
    [false, false],
  ])(
    "a send that failed before its stream (stream: %s) and its retry (stream: %s) get the same JSON error",
    async (firstStream, retryStream) => {
      const alice = newUser("alice");
      const conv = await createConversation(alice);
      const tag = newTag();
      const body = {
        content: `x [[stand-in error=invalid_api_key tag=${tag}]]`,
        client_message_id: "fail-1",
      };
      const path = `/conversations/${conv.id}/messages`;
      const first = await form(await call(alice, "POST", path, { ...body, stream: firstStream }));
      expect(first).toMatchObject({
        status: 502,
        type: "application/json",
        body: { error: { code: "upstream_error" } },
      });
      const retry = await form(await call(alice, "POST", path, { ...body, stream: retryStream }));
      expect(retry).toEqual(first);
      // The retry was the same send: nothing new stored, no second upstream call.
      expect(await listMessages(alice, conv.id)).toHaveLength(2);
      expect(await standInRequests(tag)).toHaveLength(1);
    },
  );

  it("a send stopped before the model's first byte and its retry both get 409 conflict", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const body = { content: `slow [[stand-in ttft=5000 tag=${tag}]]`, client_message_id: "stop-1" };
    const path = `/conversations/${conv.id}/messages`;
    const sending = call(alice, "POST", path, body);
    const answer = await eventually(async () => {
      const messages = await listMessages(alice, conv.id);
      return messages.find((m) => m.role === "assistant" && m.status === "streaming") ?? null;
    });
    expect((await call(alice, "POST", `/messages/${answer.id}/stop`)).status).toBe(200);
    const first = await form(await sending);
    expect(first).toMatchObject({
      status: 409,
      type: "application/json",
      body: { error: { code: "conflict" } },
    });
    expect(await form(await call(alice, "POST", path, body))).toEqual(first);
    expect(await form(await call(alice, "POST", path, { ...body, stream: false }))).toEqual(first);
  });

  it("a send whose answer streamed is still answered with its stream when retried", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const body = { content: "x [[stand-in tokens=3]]", client_message_id: "ok-1" };
    const path = `/conversations/${conv.id}/messages`;
    const first = await form(await call(alice, "POST", path, body));
    expect(first).toMatchObject({ status: 200, type: "text/event-stream" });
    expect(await form(await call(alice, "POST", path, body))).toEqual(first);
  });

  it("a send refused with a 400 only the stored conversation reveals stores nothing: its retry is a new attempt", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const body = { content: "x [[stand-in tokens=2]]", client_message_id: "after-fail" };
    const path = `/conversations/${conv.id}/messages`;
    // A send that failed with a 400 only the stored context reveals is taken back as well.
    const refused = await form(
      await call(alice, "POST", path, { ...body, role: "tool", tool_call_id: "call_none", content: "r" }),
    );
    expect(refused).toMatchObject({ status: 400, type: "application/json" });
    expect(await listMessages(alice, conv.id)).toHaveLength(0);
    const retry = await call(alice, "POST", path, body);
    expect(retry.status).toBe(200);
    expect(endMessage((await readSse(retry)).events.at(-1)).status).toBe("completed");
  });
});

describe("a kept pre-stream failure does not outlive its answer", () => {
  const PREFIX = "failed-before-stream:";

  async function failedSend(alice: string) {
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "x [[stand-in error=invalid_api_key]]",
      client_message_id: "fail-kept",
    });
    expect(res.status).toBe(502);
    await res.text();
    const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
    const kept = () =>
      runInDurableObject(stub, async (_instance, state) => [
        ...(await state.storage.list({ prefix: PREFIX })).keys(),
      ]);
    expect(await kept()).toHaveLength(1);
    return { conv, stub, kept };
  }

  it("is dropped with the conversation", async () => {
    const alice = newUser("alice");
    const { conv, kept } = await failedSend(alice);
    expect((await call(alice, "DELETE", `/conversations/${conv.id}`)).status).toBe(204);
    expect(await kept()).toEqual([]);
  });

  it("is dropped with the answer's events after the retention period", async () => {
    const alice = newUser("alice");
    const { stub, kept } = await failedSend(alice);
    // As if two days had passed since it was kept (retention is one day).
    await runInDurableObject(stub, async (_instance, state) => {
      const entries = await state.storage.list<{ at: number }>({ prefix: PREFIX });
      for (const [key, value] of entries)
        await state.storage.put(key, { ...value, at: value.at - 2 * 86_400_000 });
    });
    await runDurableObjectAlarm(stub);
    expect(await kept()).toEqual([]);
  });
});
