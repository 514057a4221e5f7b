import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  listMessages,
  newTag,
  newUser,
  readSse,
  standInRequests,
  streamTurn,
} from "./helpers/api";
import { dbOf } from "./helpers/shards";

// The turn's budget against the stand-in, which (like DashScope) rejects a request whose whole
// prompt — messages, tool definitions, a response schema, media — exceeds the model's input limit.
// qwen-tiny-context: a 3072-token window and 2048 input tokens (vitest.config.ts, the stand-in's table).
const TINY = "qwen-tiny-context";
const TINY_INPUT = 2048;

const words = (n: number) => "word ".repeat(n).trim();
/** `count` tool definitions of about 85 characters (~21 tokens) each, plus `padding` characters of description. */
const toolDefinitions = (count: number, padding = 0) =>
  Array.from({ length: count }, (_, i) => ({
    type: "function",
    function: {
      name: `lookup_${String(i).padStart(2, "0")}`,
      description: `Catalogue section ${i}.${"x".repeat(padding)}`,
    },
  }));

/** What these tests read of an answer. */
interface Answer {
  usage: { prompt_tokens: number } | null;
  tool_calls: { id: string }[] | null;
}

/** Sends a streamed turn and returns its final answer, which must have completed. */
async function completedTurn(userId: string, conversationId: string, body: Record<string, unknown>) {
  const { events } = await streamTurn(userId, conversationId, body);
  const last = events.at(-1)!;
  expect(last.event, JSON.stringify(last.data)).toBe("message.completed");
  const answer: Answer = endMessage(last);
  return answer;
}

/** The user messages' first words, in the order the upstream got them. */
const sentTurns = (body: { messages: { role: string; content: unknown }[] }) =>
  body.messages
    .filter((m) => m.role === "user")
    .map((m) => String(m.content).split(" ").slice(0, 2).join(" "));

describe("the history budget counts everything sent to the model", () => {
  it("a conversation whose tool definitions fill a third of the window still answers 'hi' after many long turns", async () => {
    // The reported case (qwen-max, 40 tools ~7k tokens, ~2.4k-token messages) scaled to a 3072-token window.
    const alice = newUser("alice");
    const tools = toolDefinitions(40);
    const conv = await createConversation(alice, { model: TINY, parameters: { max_tokens: 1024, tools } });
    for (let i = 0; i < 10; i++) {
      const answer = await completedTurn(alice, conv.id, {
        content: `turn ${i} ${words(180)} [[stand-in tokens=3]]`,
      });
      expect(answer.usage!.prompt_tokens).toBeLessThanOrEqual(TINY_INPUT);
    }
    const tag = newTag();
    const answer = await completedTurn(alice, conv.id, { content: `hi [[stand-in tokens=2 tag=${tag}]]` });

    const [req] = await standInRequests(tag);
    expect(req!.status).toBe(200);
    expect(req!.body.tools).toEqual(tools);
    // The upstream counted the whole request, tools included, and it fit.
    expect(answer.usage!.prompt_tokens).toBeLessThanOrEqual(TINY_INPUT);
    expect(answer.usage!.prompt_tokens).toBeGreaterThan(JSON.stringify(tools).length / 4);
    // History gave way: the newest turns are there in order, the oldest are not.
    const turns = sentTurns(req!.body);
    expect(turns.at(-1)).toBe("hi [[stand-in");
    expect(turns.length).toBeGreaterThan(2);
    expect(turns.slice(0, -1)).toEqual(
      Array.from({ length: 10 }, (_, i) => `turn ${i}`).slice(11 - turns.length),
    );
  });

  it("a json_schema response format counts against the window like tool definitions", async () => {
    const alice = newUser("alice");
    const schema = {
      type: "object",
      properties: Object.fromEntries(
        Array.from({ length: 30 }, (_, i) => [
          `field_${i}`,
          { type: "string", description: `Field number ${i}.` },
        ]),
      ),
    };
    const conv = await createConversation(alice, {
      model: TINY,
      parameters: {
        max_tokens: 1024,
        response_format: { type: "json_schema", json_schema: { name: "record", schema } },
      },
    });
    for (let i = 0; i < 8; i++) {
      const answer = await completedTurn(alice, conv.id, {
        content: `turn ${i} ${words(180)} [[stand-in tokens=3]]`,
      });
      expect(answer.usage!.prompt_tokens).toBeLessThanOrEqual(TINY_INPUT);
    }
  });

  it.each([
    [
      "the model's input limit, when max_tokens leaves more of the window free",
      TINY,
      { max_tokens: 200 },
      TINY_INPUT,
    ],
    ["max_input_tokens", "qwen-plus", { max_input_tokens: 1000 }, 1000],
  ])("history stays within %s", async (_, model, parameters, limit) => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { model, parameters });
    for (let i = 0; i < 12; i++) {
      const answer = await completedTurn(alice, conv.id, {
        content: `turn ${i} ${words(180)} [[stand-in tokens=3]]`,
      });
      expect(answer.usage!.prompt_tokens).toBeLessThanOrEqual(limit);
    }
  });

  it.each([
    [
      "the frames of a video",
      {},
      { type: "video", video: Array.from({ length: 16 }, (_, i) => `https://example.com/f${i}.jpg`) },
    ],
    [
      "a high-resolution image",
      { vl_high_resolution_images: true },
      { type: "image_url", image_url: { url: "https://example.com/large.png" } },
    ],
  ])(
    "%s count in history: an older one is dropped instead of overflowing the model's input",
    async (_, parameters, part) => {
      // qwen-omni-turbo: 30,720 input tokens (qwen-max's limit too, but it takes no images); each of
      // these parts is estimated at more than half of that.
      const alice = newUser("alice");
      const conv = await createConversation(alice, {
        model: "qwen-omni-turbo",
        parameters: { max_tokens: 1024, ...parameters },
      });
      const first = await completedTurn(alice, conv.id, {
        content: [part, { type: "text", text: "first [[stand-in tokens=2]]" }],
      });
      expect(first.usage!.prompt_tokens).toBeLessThanOrEqual(30_720);
      const tag = newTag();
      const second = await completedTurn(alice, conv.id, {
        content: [part, { type: "text", text: `second [[stand-in tokens=2 tag=${tag}]]` }],
      });
      expect(second.usage!.prompt_tokens).toBeLessThanOrEqual(30_720);
      const [req] = await standInRequests(tag);
      expect(req!.body.messages.filter((m) => m.role === "user")).toHaveLength(1);
    },
  );

  it("thinking without a thinking_budget keeps room for the reasoning", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { model: TINY, parameters: { max_tokens: 1024 } });
    // ~1,400 tokens fit the 2,048 left by max_tokens, but not once the reasoning has its room too.
    const content = `${words(1100)} [[stand-in tokens=2]]`;
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content,
      parameters: { enable_thinking: true },
    });
    const error = await expectError(res, 400, "invalid_request", "content");
    expect(error.message).toMatch(/reasoning budget 768 \(parameters\.thinking_budget\)/);
    expect(await listMessages(alice, conv.id)).toHaveLength(0);
    // Without thinking the same message fits.
    await completedTurn(alice, conv.id, { content });
  });
});

