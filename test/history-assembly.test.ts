import { describe, expect, it } from "vitest";
import { assembleMessages, ContextOverflowError, type HistoryMessage } from "../src/chat/history";
import { estimateMessageTokens, REQUEST_OVERHEAD_TOKENS } from "../src/chat/tokens";
import { createConversation, newTag, newUser, standInRequests, streamTurn } from "./helpers/api";

let seq = 0;
const id = () => `m${String(++seq).padStart(4, "0")}`;
const user = (content: string): HistoryMessage => ({
  id: id(),
  role: "user",
  content,
  tool_calls: null,
  tool_call_id: null,
  status: "completed",
});
const assistant = (content: string, extra: Partial<HistoryMessage> = {}): HistoryMessage => ({
  id: id(),
  role: "assistant",
  content,
  tool_calls: null,
  tool_call_id: null,
  status: "completed",
  ...extra,
});
const call = (callId: string) => ({
  id: callId,
  type: "function" as const,
  function: { name: "lookup", arguments: "{}" },
});
const tool = (callId: string, content: string): HistoryMessage => ({
  id: id(),
  role: "tool",
  content,
  tool_calls: null,
  tool_call_id: callId,
  status: "completed",
});

/** Chronological history → newest first, as the turn reads it. */
const newestFirst = (...messages: HistoryMessage[]) => [...messages].reverse();
const words = (n: number) => "word ".repeat(n).trim();
/** No prompt from parameters; `tokens` reserved for the answer. */
const reply = (tokens: number) => ({
  parameterParts: [],
  replyParts: [{ label: "reply budget", param: "parameters.max_tokens", tokens }],
});

describe("history assembly", () => {
  it("sends system prompt, all history in order and the new message when it fits", () => {
    const history = [user("a"), assistant("b"), user("c"), assistant("d")];
    const out = assembleMessages({
      systemPrompt: "sys",
      history: newestFirst(...history),
      newMessages: [{ role: "user", content: "e" }],
      contextTokens: 10_000,
      ...reply(1_000),
    });
    expect(out.messages.map((m) => m.content)).toEqual(["sys", "a", "b", "c", "d", "e"]);
    expect(out.includedIds).toEqual(history.map((m) => m.id));
    expect(out.omitted).toBe(0);
  });

  it("keeps the newest history that fits the window minus the reply budget, and drops the oldest", () => {
    const history = Array.from({ length: 10 }, (_, i) =>
      i % 2 ? assistant(`${i} ${words(40)}`) : user(`${i} ${words(40)}`),
    );
    const per = estimateMessageTokens({ content: history[0]!.content });
    const newMessage = { role: "user" as const, content: "now" };
    const fixed =
      estimateMessageTokens({ content: "sys" }) + estimateMessageTokens(newMessage) + REQUEST_OVERHEAD_TOKENS;
    // Room for exactly three history messages.
    const out = assembleMessages({
      systemPrompt: "sys",
      history: newestFirst(...history),
      newMessages: [newMessage],
      contextTokens: fixed + 3 * per + 500,
      ...reply(500),
    });
    expect(out.includedIds).toEqual(history.slice(7).map((m) => m.id));
    expect(out.omitted).toBe(7);
    expect(out.estimatedTokens).toBeLessThanOrEqual(fixed + 3 * per);
  });

  it("keeps a tool call with its results or drops them together, never half", () => {
    const history = [
      user(words(50)),
      assistant("", { tool_calls: [call("c1"), call("c2")] }),
      tool("c1", words(30)),
      tool("c2", words(30)),
      assistant("It is sunny."),
    ];
    const newMessage = { role: "user" as const, content: "thanks" };
    const full = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: [newMessage],
      contextTokens: 100_000,
      ...reply(0),
    });
    expect(full.messages.map((m) => m.role)).toEqual([
      "user",
      "assistant",
      "tool",
      "tool",
      "assistant",
      "user",
    ]);

    // Budget for the last answer and part of the tool pair only: the pair goes as a whole.
    const last =
      estimateMessageTokens({ content: "It is sunny." }) +
      estimateMessageTokens(newMessage) +
      REQUEST_OVERHEAD_TOKENS;
    const cut = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: [newMessage],
      contextTokens: last + 30,
      ...reply(0),
    });
    expect(cut.messages.map((m) => m.role)).toEqual(["assistant", "user"]);
    expect(cut.omitted).toBe(4);
  });

  it("never sends a tool call without its results", () => {
    const history = [user("weather?"), assistant("Let me look.", { tool_calls: [call("c1")] })];
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: [{ role: "user", content: "never mind" }],
      contextTokens: 10_000,
      ...reply(0),
    });
    expect(out.messages).toEqual([
      { role: "user", content: "weather?" },
      { role: "assistant", content: "Let me look." },
      { role: "user", content: "never mind" },
    ]);
  });

  it("sends the tool call a new tool result answers, with it", () => {
    const history = [user("weather?"), assistant("", { tool_calls: [call("c1")] })];
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: [{ role: "tool", content: "22°C", tool_call_id: "c1" }],
      contextTokens: 10_000,
      ...reply(0),
    });
    expect(out.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool"]);
    expect(out.messages[1]).toMatchObject({ tool_calls: [call("c1")] });
  });

  it("sends the answer with parallel calls before the results answering all of them now", () => {
    const history = [user("time and weather?"), assistant("", { tool_calls: [call("c1"), call("c2")] })];
    const results = [
      { role: "tool" as const, content: "12:00", tool_call_id: "c1" },
      { role: "tool" as const, content: "22°C", tool_call_id: "c2" },
    ];
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: results,
      contextTokens: 10_000,
      ...reply(0),
    });
    expect(out.messages).toEqual([
      { role: "user", content: "time and weather?" },
      { role: "assistant", content: "", tool_calls: [call("c1"), call("c2")] },
      ...results,
    ]);
    // Answering one of the two calls does not make the answer sendable: it stays out.
    const half = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: results.slice(0, 1),
      contextTokens: 10_000,
      ...reply(0),
    });
    expect(half.messages.some((m) => m.role === "assistant")).toBe(false);
  });

  it("skips failed answers and keeps what the user saw of interrupted ones", () => {
    const history = [
      user("a"),
      assistant("", { status: "failed" }),
      user("a again"),
      assistant("partial", { status: "interrupted" }),
    ];
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: [{ role: "user", content: "go on" }],
      contextTokens: 10_000,
      ...reply(0),
    });
    expect(out.messages.map((m) => m.content)).toEqual(["a", "a again", "partial", "go on"]);
  });

  it("rejects a new message that does not fit at all", () => {
    expect(() =>
      assembleMessages({
        systemPrompt: "sys",
        history: [],
        newMessages: [{ role: "user", content: words(5000) }],
        contextTokens: 2000,
        ...reply(500),
      }),
    ).toThrow(ContextOverflowError);
  });
});

