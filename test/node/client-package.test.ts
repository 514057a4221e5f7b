import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AnswerEvent,
  type AnswerStream,
  EdgeChatClient,
  EdgeChatError,
} from "../../packages/client/src";
import { type DroppingProxy, startDroppingProxy } from "./dropping-proxy";
import { ROOT, type RunningWorker, startRunningWorker } from "./running-worker";

/**
 * packages/client against a running Worker over real TCP, through a proxy that cuts connections
 * mid-answer. The stand-in's `tokens=N itl=MS` directives make answers long and slow enough to
 * cut (tools/dashscope-stand-in/README.md).
 */

let worker: RunningWorker;
let proxy: DroppingProxy;
let client: EdgeChatClient;

beforeAll(async () => {
  worker = await startRunningWorker();
  proxy = await startDroppingProxy(worker.origin);
  const token = await worker.tokenFor("client-package");
  client = new EdgeChatClient({ baseUrl: proxy.origin, token: () => token });
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await worker?.close();
});

/** Reads `stream` to its end; `onEvent` runs after each event is recorded. */
async function collect(
  stream: AnswerStream,
  onEvent: (event: AnswerEvent, count: number) => void = () => {},
) {
  const events: { id: number; event: AnswerEvent }[] = [];
  for await (const event of stream) {
    events.push({ id: Number(stream.lastEventId), event });
    onEvent(event, events.length);
  }
  return events;
}

const textOf = (events: { event: AnswerEvent }[]) =>
  events.map(({ event }) => (event.type === "message.delta" ? (event.content ?? "") : "")).join("");

/** Asserts ids strictly increase (each event once, in order) and the last event completed the answer. */
function expectWhole(events: { id: number; event: AnswerEvent }[], tokens: number) {
  const ids = events.map((e) => e.id);
  expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
  expect(events[0]?.event.type).toBe("turn.started");
  const last = events.at(-1)?.event;
  if (last?.type !== "message.completed") throw new Error(`ended with ${last?.type}`);
  expect(last.message.status).toBe("completed");
  expect(last.message.content).toBe(textOf(events));
  expect(textOf(events).split(" ")).toHaveLength(tokens);
  return last.message;
}

