import { describe, expect, it } from "vitest";
import type { Message } from "../src/store/types";
import { call, createConversation, newUser, resume } from "./helpers/api";
import { dbOf } from "./helpers/shards";
import { parseStrictJson, parseStrictSse } from "./helpers/strict-json";

/**
 * `[[stand-in lone_surrogate]]` makes the upstream put an unpaired surrogate (sent as the escape
 * `\ud83d` / `\ude00`) into a content delta, a reasoning delta and a tool call's arguments.
 * edge-chat replaces each with U+FFFD where the text enters, so everything it stores and sends
 * is well-formed.
 */
const DIRECTIVE = "[[stand-in lone_surrogate tokens=4]]";
const REPLACEMENT = "\ufffd";

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};

async function strictMessage(userId: string, id: string): Promise<Message> {
  const res = await call(userId, "GET", `/messages/${id}`);
  expect(res.status).toBe(200);
  return parseStrictJson(await res.text()) as Message;
}

async function strictList(userId: string, conversationId: string): Promise<Message[]> {
  const res = await call(userId, "GET", `/conversations/${conversationId}/messages`);
  expect(res.status).toBe(200);
  return (parseStrictJson(await res.text()) as { data: Message[] }).data;
}

describe("text from upstream that is not well-formed Unicode is repaired where it enters", () => {
  it("a streamed turn: every frame, the stored answer and the resumed stream are well-formed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `hi ${DIRECTIVE}`,
    });
    expect(res.status).toBe(200);
    const frames = parseStrictSse(await res.text()) as { message?: Message; content?: string }[];
    const done = frames.at(-1)!.message!;
    expect(done.status).toBe("completed");
    expect(done.content).toContain(REPLACEMENT);
    const deltas = frames.map((f) => f.content ?? "").join("");
    expect(deltas).toBe(done.content);

    expect((await strictMessage(alice, done.id)).content).toBe(done.content);
    expect((await strictList(alice, conv.id))[0]!.content).toBe(done.content);
    const replay = await resume(alice, done.id, 0);
    expect(replay.status).toBe(200);
    parseStrictSse(await replay.text());
  });

  it("reasoning and a non-streamed reply", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `think ${DIRECTIVE} [[stand-in thinking]]`,
      stream: false,
    });
    expect(res.status).toBe(200);
    const { assistant_message } = parseStrictJson(await res.text()) as { assistant_message: Message };
    expect(assistant_message.reasoning_content).toContain(REPLACEMENT);
    expect(assistant_message.content).toContain(REPLACEMENT);
    await strictMessage(alice, assistant_message.id);
  });

  it("a tool call's arguments are stored and replayed well-formed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { parameters: { tools: [weatherTool] } });
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `weather? ${DIRECTIVE} [[stand-in tool_call]]`,
      stream: false,
    });
    expect(res.status).toBe(200);
    const { assistant_message } = parseStrictJson(await res.text()) as { assistant_message: Message };
    const calls = assistant_message.tool_calls as { function: { arguments: string } }[];
    const args = calls[0]!.function.arguments;
    expect(args).toContain(REPLACEMENT);
    expect(() => JSON.parse(args)).not.toThrow();
    await strictList(alice, conv.id);
  });

  it("POST /v1/chat/completions, streamed and not", async () => {
    const alice = newUser("alice");
    for (const stream of [true, false]) {
      const res = await call(alice, "POST", "/chat/completions", {
        model: "qwen-plus",
        stream,
        messages: [{ role: "user", content: `hi ${DIRECTIVE}${stream ? " [[stand-in thinking]]" : ""}` }],
        ...(stream ? { enable_thinking: true } : {}),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      if (stream) {
        const chunks = parseStrictSse(text) as { choices: { delta: { content?: string | null } }[] }[];
        const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
        expect(content).toContain(REPLACEMENT);
      } else {
        const completion = parseStrictJson(text) as { choices: { message: { content: string } }[] };
        expect(completion.choices[0]!.message.content).toContain(REPLACEMENT);
      }
    }
  });
});

describe("rows stored before requests were checked are read back well-formed", () => {
  it("a message and a conversation whose JSON holds a lone surrogate escape", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi [[stand-in tokens=2]]",
      stream: false,
    });
    expect(res.status).toBe(200);
    const { user_message } = (await res.json()) as { user_message: Message };
    await dbOf(alice).batch([
      dbOf(alice)
        .prepare("UPDATE messages SET content_json = ? WHERE id = ?")
        .bind('"old \\ud83d text"', user_message.id),
      dbOf(alice)
        .prepare("UPDATE conversations SET params_json = ? WHERE id = ?")
        .bind('{"stop":"\\udc00"}', conv.id),
    ]);
    expect((await strictMessage(alice, user_message.id)).content).toBe(`old ${REPLACEMENT} text`);
    await strictList(alice, conv.id);
    const got = await call(alice, "GET", `/conversations/${conv.id}`);
    expect((parseStrictJson(await got.text()) as { parameters: { stop: string } }).parameters.stop).toBe(
      REPLACEMENT,
    );
  });
});