describe("a turn fails only for its own parts, and the 400 says which to shrink", () => {
  it("tool definitions that leave no room for any message: 400 parameters.tools with the numbers; a turn with fewer tools goes on", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, {
      model: TINY,
      parameters: { max_tokens: 1024, tools: toolDefinitions(40, 130) },
    });
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "hi" });
    const error = await expectError(res, 400, "invalid_request", "parameters.tools");
    expect(error.message).toMatch(/qwen-tiny-context's context window of 3,072 tokens/);
    expect(error.message).toMatch(/tool definitions [\d,]+ \(parameters\.tools\)/);
    expect(error.message).toMatch(
      /a default of this conversation: override it in this turn's parameters or change it with PATCH/,
    );
    expect(await listMessages(alice, conv.id)).toHaveLength(0);

    // The conversation is not stuck: this turn's own tools fit.
    await completedTurn(alice, conv.id, {
      content: "hi [[stand-in tokens=2]]",
      parameters: { tools: toolDefinitions(2) },
    });
  });

  it("a reply budget that fills the window: 400 parameters.max_tokens", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { model: TINY });
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi",
      parameters: { max_tokens: 3070 },
    });
    const error = await expectError(res, 400, "invalid_request", "parameters.max_tokens");
    expect(error.message).toMatch(/context window of 3,072 tokens/);
    expect(error.message).toMatch(/reply budget 3,070 \(parameters\.max_tokens\)/);
    expect(error.message).not.toMatch(/default/);
    expect(await listMessages(alice, conv.id)).toHaveLength(0);
  });

  it("a tool result whose tool call no longer fits is a 400 naming the result; nothing is stored and a shorter result goes through", async () => {
    const alice = newUser("alice");
    const tools = toolDefinitions(40);
    const conv = await createConversation(alice, { model: TINY, parameters: { max_tokens: 1024, tools } });
    const tag = newTag();
    const asked = await completedTurn(alice, conv.id, {
      content: `weather? [[stand-in tool_call tag=${tag}]]`,
    });
    const callId = asked.tool_calls![0]!.id;

    // Fits the window on its own and with the call, but not beside the tool definitions.
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      role: "tool",
      tool_call_id: callId,
      content: words(900),
    });
    const error = await expectError(res, 400, "invalid_request", "content");
    expect(error.message).toMatch(/the tool call this result answers \d+/);
    expect(error.message).toMatch(/tool result [\d,]+ \(content\)/);
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
    expect(await standInRequests(tag)).toHaveLength(1);

    await completedTurn(alice, conv.id, { role: "tool", tool_call_id: callId, content: "22°C" });
    const [, answered] = await standInRequests(tag);
    expect(answered!.status).toBe(200);
    expect(answered!.body.tools).toEqual(tools);
    expect(answered!.body.messages.slice(-2).map((m) => m.role)).toEqual(["assistant", "tool"]);
  });
});

describe("quota reservations count the whole prompt", () => {
  const setBudget = (userId: string, tokens: number) =>
    dbOf(userId).prepare("UPDATE users SET daily_token_budget = ? WHERE id = ?").bind(tokens, userId).run();

  it("/v1/chat/completions reserves its tool definitions: over the budget is 429 before the upstream call", async () => {
    const alice = newUser("alice");
    await createConversation(alice);
    await setBudget(alice, 3_000);
    const tag = newTag();
    const res = await call(alice, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: `hi [[stand-in tokens=2 tag=${tag}]]` }],
      max_tokens: 100,
      tools: toolDefinitions(40, 300),
    });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("quota_exceeded");
    expect(await standInRequests(tag)).toHaveLength(0);
  });

  it("a turn reserves its own tool definitions: over the budget is 429 before the upstream call", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await setBudget(alice, 3_000);
    const tag = newTag();
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `hi [[stand-in tokens=2 tag=${tag}]]`,
      parameters: { max_tokens: 100, tools: toolDefinitions(40, 300) },
    });
    await expectError(res, 429, "quota_exceeded");
    expect(await standInRequests(tag)).toHaveLength(0);
    // Within the budget, the same turn runs.
    await setBudget(alice, 100_000);
    await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "hi [[stand-in tokens=2]]",
        parameters: { max_tokens: 100, tools: toolDefinitions(40, 300) },
      }),
    );
  });
});