describe("the history budget", () => {
  const history = Array.from({ length: 10 }, (_, i) =>
    i % 2 ? assistant(`${i} ${words(40)}`) : user(`${i} ${words(40)}`),
  );
  const newMessage = { role: "user" as const, content: "now" };
  const tools = { label: "tool definitions", param: "parameters.tools", tokens: 0 };

  it("gives way to tool definitions, a response schema and the reply: history shrinks, the total stays in the window", () => {
    const assemble = (toolTokens: number, replyTokens: number) =>
      assembleMessages({
        systemPrompt: "sys",
        history: newestFirst(...history),
        newMessages: [newMessage],
        parameterParts: [
          { ...tools, tokens: toolTokens },
          { label: "response schema", param: "parameters.response_format", tokens: 50 },
        ],
        replyParts: [{ label: "reply budget", param: "parameters.max_tokens", tokens: replyTokens }],
        contextTokens: 1_000,
      });
    const plain = assemble(0, 100);
    const withTools = assemble(300, 100);
    const withReply = assemble(0, 400);
    expect(plain.includedIds.length).toBeGreaterThan(withTools.includedIds.length);
    expect(plain.includedIds.length).toBeGreaterThan(withReply.includedIds.length);
    for (const [out, reserved] of [
      [plain, 100],
      [withTools, 100],
      [withReply, 400],
    ] as const) {
      // The estimate covers the parameter parts too; with the reply it stays within the window.
      expect(out.estimatedTokens + reserved).toBeLessThanOrEqual(1_000);
      expect(out.includedIds).toEqual(
        history.slice(history.length - out.includedIds.length).map((m) => m.id),
      );
    }
    expect(withTools.estimatedTokens).toBeGreaterThan(300);
  });

  it("caps the prompt at the input limit when it is below the window minus the reply", () => {
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...history),
      newMessages: [newMessage],
      ...reply(10),
      contextTokens: 10_000,
      inputLimit: { tokens: 200, label: "the model's input limit" },
    });
    expect(out.estimatedTokens).toBeLessThanOrEqual(200);
    expect(out.includedIds.length).toBeGreaterThan(0);
  });

  it("a turn whose own parts overflow names the largest part the caller can change, with the numbers", () => {
    const overflow = (parameterTokens: number, replyTokens: number, content: string) => {
      try {
        assembleMessages({
          systemPrompt: "sys",
          history: newestFirst(...history),
          newMessages: [{ role: "user", content }],
          parameterParts: [{ ...tools, tokens: parameterTokens }],
          replyParts: [{ label: "reply budget", param: "parameters.max_tokens", tokens: replyTokens }],
          contextTokens: 1_000,
          model: "qwen-test",
        });
      } catch (err) {
        if (err instanceof ContextOverflowError) return err;
        throw err;
      }
      throw new Error("no overflow");
    };
    const byTools = overflow(900, 100, "hi");
    expect(byTools.param).toBe("parameters.tools");
    expect(byTools.message).toMatch(/qwen-test's context window of 1,000 tokens/);
    expect(byTools.message).toMatch(
      /tool definitions 900 \(parameters\.tools\), reply budget 100 \(parameters\.max_tokens\)/,
    );
    expect(overflow(100, 950, "hi").param).toBe("parameters.max_tokens");
    expect(overflow(100, 100, words(1000)).param).toBe("content");
  });

  it("a tool result brings the call it answers as part of the turn, ahead of older history", () => {
    const chat = [...history, user("weather?"), assistant("", { tool_calls: [call("c1")] })];
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...chat),
      newMessages: [{ role: "tool", content: words(100), tool_call_id: "c1" }],
      ...reply(0),
      contextTokens: 200,
    });
    expect(out.messages.slice(-2).map((m) => m.role)).toEqual(["assistant", "tool"]);
    expect(() =>
      assembleMessages({
        systemPrompt: null,
        history: newestFirst(...chat),
        newMessages: [{ role: "tool", content: words(100), tool_call_id: "c1" }],
        ...reply(0),
        contextTokens: estimateMessageTokens({ content: words(100), tool_call_id: "c1" }) + 10,
      }),
    ).toThrow(/the tool call this result answers/);
  });

  it("parallel tool results bring the answer with their calls as part of the turn, ahead of older history", () => {
    const chat = [
      ...history,
      user("time and weather?"),
      assistant("", { tool_calls: [call("c1"), call("c2")] }),
    ];
    const results = [
      { role: "tool" as const, content: words(50), tool_call_id: "c1" },
      { role: "tool" as const, content: words(50), tool_call_id: "c2" },
    ];
    const out = assembleMessages({
      systemPrompt: null,
      history: newestFirst(...chat),
      newMessages: results,
      ...reply(0),
      contextTokens: 200,
    });
    expect(out.messages.slice(-3).map((m) => m.role)).toEqual(["assistant", "tool", "tool"]);
    expect(out.includedIds.at(-1)).toBe(chat.at(-1)!.id);
    const tooSmall = () =>
      assembleMessages({
        systemPrompt: null,
        history: newestFirst(...chat),
        newMessages: results,
        ...reply(0),
        contextTokens: results.reduce((n, m) => n + estimateMessageTokens(m), 0) + 10,
      });
    expect(tooSmall).toThrow(/the tool calls these results answer/);
    expect(tooSmall).toThrow(expect.objectContaining({ param: "tool_results" }));
  });
});