describe("packages/client", () => {
  it("its generated types are those @hey-api/openapi-ts makes from the Worker's /openapi.json now", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "edge-chat-client-types-"));
    try {
      writeFileSync(
        path.join(dir, "openapi.json"),
        await (await fetch(`${worker.origin}/openapi.json`)).text(),
      );
      const run = spawnSync(
        process.execPath,
        [
          "scripts/generate-client-types.mjs",
          "--from",
          path.join(dir, "openapi.json"),
          "--out",
          path.join(dir, "gen"),
        ],
        { cwd: ROOT, encoding: "utf8" },
      );
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      const committed = path.join(ROOT, "packages/client/src/generated");
      const files = readdirSync(committed).sort();
      expect(readdirSync(path.join(dir, "gen")).sort()).toEqual(files);
      for (const file of files)
        expect(readFileSync(path.join(dir, "gen", file), "utf8"), `${file}: run npm run client:types`).toBe(
          readFileSync(path.join(committed, file), "utf8"),
        );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("creates, lists and sends without streaming", async () => {
    const conversation = await client.createConversation({ title: "Package" });
    const page = await client.listConversations({ limit: 50 });
    expect(page.data.map((c) => c.id)).toContain(conversation.id);
    const turn = await client.send(conversation.id, { content: "hi [[stand-in tokens=3]]" });
    expect(turn.assistant_message).toMatchObject({ status: "completed", parent_id: turn.user_message.id });
  });

  it("carries the D1 bookmark forward: from each response and a stream's terminal event to the next request", async () => {
    const sent: (string | null)[] = [];
    const received: (string | null)[] = [];
    const token = await worker.tokenFor("client-package-bookmarks");
    const recording = new EdgeChatClient({
      baseUrl: worker.origin,
      token,
      fetch: async (input, init) => {
        sent.push(new Headers(init?.headers).get("x-d1-bookmark"));
        const response = await fetch(input, init);
        received.push(response.headers.get("x-d1-bookmark"));
        return response;
      },
    });
    expect(recording.d1Bookmark).toBeNull();
    const conversation = await recording.createConversation({ title: "Bookmarks" });
    expect(sent).toEqual([null]);
    expect(received[0]).toMatch(/^[0-9]{4}~[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/);
    expect(recording.d1Bookmark).toBe(received[0]);
    await recording.getConversation(conversation.id);
    expect(sent[1]).toBe(received[0]);

    const beforeTurn = recording.d1Bookmark!;
    const events = await collect(recording.stream(conversation.id, { content: "hi [[stand-in tokens=3]]" }));
    const last = events.at(-1)!.event;
    if (last.type !== "message.completed") throw new Error(`ended with ${last.type}`);
    expect(last.d1_bookmark! > beforeTurn).toBe(true);
    // The stream's own header may be newer still (a short answer can be stored before it is sent).
    expect(recording.d1Bookmark! >= last.d1_bookmark!).toBe(true);
    const held = recording.d1Bookmark;
    const page = await recording.listMessages(conversation.id);
    expect(sent.at(-1)).toBe(held);
    expect(page.data.find((m) => m.id === last.message.id)?.status).toBe("completed");

    // An app that stored the bookmark starts from it.
    const restarted = new EdgeChatClient({
      baseUrl: worker.origin,
      token,
      d1Bookmark: recording.d1Bookmark!,
    });
    expect(restarted.d1Bookmark).toBe(recording.d1Bookmark);

    // One stored before bookmarks named their database (no `NNNN~` tag) sorts after every tagged
    // one here; the first tagged bookmark received replaces it all the same.
    const untagged = "ffffffff-ffffffff-ffffffff-ffffffffffffffffffffffffffffffff";
    const upgraded = new EdgeChatClient({ baseUrl: worker.origin, token, d1Bookmark: untagged });
    await upgraded.listConversations();
    expect(upgraded.d1Bookmark).toMatch(/^[0-9]{4}~[0-9a-f-]{59}$/);
  });

  it("a streamed send survives connections cut mid-answer, every event once and in order", async () => {
    const conversation = await client.createConversation();
    const stream = client.stream(conversation.id, { content: "a long one [[stand-in tokens=60 itl=30]]" });
    let cuts = 0;
    const events = await collect(stream, (event, count) => {
      // Two cuts: after the 5th and the 25th event, each while the answer is still generating.
      if (event.type === "message.delta" && (count === 5 || count === 25)) cuts += proxy.dropAll();
    });
    expect(cuts).toBeGreaterThanOrEqual(2);
    expect(stream.reconnects).toBeGreaterThanOrEqual(2);
    const message = expectWhole(events, 60);
    expect(await client.getMessage(message.id)).toMatchObject({
      status: "completed",
      content: message.content,
    });
  }, 60_000);

  it("a cut before turn.started sends again with the same client_message_id: one turn, not two", async () => {
    const conversation = await client.createConversation();
    // The model's first byte comes after 1.5 s; the cut comes at 150 ms, before any event.
    const stream = client.stream(conversation.id, { content: "slow start [[stand-in tokens=8 ttft=1500]]" });
    const timer = setTimeout(() => proxy.dropAll(), 150);
    const events = await collect(stream);
    clearTimeout(timer);
    expect(stream.reconnects).toBeGreaterThanOrEqual(1);
    expectWhole(events, 8);
    const messages = await client.listMessages(conversation.id);
    expect(messages.data.map((m) => m.role)).toEqual(["assistant", "user"]);
  }, 60_000);

  it("stop ends the stream with message.failed, status cancelled, partial content kept", async () => {
    const conversation = await client.createConversation();
    const stream = client.stream(conversation.id, { content: "stop me [[stand-in tokens=200 itl=30]]" });
    let stopped: Promise<unknown> | null = null;
    const events = await collect(stream, (event, count) => {
      if (event.type === "message.delta" && count === 4) stopped = stream.stop();
    });
    await stopped;
    const last = events.at(-1)?.event;
    if (last?.type !== "message.failed") throw new Error(`ended with ${last?.type}`);
    expect(last.message.status).toBe("cancelled");
    expect(last.message.content).toBe(textOf(events));
    expect(textOf(events).split(" ").length).toBeLessThan(200);
  }, 60_000);

  it("regenerate streams a sibling answer, resumable the same way", async () => {
    const conversation = await client.createConversation();
    const first = await client.send(conversation.id, { content: "again [[stand-in tokens=30 itl=20]]" });
    const answer = first.assistant_message!;
    const stream = client.regenerate(answer.id, {}, { reconnectDelayMs: 50 });
    const events = await collect(stream, (event, count) => {
      if (event.type === "message.delta" && count === 3) proxy.dropAll();
    });
    expect(stream.reconnects).toBeGreaterThanOrEqual(1);
    const message = expectWhole(events, 30);
    expect(message.id).not.toBe(answer.id);
    expect(message.parent_id).toBe(answer.parent_id);
    // The answer resumed later by its id replays every event from the start.
    const replay = await collect(client.resume(message.id));
    expect(replay.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(textOf(replay)).toBe(message.content);
  }, 60_000);

  it("error responses reject with EdgeChatError: status, code, message", async () => {
    const stream = client.stream("nope", { content: "hi" });
    const error = await stream.finalMessage().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(EdgeChatError);
    expect(error).toMatchObject({ status: 404, code: "not_found" });
    const unauthorized = new EdgeChatClient({ baseUrl: proxy.origin, token: "not-a-token" });
    await expect(unauthorized.listConversations()).rejects.toMatchObject({
      status: 401,
      code: "unauthorized",
    });
  });
});
