import { DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DroppingProxy, startDroppingProxy } from "./dropping-proxy";
import { type RunningWorker, startRunningWorker } from "./running-worker";

/**
 * The AI SDK's stock transport (what `useChat` runs) against a running Worker over real TCP:
 * send, stream, the connection cut mid-answer as a phone losing its network, resume with the
 * transport's own `reconnectToStream`, finish; then 204 once nothing is in flight. The stand-in's
 * `tokens=N itl=MS` directive makes the answer long and slow enough to cut.
 */

let worker: RunningWorker;
let proxy: DroppingProxy;
let token: string;

beforeAll(async () => {
  worker = await startRunningWorker();
  proxy = await startDroppingProxy(worker.origin);
  token = await worker.tokenFor("ui-chat-running");
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await worker?.close();
});

const TOKENS = 40;

const textOf = (message: UIMessage | undefined) =>
  (message?.parts ?? []).map((part) => (part.type === "text" ? part.text : "")).join("");

describe("useChat's DefaultChatTransport against a running Worker", () => {
  it("sends, streams, loses the connection, resumes from the start and finishes", async () => {
    const created = await fetch(`${proxy.origin}/v1/conversations`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(created.status).toBe(201);
    const { id: chatId } = (await created.json()) as { id: string };

    const transport = new DefaultChatTransport<UIMessage>({
      api: `${proxy.origin}/v1/ui/conversations`,
      headers: { authorization: `Bearer ${token}` },
    });
    const stream = await transport.sendMessages({
      chatId,
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: undefined,
      messages: [
        {
          id: "user-msg-1",
          role: "user",
          parts: [{ type: "text", text: `Tell me a story [[stand-in tokens=${TOKENS} itl=40]]` }],
        },
      ],
    });

    // Read until some text has arrived, then cut every connection.
    const reader = stream.getReader();
    const seen: UIMessageChunk[] = [];
    let deltas = 0;
    let cutError: unknown = null;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        seen.push(value);
        if (value.type === "text-delta" && ++deltas === 5) expect(proxy.dropAll()).toBeGreaterThan(0);
      }
    } catch (error) {
      cutError = error;
    }
    expect(cutError).not.toBeNull();
    const start = seen.find((chunk) => chunk.type === "start");
    const answerId = start?.type === "start" ? start.messageId : undefined;
    expect(answerId).toBeTruthy();
    expect(seen.some((chunk) => chunk.type === "finish")).toBe(false);

    // Resume as useChat does after a reload or on app foreground: the answer from its start.
    const resumed = await transport.reconnectToStream({ chatId });
    expect(resumed).not.toBeNull();
    let last: UIMessage | undefined;
    const chunks: UIMessageChunk[] = [];
    const tee = resumed!.pipeThrough(
      new TransformStream<UIMessageChunk, UIMessageChunk>({
        transform(chunk, controller) {
          chunks.push(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
    for await (const message of readUIMessageStream({ stream: tee })) last = message;
    expect(last?.id).toBe(answerId);
    expect(chunks.at(-1)?.type).toBe("finish");
    expect(chunks.filter((chunk) => chunk.type === "start")).toHaveLength(1);

    // What the app shows is what the Worker stored, every token once.
    const stored = await fetch(`${proxy.origin}/v1/messages/${answerId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const message = (await stored.json()) as { status: string; content: string };
    expect(message.status).toBe("completed");
    expect(textOf(last)).toBe(message.content);
    expect(message.content.split(" ")).toHaveLength(TOKENS);

    // Nothing in flight any more: the transport's resume finds nothing (204).
    expect(await transport.reconnectToStream({ chatId })).toBeNull();
  }, 60_000);
});
