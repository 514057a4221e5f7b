import { exports } from "cloudflare:workers";
import { expect, inject } from "vitest";
import type { Conversation, Message } from "../../src/store/types";
import type {
  ApiMessage,
  ErrorBody,
  MessageCompletedData,
  MessageDeltaData,
  MessageFailedData,
  TurnStartedData,
} from "./api-types";
import { authHeaders } from "./auth";

export const BASE = "http://localhost/v1";

/** A user id of its own for each test, so tests sharing the local D1 cannot see each other's rows. */
export const newUser = (name: string) => `${name}-${crypto.randomUUID()}`;

/** Calls the Worker as `userId`; a non-string body is sent as JSON. */
export async function call(
  userId: string,
  method: string,
  path: string,
  body?: unknown,
  init: RequestInit = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    ...(await authHeaders(userId)),
    ...(init.headers as Record<string, string>),
  };
  let payload: string | undefined;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  return exports.default.fetch(`${BASE}${path}`, { ...init, method, headers, body: payload });
}

/** Creates a conversation and returns it. */
export async function createConversation(
  userId: string,
  body: Record<string, unknown> = {},
): Promise<Conversation> {
  const res = await call(userId, "POST", "/conversations", body);
  expect(res.status).toBe(201);
  return (await res.json()) as Conversation;
}

/** Asserts the JSON error envelope and returns its `error`. */
export async function expectError(res: Response, status: number, code: string, param?: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

/**
 * One SSE event of an answer stream as a client sees it, told apart by `event`. The payloads are the
 * server's JSON taken at its word (test/openapi.test.ts validates them against the document).
 */
export type SseEvent = { id: string | null } & (
  | { event: "turn.started"; data: TurnStartedData }
  | { event: "message.delta"; data: MessageDeltaData }
  | { event: "message.completed"; data: MessageCompletedData }
  | { event: "message.failed"; data: MessageFailedData }
);

const EVENT_NAMES: readonly string[] = [
  "turn.started",
  "message.delta",
  "message.completed",
  "message.failed",
];
const isEventName = (name: string): name is SseEvent["event"] => EVENT_NAMES.includes(name);

/** The payload of `event`, which must be `turn.started` (throws otherwise, failing the test). */
export function startedData(event: SseEvent | null | undefined): TurnStartedData {
  if (event?.event !== "turn.started") throw new Error(`expected turn.started, got ${event?.event}`);
  return event.data;
}

/** The stored message of `event`, which must be terminal (throws otherwise, failing the test). */
export function endMessage(event: SseEvent | null | undefined): ApiMessage {
  if (event?.event !== "message.completed" && event?.event !== "message.failed") {
    throw new Error(`expected message.completed or message.failed, got ${event?.event}`);
  }
  return event.data.message;
}

/** Parses a whole SSE text into events (comments are counted separately). */
export function parseSse(text: string): { events: SseEvent[]; comments: string[] } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  for (const block of text.split(/\n\n/)) {
    if (block.trim() === "") continue;
    let id: string | null = null;
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) comments.push(line.slice(1).trim());
      else if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (!data.length) continue;
    if (!isEventName(event)) throw new Error(`unknown event ${event}`);
    events.push({ id, event, data: JSON.parse(data.join("\n")) });
  }
  return { events, comments };
}

/** Reads a whole answer stream. */
export async function readSse(res: Response): Promise<{ events: SseEvent[]; comments: string[] }> {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  return parseSse(await res.text());
}

/** Sends a streamed turn and reads it to the end. */
export async function streamTurn(userId: string, conversationId: string, body: Record<string, unknown>) {
  const res = await call(userId, "POST", `/conversations/${conversationId}/messages`, body);
  return readSse(res);
}

/** A unique tag for the stand-in's request log. */
export const newTag = () => crypto.randomUUID().replace(/-/g, "").slice(0, 16);

/** One message of a chat request as the stand-in received it. */
export interface UpstreamRequestMessage {
  role: string;
  content: unknown;
  tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  [field: string]: unknown;
}

/** A chat request body as the stand-in received it: the fields tests read, the rest as sent. */
export interface UpstreamRequestBody {
  model: string;
  messages: UpstreamRequestMessage[];
  stream?: boolean;
  stream_options?: unknown;
  max_tokens?: number;
  n?: number;
  [field: string]: unknown;
}

/** What the stand-in saw of one image part (`ImagePart` in tools/dashscope-stand-in/image-parts.mjs). */
export interface StandInImage {
  /** 0-based indexes into `messages` and the message's `content`. */
  message: number;
  part: number;
  kind: "data_url" | "url";
  url?: string;
  media_type: string | null;
  bytes: number | null;
  /** Of the decoded data URL, or of the body fetched from the URL (null when it could not be fetched). */
  sha256: string | null;
}

/** One entry of the stand-in's request log (`LogEntry` in tools/dashscope-stand-in/request-log.mjs). */
export interface StandInRequest {
  seq: number;
  tag: string | null;
  model: string | null;
  stream: boolean;
  include_usage: boolean;
  body: UpstreamRequestBody;
  images: StandInImage[];
  directive: Record<string, unknown>;
  request_id: string;
  authorized: boolean;
  attempt: number;
  status: number | null;
  outcome: null | "completed" | "error" | "client_closed" | "disconnected" | "midstream_error" | "hanging";
  started_at: number;
  ended_at: number | null;
  tokens_sent: number;
}

/** The stand-in's log entries of requests carrying `tag`. */
export async function standInRequests(tag: string): Promise<StandInRequest[]> {
  const res = await fetch(`${inject("standInControlUrl")}/__stand-in/requests?tag=${tag}`);
  return (await res.json()) as StandInRequest[];
}

/** Lists a conversation's stored messages, newest first. */
export async function listMessages(userId: string, conversationId: string): Promise<Message[]> {
  const res = await call(userId, "GET", `/conversations/${conversationId}/messages?limit=100`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Message[] }).data;
}

/** Polls until `check` returns a value (for answers finishing after the client left). */
export async function eventually<T>(
  check: () => Promise<T | null | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads an SSE response event by event (comments skipped). */
export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";

  constructor(res: Response) {
    expect(res.status).toBe(200);
    this.reader = res.body!.getReader();
  }

  /** The next event, or null at the end of the stream. */
  async next(): Promise<SseEvent | null> {
    for (;;) {
      const end = this.buffer.indexOf("\n\n");
      if (end !== -1) {
        const block = this.buffer.slice(0, end + 2);
        this.buffer = this.buffer.slice(end + 2);
        const [event] = parseSse(block).events;
        if (event) return event;
        continue;
      }
      const { value, done } = await this.reader.read();
      if (done) return null;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }

  /** Every remaining event. */
  async rest(): Promise<SseEvent[]> {
    const out: SseEvent[] = [];
    for (let e = await this.next(); e; e = await this.next()) out.push(e);
    return out;
  }

  /** Hangs up. */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

/** Sends a streamed turn and returns a reader of its events. */
export async function openTurn(
  userId: string,
  conversationId: string,
  body: Record<string, unknown>,
  init: RequestInit = {},
) {
  return new SseReader(await call(userId, "POST", `/conversations/${conversationId}/messages`, body, init));
}

/** Resumes an answer's stream after `after` (via Last-Event-ID). */
export async function resume(userId: string, messageId: string, after?: number) {
  const headers: Record<string, string> = after === undefined ? {} : { "last-event-id": String(after) };
  return call(userId, "GET", `/messages/${messageId}/events`, undefined, { headers });
}
