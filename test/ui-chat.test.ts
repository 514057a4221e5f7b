/**
 * The Vercel AI SDK's `useChat` transport against edge-chat with no adapter (API.md §2.5): the
 * real `ai` package's `DefaultChatTransport` posts to `/v1/ui/conversations` through the Worker
 * (`exports.default.fetch` as its `fetch`), and `readUIMessageStream` builds the messages
 * `useChat` would show.
 */
import { exports } from "cloudflare:workers";
import {
  DefaultChatTransport,
  readUIMessageStream,
  type UIMessage,
  type UIMessageChunk,
  validateUIMessages,
} from "ai";
import { describe, expect, it } from "vitest";
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
import { WEATHER_TOOL } from "./helpers/tools";

const API = `${BASE}/ui/conversations`;

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
  return readAll(stream, last?.role === "assistant" ? last : undefined);
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
      messageMetadata: { conversation_id: conv.id, user_message_id: asked!.id },
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

  it("answers with the protocol's header and ends with [DONE]", async () => {
    const user = newUser("ui");
    const conv = await createConversation(user);
    const res = await call(user, "POST", "/ui/conversations", {
      id: conv.id,
      messages: [userMessage("Hi [[stand-in tokens=2]]")],
      trigger: "submit-message",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1");
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const frames = (await res.text()).split("\n\n").filter((f) => f.startsWith("data: "));
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
});