it("a turn under a small context window sends only the newest history that fits", async () => {
  const alice = newUser("alice");
  // qwen-tiny-context: a 3072-token window in the test configuration.
  const conv = await createConversation(alice, {
    model: "qwen-tiny-context",
    parameters: { max_tokens: 1024 },
  });
  for (let i = 0; i < 6; i++) {
    await streamTurn(alice, conv.id, { content: `turn ${i} ${words(300)} [[stand-in tokens=2]]` });
  }
  const tag = newTag();
  const { events } = await streamTurn(alice, conv.id, { content: `last [[stand-in echo tag=${tag}]]` });
  expect(events.at(-1)!.event).toBe("message.completed");
  const [req] = await standInRequests(tag);
  const sent = req!.body.messages as { role: string; content: string }[];
  const turns = sent.filter((m) => m.role === "user").map((m) => m.content.split(" ").slice(0, 2).join(" "));
  // ~80 tokens per user message: the oldest turns are dropped, the newest kept in order.
  expect(turns.at(-1)).toBe("last [[stand-in");
  expect(turns.length).toBeGreaterThan(1);
  expect(turns.length).toBeLessThan(7);
  expect(turns.slice(0, -1)).toEqual(
    Array.from({ length: 6 }, (_, i) => `turn ${i}`).slice(7 - turns.length),
  );
  expect(req!.body.max_tokens).toBe(1024);
  expect(req!.status).toBe(200);
});
