/**
 * The Vercel AI SDK's `useChat` transport against edge-chat with no adapter (API.md §2.5): the
 * real `ai` package's `DefaultChatTransport` posts to `/v1/ui/conversations` through the Worker
 * (`exports.default.fetch` as its `fetch`), and `readUIMessageStream` builds the messages
 * `useChat` would show.
 */
import { env, exports } from "cloudflare:workers";
import {
  AbstractChat,
  type ChatInit,
  type ChatState,
  type ChatStatus,
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithToolCalls,
  readUIMessageStream,
  type UIMessage,
  type UIMessageChunk,
  validateUIMessages,
} from "ai";
import Ajv2020 from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { UiMessageTranslator } from "../src/ui/ui-message-stream";
import {
  BASE,
  call,
  createConversation,
  eventually,
  expectError,
  listMessages,
  newTag,
  newUser,
  standInRequests,
} from "./helpers/api";
import { authHeaders } from "./helpers/auth";
import { TIME_TOOL, WEATHER_TOOL } from "./helpers/tools";

const API = `${BASE}/ui/conversations`;

/** `useChat`'s state without React: what `@ai-sdk/react`'s `ReactChatState` keeps, in plain fields. */
class PlainChatState implements ChatState<UIMessage> {
  status: ChatStatus = "ready";
  error: Error | undefined = undefined;
  constructor(public messages: UIMessage[]) {}
  pushMessage = (message: UIMessage) => {
    this.messages = [...this.messages, message];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index: number, message: UIMessage) => {
    this.messages = this.messages.with(index, this.snapshot(message));
  };
  snapshot = <T>(thing: T): T => structuredClone(thing);
}

/** The chat `useChat` drives (`AbstractChat`, the class `@ai-sdk/react`'s `Chat` extends), as a plain object. */
class PlainChat extends AbstractChat<UIMessage> {
  constructor(init: ChatInit<UIMessage>) {
    super({ ...init, state: new PlainChatState(init.messages ?? []) });
  }
}

/** The transport an Expo app would configure, its requests going to the Worker under test. */
async function transportFor(userId: string) {
  return new DefaultChatTransport<UIMessage>({
    api: API,
    headers: await authHeaders(userId),
    fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
  });
}

/** A user message as `useChat`'s `sendMessage({text})` builds it (the id is the client's). */
const userMessage = (text: string, id = crypto.randomUUID().replace(/-/g, "").slice(0, 16)): UIMessage => ({
  id,
  role: "user",
  parts: [{ type: "text", text }],
});

/** Reads a UI message stream to its end: every chunk, and the message it builds. */
async function readAll(stream: ReadableStream<UIMessageChunk>, message?: UIMessage) {
  const [forChunks, forMessage] = stream.tee();
  const chunks: UIMessageChunk[] = [];
  const collect = (async () => {
    for await (const chunk of forChunks) chunks.push(chunk);
  })();
  const errors: unknown[] = [];
  let last: UIMessage | undefined;
  for await (const m of readUIMessageStream({ message, stream: forMessage, onError: (e) => errors.push(e) }))
    last = m;
  await collect;
  if (!last) throw new Error("no message was read");
  return { chunks, message: last, errors };
}

/** Sends `messages` as `useChat` does and reads the answer. */
async function send(
  transport: DefaultChatTransport<UIMessage>,
  chatId: string,
  messages: UIMessage[],
  options: { trigger?: "submit-message" | "regenerate-message"; messageId?: string; body?: object } = {},
) {
  const stream = await transport.sendMessages({
    chatId,
    messages,
    trigger: options.trigger ?? "submit-message",
    messageId: options.messageId,
    abortSignal: undefined,
    body: options.body,
  });
  const last = messages.at(-1);
  // readUIMessageStream builds on the message it is given in place: the caller's stays as sent.
  return readAll(stream, last?.role === "assistant" ? structuredClone(last) : undefined);
}

const textOf = (m: UIMessage) => m.parts.map((p) => (p.type === "text" ? p.text : "")).join("");
const reasoningOf = (m: UIMessage) => m.parts.map((p) => (p.type === "reasoning" ? p.text : "")).join("");

