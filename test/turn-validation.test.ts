import { describe, expect, it } from "vitest";
import type { Conversation } from "../src/store/types";
import { call, createConversation, expectError, listMessages, newUser } from "./helpers/api";
import { rowsOnAllShards } from "./helpers/shards";

async function countRows(conversationId: string): Promise<number> {
  return (await rowsOnAllShards("SELECT id FROM messages WHERE conversation_id = ?", conversationId)).length;
}

describe("a turn with bad input is a clear 400 and stores nothing", () => {
  it.each([
    ["no content", {}, "content"],
    ["empty content", { content: "  " }, "content"],
    ["content of the wrong type", { content: 42 }, "content"],
    ["an unknown content part", { content: [{ type: "sticker", id: 1 }] }, "content.0.type"],
    [
      "an image URL with a bad scheme",
      { content: [{ type: "image_url", image_url: { url: "ftp://x/y.png" } }] },
      "content.0.image_url.url",
    ],
    ["an unknown field", { content: "hi", colour: "red" }, "colour"],
    ["temperature out of range", { content: "hi", parameters: { temperature: 2 } }, "parameters.temperature"],
    ["an unknown parameter", { content: "hi", parameters: { temprature: 1 } }, "parameters.temprature"],
    ["n other than 1", { content: "hi", parameters: { n: 2 } }, "parameters.n"],
    [
      "top_logprobs without logprobs",
      { content: "hi", parameters: { top_logprobs: 2 } },
      "parameters.top_logprobs",
    ],
    ["a tool result without tool_call_id", { role: "tool", content: "22°C" }, "tool_call_id"],
    ["stream that is not a boolean", { content: "hi", stream: "yes" }, "stream"],
    [
      "json_object without the word json",
      { content: "hi", parameters: { response_format: { type: "json_object" } } },
      "parameters.response_format",
    ],
  ])("%s", async (_name, body, param) => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, body),
      400,
      "invalid_request",
      param,
    );
    expect(await countRows(conv.id)).toBe(0);
  });

  it("a body that is not JSON", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, "{not json"),
      400,
      "invalid_request",
    );
    expect(await countRows(conv.id)).toBe(0);
  });

  it("a body over the size limit is 413", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "x".repeat(1_100_000),
    });
    await expectError(res, 413, "payload_too_large");
    expect(await countRows(conv.id)).toBe(0);
  });

  it("rules that only the stored conversation reveals take the turn back", async () => {
    const alice = newUser("alice");
    // The conversation's defaults turn thinking on; JSON mode is not allowed with thinking.
    const conv = await createConversation(alice, { parameters: { enable_thinking: true } });
    const before = (await call(alice, "GET", `/conversations/${conv.id}`).then((r) =>
      r.json(),
    )) as Conversation;
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "answer in json",
      parameters: { response_format: { type: "json_object" } },
    });
    await expectError(res, 400, "invalid_request", "parameters.response_format");
    expect(await countRows(conv.id)).toBe(0);
    const after = (await call(alice, "GET", `/conversations/${conv.id}`).then((r) =>
      r.json(),
    )) as Conversation;
    expect(after.updated_at).toBe(before.updated_at);
    expect(after.last_message_at).toBeNull();
  });

  it("a tool result must answer the latest answer's tool call", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const ok = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi [[stand-in tokens=2]]",
      stream: false,
    });
    expect(ok.status).toBe(200);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      role: "tool",
      tool_call_id: "call_nope",
      content: "22°C",
    });
    await expectError(res, 400, "invalid_request", "tool_call_id");
    expect(await countRows(conv.id)).toBe(2);
  });

  it("a message too long for the model's context is rejected before anything is stored upstream", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { model: "qwen-tiny-context" });
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "word ".repeat(4000),
    });
    await expectError(res, 400, "invalid_request", "content");
    expect(await listMessages(alice, conv.id)).toHaveLength(0);
  });
});