describe("useChat's transport against /v1/ui/conversations", () => {
  it("streams an answer as the UI message stream: start with the stored id, text, finish with usage", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const tag = newTag();
    const transport = await transportFor(user);
    const { chunks, message, errors } = await send(transport, conv.id, [
      userMessage(`Hello [[stand-in tokens=5 tag=${tag}]]`),
    ]);
    expect(errors).toEqual([]);
    expect(chunks.map((c) => c.type)).toEqual([
      "start",
      "start-step",
      "text-start",
      ...Array(5).fill("text-delta"),
      "text-end",
      "finish-step",
      "finish",
    ]);
    const [answer, asked] = await listMessages(user, conv.id);
    expect(message.id).toBe(answer!.id);
    expect(message.role).toBe("assistant");
    expect(textOf(message)).toBe(answer!.content);
    expect(textOf(message).split(" ")).toHaveLength(5);
    expect(chunks[0]).toEqual({
      type: "start",
      messageId: answer!.id,
      messageMetadata: { conversation_id: conv.id, message_id: answer!.id, user_message_id: asked!.id },
    });
    expect(chunks.at(-1)).toMatchObject({ type: "finish", finishReason: "stop" });
    expect(message.metadata).toMatchObject({
      conversation_id: conv.id,
      user_message_id: asked!.id,
      status: "completed",
      finish_reason: "stop",
      usage: { completion_tokens: 5 },
    });
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("answers with the protocol's header, keeps the connection alive with comments, ends with [DONE]", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    // The first token after 1 s: pings (every 300 ms in tests) go out meanwhile.
    const res = await call(user, "POST", "/ui/conversations", {
      id: conv.id,
      messages: [userMessage("Hi [[stand-in tokens=2 ttft=1000 headers_first]]")],
      trigger: "submit-message",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1");
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text).toContain(": ping\n\n");
    const frames = text.split("\n\n").filter((f) => f.startsWith("data: "));
    expect(frames.at(-1)).toBe("data: [DONE]");
    expect(frames.filter((f) => f === "data: [DONE]")).toHaveLength(1);
  });

  it("shows a thinking model's reasoning before its text", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const transport = await transportFor(user);
    const { chunks, message } = await send(transport, conv.id, [
      userMessage("Think [[stand-in thinking reasoning=4 tokens=3]]"),
    ]);
    const types = chunks.map((c) => c.type);
    expect(types.slice(0, 3)).toEqual(["start", "start-step", "reasoning-start"]);
    expect(types.indexOf("reasoning-end")).toBeLessThan(types.indexOf("text-start"));
    expect(message.parts.map((p) => p.type)).toEqual(["step-start", "reasoning", "text"]);
    const [answer] = await listMessages(user, conv.id);
    expect(reasoningOf(message)).toBe(answer!.reasoning_content);
    expect(reasoningOf(message).split(" ")).toHaveLength(4);
    expect(textOf(message)).toBe(answer!.content);
  });

  it("shows tool calls, and sends the outputs addToolOutput adds as tool results", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user, { parameters: { tools: [WEATHER_TOOL] } });
    const tag = newTag();
    const transport = await transportFor(user);
    const asked = userMessage(`Weather in Hangzhou? [[stand-in tool=get_weather tokens=3 tag=${tag}]]`);
    const first = await send(transport, conv.id, [asked]);
    const types = first.chunks.map((c) => c.type);
    expect(types).toContain("tool-input-start");
    expect(types).toContain("tool-input-delta");
    expect(types.indexOf("tool-input-available")).toBeGreaterThan(types.lastIndexOf("tool-input-delta"));
    expect(first.chunks.at(-1)).toMatchObject({ type: "finish", finishReason: "tool-calls" });
    const [callAnswer] = await listMessages(user, conv.id);
    const storedCall = callAnswer!.tool_calls![0]!;
    const part = first.message.parts.find((p) => p.type === "tool-get_weather");
    expect(part).toMatchObject({
      type: "tool-get_weather",
      toolCallId: storedCall.id,
      state: "input-available",
      input: JSON.parse(storedCall.function.arguments),
    });

    // What addToolOutput leaves in the message; the automatic send posts it with its id.
    const withOutput: UIMessage = {
      ...first.message,
      parts: first.message.parts.map((p) =>
        p.type === "tool-get_weather" ? { ...p, state: "output-available", output: { celsius: 18 } } : p,
      ) as UIMessage["parts"],
    };
    const second = await send(transport, conv.id, [asked, withOutput], { messageId: withOutput.id });
    expect(second.errors).toEqual([]);
    const [answer, result] = await listMessages(user, conv.id);
    expect(result).toMatchObject({ role: "tool", tool_call_id: storedCall.id, content: '{"celsius":18}' });
    // The answer continues the same UI message as its next step, under its id; the metadata names the answer.
    expect(second.message.id).toBe(first.message.id);
    expect(second.message.metadata).toMatchObject({ message_id: answer!.id, status: "completed" });
    expect(second.message.parts.map((p) => p.type)).toEqual([
      "step-start",
      "tool-get_weather",
      "step-start",
      "text",
    ]);
    expect(second.message.parts[1]).toMatchObject({ state: "output-available", output: { celsius: 18 } });
    expect(textOf(second.message)).toBe(answer!.content);
    const upstream = await standInRequests(tag);
    expect(upstream).toHaveLength(2);
    expect(upstream[1]!.body.messages.at(-1)).toMatchObject({
      role: "tool",
      tool_call_id: storedCall.id,
      content: '{"celsius":18}',
    });

    // The automatic send retried: the same results are the same turn.
    const again = await send(transport, conv.id, [asked, withOutput], { messageId: withOutput.id });
    expect(again.message.metadata).toMatchObject({ message_id: answer!.id });
    expect(await standInRequests(tag)).toHaveLength(2);
    expect(await listMessages(user, conv.id)).toHaveLength(4);
  });

  it.each(["pattern1", "pattern2", "pattern3", "pattern4"])(
    "streams parallel tool calls cut as DashScope cuts them (%s)",
    async (pattern) => {
      const user = newUser("ui");
      const conv = await createConversation(user, {
        parameters: { tools: [WEATHER_TOOL, TIME_TOOL], parallel_tool_calls: true },
      });
      const transport = await transportFor(user);
      const { chunks, message, errors } = await send(transport, conv.id, [
        userMessage(`Both [[stand-in tool_call calls=2 fragments=${pattern}]]`),
      ]);
      expect(errors).toEqual([]);
      const [answer] = await listMessages(user, conv.id);
      expect(answer!.tool_calls).toHaveLength(2);
      for (const call of answer!.tool_calls!) {
        const streamed = chunks
          .filter((c) => c.type === "tool-input-delta" && c.toolCallId === call.id)
          .map((c) => (c.type === "tool-input-delta" ? c.inputTextDelta : ""))
          .join("");
        expect(JSON.parse(streamed || "{}")).toEqual(JSON.parse(call.function.arguments));
        expect(chunks.filter((c) => c.type === "tool-input-start" && c.toolCallId === call.id)).toEqual([
          { type: "tool-input-start", toolCallId: call.id, toolName: call.function.name },
        ]);
        expect(message.parts.find((p) => "toolCallId" in p && p.toolCallId === call.id)).toMatchObject({
          type: `tool-${call.function.name}`,
          state: "input-available",
          input: JSON.parse(call.function.arguments),
        });
      }
    },
  );

  it("a call cut off by max_tokens (from useChat's body) ends as tool-input-error, the answer as length", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user, { parameters: { tools: [WEATHER_TOOL] } });
    const tag = newTag();
    const transport = await transportFor(user);
    const { chunks, message } = await send(
      transport,
      conv.id,
      [userMessage(`Cut [[stand-in tool=get_weather tag=${tag}]]`)],
      { body: { parameters: { max_tokens: 2 } } },
    );
    const [upstream] = await standInRequests(tag);
    expect(upstream!.body.max_tokens).toBe(2);
    const [answer] = await listMessages(user, conv.id);
    expect(answer).toMatchObject({ finish_reason: "length", tool_calls: null });
    const start = chunks.find((c) => c.type === "tool-input-start");
    expect(start).toBeDefined();
    const toolCallId = start!.type === "tool-input-start" ? start!.toolCallId : "";
    expect(chunks.find((c) => c.type === "tool-input-error")).toMatchObject({
      toolCallId,
      toolName: "get_weather",
    });
    expect(chunks.at(-1)).toMatchObject({ type: "finish", finishReason: "length" });
    expect(message.parts.find((p) => "toolCallId" in p)).toMatchObject({ state: "output-error" });
  });

  it("a terminal event alone (deltas past their retention) still gives the whole answer", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const res = await call(user, "POST", `/conversations/${conv.id}/messages`, {
      content: "x [[stand-in thinking reasoning=3 tokens=4]]",
    });
    const events = (await res.text())
      .split("\n\n")
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: /^data: (.*)$/m.exec(block)?.[1],
      }))
      .filter((e): e is { event: string; data: string } => e.event !== undefined && e.data !== undefined);
    const started = events.find((e) => e.event === "turn.started")!;
    const completed = events.find((e) => e.event === "message.completed")!;
    const translator = new UiMessageTranslator();
    const chunks = [
      ...translator.event(started.event, started.data),
      ...translator.event(completed.event, completed.data),
    ];
    const { message: stored } = JSON.parse(completed.data) as {
      message: { content: string; reasoning_content: string };
    };
    expect(chunks.map((c) => c.type)).toEqual([
      "start",
      "start-step",
      "reasoning-start",
      "reasoning-delta",
      "reasoning-end",
      "text-start",
      "text-delta",
      "text-end",
      "finish-step",
      "finish",
    ]);
    expect(chunks[3]).toMatchObject({ delta: stored.reasoning_content });
    expect(chunks[6]).toMatchObject({ delta: stored.content });
    expect(translator.done).toBe(true);
  });

  it("resumes after a dropped connection: reconnectToStream replays the answer from its start", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const tag = newTag();
    const transport = await transportFor(user);
    const abort = new AbortController();
    const stream = await transport.sendMessages({
      chatId: conv.id,
      messages: [userMessage(`Long [[stand-in tokens=12 itl=100 tag=${tag}]]`)],
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: abort.signal,
    });
    const reader = stream.getReader();
    const seen: UIMessageChunk[] = [];
    while (!seen.some((c) => c.type === "text-delta")) {
      const { done, value } = await reader.read();
      if (done) throw new Error("the stream ended before its text");
      seen.push(value);
    }
    abort.abort();
    await reader.cancel().catch(() => {});

    // Hydrated meanwhile: the answer is there under its id, still streaming; the resume fills it.
    const hydrated = (await (await call(user, "GET", `/ui/conversations/${conv.id}/messages`)).json()) as {
      data: UIMessage[];
    };
    expect(hydrated.data.at(-1)).toMatchObject({
      id: seen[0]?.type === "start" ? seen[0].messageId : "no start",
      role: "assistant",
      metadata: { status: "streaming" },
    });
    const resumed = await transport.reconnectToStream({ chatId: conv.id });
    expect(resumed).not.toBeNull();
    const { chunks, message } = await readAll(resumed!);
    expect(chunks[0]).toEqual(seen[0]);
    expect(chunks.at(-1)).toMatchObject({ type: "finish", finishReason: "stop" });
    const [answer] = await listMessages(user, conv.id);
    expect(message.id).toBe(answer!.id);
    expect(textOf(message)).toBe(answer!.content);
    expect(textOf(message).split(" ")).toHaveLength(12);
    // Nothing in flight any more: 204, which the transport reads as nothing to resume.
    expect(await transport.reconnectToStream({ chatId: conv.id })).toBeNull();
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("is 204 when nothing is in flight, 404 for another user's or an unknown conversation", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const idle = await call(user, "GET", `/ui/conversations/${conv.id}/stream`);
    expect(idle.status).toBe(204);
    expect(await idle.text()).toBe("");
    await expectError(
      await call(newUser("other"), "GET", `/ui/conversations/${conv.id}/stream`),
      404,
      "not_found",
    );
    await expectError(await call(user, "GET", "/ui/conversations/nope/stream"), 404, "not_found");
    await expectError(
      await call(newUser("other"), "GET", `/ui/conversations/${conv.id}/messages`),
      404,
      "not_found",
    );
  });

  it("a retried send with the same message id does not ask twice", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const tag = newTag();
    const transport = await transportFor(user);
    const asked = userMessage(`Once [[stand-in tokens=4 tag=${tag}]]`);
    const first = await send(transport, conv.id, [asked]);
    const retry = await send(transport, conv.id, [asked]);
    expect(retry.message.id).toBe(first.message.id);
    expect(textOf(retry.message)).toBe(textOf(first.message));
    expect(await standInRequests(tag)).toHaveLength(1);
    expect(await listMessages(user, conv.id)).toHaveLength(2);
    // The same id with other content is another message: refused, nothing stored.
    await expectError(
      await call(user, "POST", "/ui/conversations", {
        id: conv.id,
        messages: [{ ...asked, parts: [{ type: "text", text: "something else" }] }],
        trigger: "submit-message",
      }),
      409,
      "conflict",
    );
    expect(await listMessages(user, conv.id)).toHaveLength(2);
  });

  it("regenerate asks again: a sibling of the answer", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const tag = newTag();
    const transport = await transportFor(user);
    const asked = userMessage(`Again [[stand-in tokens=3 tag=${tag}]]`);
    const first = await send(transport, conv.id, [asked]);
    // useChat's regenerate() drops the answer and posts the rest with the answer's id.
    const second = await send(transport, conv.id, [asked], {
      trigger: "regenerate-message",
      messageId: first.message.id,
    });
    expect(second.message.id).not.toBe(first.message.id);
    const [answer, question] = await listMessages(user, conv.id);
    expect(answer!.id).toBe(second.message.id);
    expect(answer).toMatchObject({ parent_id: question!.id, sibling_index: 1, sibling_count: 2 });
    expect(await standInRequests(tag)).toHaveLength(2);
  });

  it("sendMessage with an existing messageId edits: a new branch beside the message", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const transport = await transportFor(user);
    const firstQuestion = userMessage("First [[stand-in tokens=2]]");
    const firstAnswer = await send(transport, conv.id, [firstQuestion]);
    const asked = userMessage("Second [[stand-in tokens=2]]");
    const before = await send(transport, conv.id, [firstQuestion, firstAnswer.message, asked]);
    const [, original] = await listMessages(user, conv.id);

    const edited: UIMessage = {
      ...asked,
      parts: [{ type: "text", text: "Second, edited [[stand-in tokens=3]]" }],
    };
    const after = await send(transport, conv.id, [firstQuestion, firstAnswer.message, edited], {
      messageId: asked.id,
    });
    expect(after.message.id).not.toBe(before.message.id);
    const path = await listMessages(user, conv.id);
    expect(path).toHaveLength(4);
    const [answer, question] = path;
    expect(answer!.id).toBe(after.message.id);
    expect(question).toMatchObject({
      content: "Second, edited [[stand-in tokens=3]]",
      parent_id: original!.parent_id,
      sibling_index: 1,
      sibling_count: 2,
    });
    // The edit retried is the same edit.
    const retried = await send(transport, conv.id, [firstQuestion, firstAnswer.message, edited], {
      messageId: asked.id,
    });
    expect(retried.message.id).toBe(after.message.id);
    // Regenerating after the edit answers the edited message, which the client still calls asked.id.
    const regenerated = await send(transport, conv.id, [firstQuestion, firstAnswer.message, edited], {
      trigger: "regenerate-message",
      messageId: after.message.id,
    });
    const [newest] = await listMessages(user, conv.id);
    expect(newest).toMatchObject({ id: regenerated.message.id, parent_id: question!.id, sibling_count: 2 });
  });

  it("a hydrated message edited, then shown again on its first branch, is still that message", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const transport = await transportFor(user);
    await send(transport, conv.id, [userMessage("Original [[stand-in tokens=2]]")]);
    const hydrate = async () =>
      (
        (await (await call(user, "GET", `/ui/conversations/${conv.id}/messages`)).json()) as {
          data: UIMessage[];
        }
      ).data;
    const [question, firstAnswer] = await hydrate();
    // Edited under the stored id the hydration gave it: the edit keeps that id in the client.
    const edited: UIMessage = {
      ...question!,
      parts: [{ type: "text", text: "Edited [[stand-in tokens=2]]" }],
    };
    await send(transport, conv.id, [edited], { messageId: question!.id });
    const again = await send(transport, conv.id, [edited], { trigger: "regenerate-message" });
    const [editAnswer, editQuestion] = await listMessages(user, conv.id);
    expect(again.message.id).toBe(editAnswer!.id);
    expect(editAnswer!.parent_id).toBe(editQuestion!.id);
    expect(editQuestion!.content).toBe("Edited [[stand-in tokens=2]]");

    // Back on the first branch, hydrated again: the same id names the original, by its content.
    expect(
      (await call(user, "PATCH", `/conversations/${conv.id}`, { active_leaf_id: firstAnswer!.id })).status,
    ).toBe(200);
    const [original] = await hydrate();
    expect(original).toEqual(question);
    const regenerated = await send(transport, conv.id, [original!], { trigger: "regenerate-message" });
    const [newest] = await listMessages(user, conv.id);
    expect(newest).toMatchObject({ id: regenerated.message.id, parent_id: question!.id, sibling_count: 2 });
  });

  it("hydrates useChat: the active path as UIMessages, oldest first, as the stream built them", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user, { parameters: { tools: [WEATHER_TOOL] } });
    const transport = await transportFor(user);
    const thinking = userMessage("Think [[stand-in thinking reasoning=3 tokens=2]]");
    const thought = await send(transport, conv.id, [thinking]);
    const asked = userMessage("Weather? [[stand-in tool=get_weather tokens=2]]");
    const called = await send(transport, conv.id, [thinking, thought.message, asked]);
    const withOutput = structuredClone(called.message);
    withOutput.parts = withOutput.parts.map((p) =>
      p.type === "tool-get_weather" ? { ...p, state: "output-available", output: "18 degrees" } : p,
    ) as UIMessage["parts"];
    const answered = await send(transport, conv.id, [thinking, thought.message, asked, withOutput], {
      messageId: withOutput.id,
    });

    const res = await call(user, "GET", `/ui/conversations/${conv.id}/messages`);
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: UIMessage[] };
    // The AI SDK's own validation of UIMessage objects.
    const messages = await validateUIMessages({ messages: data });
    const stored = (await listMessages(user, conv.id)).toReversed();
    expect(messages.map((m) => [m.id, m.role])).toEqual([
      [stored[0]!.id, "user"],
      [thought.message.id, "assistant"],
      [stored[2]!.id, "user"],
      [answered.message.id, "assistant"],
    ]);
    expect(messages[0]!.parts).toEqual([
      {
        type: "text",
        text: thinking.parts[0]!.type === "text" ? thinking.parts[0]!.text : "",
        state: "done",
      },
    ]);
    expect(messages[1]!.parts).toEqual(thought.message.parts);
    expect(messages[3]!.parts).toEqual(answered.message.parts);
    expect(messages[3]!.metadata).toMatchObject({ message_id: stored[5]!.id, status: "completed" });
  });

  it("takes a history over the 1 MiB JSON body limit, and reads only its last message", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const tag = newTag();
    // Earlier messages are not read: not even their shape is checked.
    const history = Array.from({ length: 300 }, (_, i) => ({
      id: `old${i}`,
      role: "nobody",
      parts: "x".repeat(8000),
    }));
    const body = JSON.stringify({
      id: conv.id,
      messages: [...history, userMessage(`Last [[stand-in tokens=2 tag=${tag}]]`)],
      trigger: "submit-message",
    });
    expect(body.length).toBeGreaterThan(2 * 1_048_576);
    const res = await call(user, "POST", "/ui/conversations", body);
    expect(res.status).toBe(200);
    await res.text();
    const [upstream] = await standInRequests(tag);
    expect(upstream!.body.messages.filter((m) => m.role === "user")).toEqual([
      { role: "user", content: `Last [[stand-in tokens=2 tag=${tag}]]` },
    ]);
  });

  it("refuses a body over MAX_UI_CHAT_BODY_BYTES, also one sent in chunks without a length", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const limit = Number(env.MAX_UI_CHAT_BODY_BYTES);
    const history = Array.from({ length: 50 }, (_, i) =>
      userMessage("x".repeat(Math.ceil(limit / 50)), `m${i}`),
    );
    const body = JSON.stringify({ id: conv.id, messages: [...history, userMessage("Last")] });
    expect(body.length).toBeGreaterThan(limit);
    await expectError(await call(user, "POST", "/ui/conversations", body), 413, "payload_too_large");
    const bytes = new TextEncoder().encode(body);
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 65_536) controller.enqueue(bytes.slice(i, i + 65_536));
        controller.close();
      },
    });
    await expectError(
      await exports.default.fetch(API, {
        method: "POST",
        headers: { ...(await authHeaders(user)), "content-type": "application/json" },
        body: chunked,
      }),
      413,
      "payload_too_large",
    );
    expect(await listMessages(user, conv.id)).toEqual([]);
  });

  it("takes the {id, message} shape of the AI SDK's resume guide", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const transport = new DefaultChatTransport<UIMessage>({
      api: API,
      headers: await authHeaders(user),
      fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
      prepareSendMessagesRequest: ({ id, messages }) => ({ body: { id, message: messages.at(-1) } }),
    });
    const { message } = await send(transport, conv.id, [userMessage("One [[stand-in tokens=3]]")]);
    const [answer] = await listMessages(user, conv.id);
    expect(message.id).toBe(answer!.id);
    expect(textOf(message)).toBe(answer!.content);
  });

  it("sends an image file part as an image_url part", async () => {
    const user = newUser("ui");
    // A model that reads images (the default, qwen-plus, refuses them).
    const conv = await createConversation(user, { model: "qwen3-vl-plus" });
    const tag = newTag();
    const transport = await transportFor(user);
    const url =
      "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    await send(transport, conv.id, [
      {
        id: "photo1",
        role: "user",
        parts: [
          { type: "file", mediaType: "image/png", url },
          { type: "text", text: `What is this? [[stand-in tokens=2 tag=${tag}]]` },
        ],
      },
    ]);
    const [upstream] = await standInRequests(tag);
    expect(upstream!.body.messages.at(-1)).toEqual({
      role: "user",
      content: [
        { type: "image_url", image_url: { url } },
        { type: "text", text: `What is this? [[stand-in tokens=2 tag=${tag}]]` },
      ],
    });
  });

  it("refuses bad requests with the JSON error and stores nothing", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const post = (body: unknown, init?: RequestInit) => call(user, "POST", "/ui/conversations", body, init);
    await expectError(await post("{"), 400, "invalid_request");
    await expectError(await post("[1]"), 400, "invalid_request");
    await expectError(await post({ id: conv.id, messages: [] }), 400, "invalid_request", "messages");
    await expectError(
      await post({
        id: conv.id,
        messages: [{ id: "a1", role: "user", parts: [{ type: "source-url", url: "x" }] }],
      }),
      400,
      "invalid_request",
      "messages.0.parts.0.type",
    );
    await expectError(
      await post({ id: conv.id, messages: [userMessage("hi", "has:colon")] }),
      400,
      "invalid_request",
      "messages.0.id",
    );
    await expectError(
      await post({
        id: conv.id,
        message: {
          id: "a2",
          role: "user",
          parts: [{ type: "file", mediaType: "application/pdf", url: "https://example.com/a.pdf" }],
        },
      }),
      400,
      "invalid_request",
      "message.parts.0.mediaType",
    );
    await expectError(
      await post({ id: conv.id, messages: [userMessage("hi")], trigger: "continue" }),
      400,
      "invalid_request",
      "trigger",
    );
    await expectError(
      await exports.default.fetch(API, {
        method: "POST",
        headers: { ...(await authHeaders(user)), "content-type": "text/plain" },
        body: JSON.stringify({ id: conv.id, messages: [userMessage("hi")] }),
      }),
      415,
      "unsupported_media_type",
    );
    await expectError(
      await post({ id: crypto.randomUUID(), messages: [userMessage("hi")] }),
      404,
      "not_found",
    );
    await expectError(
      await call(newUser("other"), "POST", "/ui/conversations", {
        id: conv.id,
        messages: [userMessage("hi")],
      }),
      404,
      "not_found",
    );
    expect(await listMessages(user, conv.id)).toEqual([]);
  });

  it("regenerating a message that was never stored sends it (useChat's retry after a failed send)", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const transport = await transportFor(user);
    const asked = userMessage("Lost [[stand-in tokens=2]]");
    const { message } = await send(transport, conv.id, [asked], { trigger: "regenerate-message" });
    const [answer, question] = await listMessages(user, conv.id);
    expect(message.id).toBe(answer!.id);
    expect(question!.content).toBe("Lost [[stand-in tokens=2]]");
  });

  it("ends a failed answer with finish and an error chunk, a stopped one with abort", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const transport = await transportFor(user);
    const failed = await send(transport, conv.id, [
      userMessage(`x [[stand-in tokens=8 midstream=openai after=3]]`),
    ]);
    expect(failed.chunks.slice(-3).map((c) => c.type)).toEqual(["finish-step", "finish", "error"]);
    const [failedAnswer] = await listMessages(user, conv.id);
    expect(failedAnswer!.status).not.toBe("completed");
    expect(failed.chunks.at(-2)).toMatchObject({
      finishReason: "error",
      messageMetadata: { status: failedAnswer!.status, error: failedAnswer!.error },
    });
    expect(failed.chunks.at(-1)).toEqual({ type: "error", errorText: failedAnswer!.error!.message });
    expect(failed.errors).toHaveLength(1);
    expect(textOf(failed.message).split(" ")).toHaveLength(3);

    const stream = await transport.sendMessages({
      chatId: conv.id,
      messages: [userMessage("y [[stand-in tokens=40 itl=100]]")],
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: undefined,
    });
    const reader = stream.getReader();
    const first = await reader.read();
    expect(first.value).toMatchObject({ type: "start" });
    const answerId = first.value?.type === "start" ? first.value.messageId : "no start";
    expect((await call(user, "POST", `/messages/${answerId}/stop`)).status).toBe(200);
    const rest: UIMessageChunk[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest.push(value);
    }
    expect(rest.slice(-3).map((c) => c.type)).toEqual(["finish-step", "finish", "abort"]);
    expect(rest.at(-2)).toMatchObject({ finishReason: "other", messageMetadata: { status: "cancelled" } });
  });

  it("every chunk of real streams, and a real hydration, match the OpenAPI document", async () => {
    const doc = (await (await exports.default.fetch("http://localhost/openapi.json")).json()) as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content: Record<string, DocContent> }> }>
      >;
    };
    type DocContent = { schema: object; "x-sse-events"?: { message: object } };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const chunkSchema =
      doc.paths["/v1/ui/conversations"]!.post!.responses["200"]!.content["text/event-stream"]!;
    const validChunk = ajv.compile(chunkSchema["x-sse-events"]!.message);
    const resumed =
      doc.paths["/v1/ui/conversations/{id}/stream"]!.get!.responses["200"]!.content["text/event-stream"]!;
    expect(resumed["x-sse-events"]).toEqual(chunkSchema["x-sse-events"]);
    const validHydration = ajv.compile(
      doc.paths["/v1/ui/conversations/{id}/messages"]!.get!.responses["200"]!.content["application/json"]!
        .schema,
    );

    const user = newUser("ui");
    const conv = await createConversation(user, { parameters: { tools: [WEATHER_TOOL] } });
    const transport = await transportFor(user);
    const chunks: UIMessageChunk[] = [];
    const thought = await send(transport, conv.id, [
      userMessage("a [[stand-in thinking reasoning=2 tokens=2]]"),
    ]);
    chunks.push(...thought.chunks);
    const asked = userMessage("b [[stand-in tool=get_weather]]");
    const called = await send(transport, conv.id, [asked]);
    chunks.push(...called.chunks);
    const failed = await send(transport, conv.id, [
      userMessage("c [[stand-in tokens=5 midstream=openai after=2]]"),
    ]);
    chunks.push(...failed.chunks);
    const types = new Set(chunks.map((c) => c.type));
    for (const type of ["reasoning-delta", "text-delta", "tool-input-delta", "tool-input-available", "error"])
      expect(types).toContain(type);
    for (const c of chunks)
      expect(validChunk(c), `${JSON.stringify(c)}: ${ajv.errorsText(validChunk.errors)}`).toBe(true);

    const res = await call(user, "GET", `/ui/conversations/${conv.id}/messages`);
    const hydrated = await res.json();
    expect(validHydration(hydrated), ajv.errorsText(validHydration.errors)).toBe(true);
  });

  it("the AI SDK's chat (what useChat runs): send, tool call answered automatically, drop, resume, edit, regenerate", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user, { parameters: { tools: [WEATHER_TOOL] } });
    const errors: Error[] = [];
    const chat = new PlainChat({
      id: conv.id,
      transport: await transportFor(user),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
      onToolCall: ({ toolCall }) => {
        // A client-side tool: answered in the app, sent back automatically.
        void chat.addToolOutput({
          tool: toolCall.toolName,
          toolCallId: toolCall.toolCallId,
          output: "sunny",
        });
      },
      onError: (e) => errors.push(e),
    });

    await chat.sendMessage({ text: "Hi [[stand-in tokens=3]]" });
    expect(chat.status).toBe("ready");
    expect(chat.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    const [firstAnswer, firstQuestion] = await listMessages(user, conv.id);
    expect(chat.messages[1]!.id).toBe(firstAnswer!.id);
    expect(textOf(chat.messages[1]!)).toBe(firstAnswer!.content);

    // A tool call, answered by onToolCall and sent back without the app doing anything more.
    await chat.sendMessage({ text: "Weather? [[stand-in tool=get_weather tokens=2]]" });
    await eventually(async () => chat.status === "ready" && (await listMessages(user, conv.id)).length === 6);
    expect(chat.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    const toolAnswer = chat.messages[3]!;
    expect(toolAnswer.parts.map((p) => p.type)).toEqual([
      "step-start",
      "tool-get_weather",
      "step-start",
      "text",
    ]);
    expect(toolAnswer.parts[1]).toMatchObject({ state: "output-available", output: "sunny" });
    const stored = await listMessages(user, conv.id);
    expect(stored[1]).toMatchObject({ role: "tool", content: "sunny" });
    expect(textOf(toolAnswer)).toBe(stored[0]!.content);

    // The app is hydrated from the server: the same messages.
    const hydrated = (await (await call(user, "GET", `/ui/conversations/${conv.id}/messages`)).json()) as {
      data: UIMessage[];
    };
    expect(hydrated.data.map((m) => m.id)).toEqual(
      chat.messages
        .map((m) => m.id)
        .with(0, firstQuestion!.id)
        .with(2, stored[3]!.id),
    );
    expect(hydrated.data[3]!.parts.map((p) => p.type)).toEqual(toolAnswer.parts.map((p) => p.type));

    // Edit the first question: a branch; the chat shows the new path.
    await chat.sendMessage({ text: "Hello instead [[stand-in tokens=2]]", messageId: chat.messages[0]!.id });
    expect(chat.messages).toHaveLength(2);
    const [edited, editedQuestion] = await listMessages(user, conv.id);
    expect(chat.messages[1]!.id).toBe(edited!.id);
    expect(editedQuestion).toMatchObject({
      content: "Hello instead [[stand-in tokens=2]]",
      sibling_count: 2,
    });

    // Regenerate it.
    await chat.regenerate();
    const [regenerated] = await listMessages(user, conv.id);
    expect(chat.messages[1]!.id).toBe(regenerated!.id);
    expect(regenerated).toMatchObject({ parent_id: editedQuestion!.id, sibling_count: 2 });

    // A long answer whose connection drops: the chat resumes it and ends with the stored answer.
    const sending = chat.sendMessage({ text: "Long [[stand-in tokens=15 itl=80]]" });
    await eventually(async () => chat.messages.length === 4 && textOf(chat.messages[3]!).length > 0);
    await chat.stop(); // useChat's stop only closes the connection: the answer goes on.
    await sending;
    await chat.resumeStream();
    expect(chat.status).toBe("ready");
    const [long] = await listMessages(user, conv.id);
    expect(long!.status).toBe("completed");
    expect(chat.messages).toHaveLength(4);
    expect(chat.messages[3]!.id).toBe(long!.id);
    expect(textOf(chat.messages[3]!)).toBe(long!.content);
    expect(errors).toEqual([]);
  });
});
