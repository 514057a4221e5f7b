import { SseDecoder, type SseEvent } from "../sse/decode";
import { parseWellFormedJson, truncateText } from "../text/well-formed";
import { readWithin } from "./idle-watchdog";
import type { ChatCompletionChunk, StreamErrorInfo, StreamEvent } from "./types";

/** The data of the terminating event, `data: [DONE]`. */
const DONE_SENTINEL = "[DONE]";
/** The comment that native DashScope frames use to carry an HTTP status, e.g. `:HTTP_STATUS/429`. */
const HTTP_STATUS_COMMENT_PREFIX = "HTTP_STATUS/";
/** Chunk ids are `chatcmpl-<uuid>`, and the uuid is the request id that errors report (PROTOCOL §2.2). */
const CHUNK_ID_PREFIX = "chatcmpl-";
/** Cap on upstream text copied into an error message (a native frame whose data is not JSON). */
const MAX_ECHOED_TEXT_CHARS = 200;

/** Shared, never mutated: `[DONE]` carries no payload, so one object serves every stream. */
const DONE_EVENT: StreamEvent = Object.freeze({ type: "done" }) as StreamEvent;

/** Returned by pushes that complete no event (most of them when the body arrives in small pieces). */
const NO_EVENTS: readonly StreamEvent[] = Object.freeze([]);

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === "string" && value.length > 0 ? value : fallback;
}

function requestIdFrom(frame: JsonObject): string | null {
  if (typeof frame.request_id === "string" && frame.request_id.length > 0) return frame.request_id;
  const id = frame.id;
  if (typeof id === "string" && id.startsWith(CHUNK_ID_PREFIX) && id.length > CHUNK_ID_PREFIX.length) {
    return id.slice(CHUNK_ID_PREFIX.length);
  }
  return null;
}

function malformed(message: string, status: number | null = null): StreamEvent {
  const error: StreamErrorInfo = {
    shape: "malformed",
    status,
    code: "malformed_event",
    message,
    requestId: null,
  };
  return { type: "error", error };
}

/**
 * Synchronous decoder of a DashScope compatible-mode SSE body into {@link StreamEvent}s.
 *
 * Recognises, per PROTOCOL.md §2 and §3.4:
 * - `data: {chunk}` → `chunk`; `data: [DONE]` → `done`;
 * - Shape A, `data: {"error": {code, message, …}, "id": "chatcmpl-…"}` → `error` (`openai`, status null);
 * - Shape B, a native frame `event:error` + `:HTTP_STATUS/NNN` + `data:{request_id, code, message}`
 *   → `error` (`native`, status from the comment);
 * - a `data:` that is not JSON, or JSON that is neither a chunk nor an error → `error` (`malformed`).
 *
 * It does not judge the sequence (events after `[DONE]` or an error are still reported); that is the
 * consumer's job, as is deciding what EOF without `[DONE]` means.
 */
export class DashScopeEventDecoder {
  private readonly sse: SseDecoder;
  /** Events produced by the current `push`/`end` call; handed to the caller and replaced. */
  private out: StreamEvent[] = [];
  /** Status from a `:HTTP_STATUS/NNN` comment, applied to the event it belongs to. */
  private pendingStatus: number | null = null;
  private atEof = false;

  constructor() {
    this.sse = new SseDecoder({
      onEvent: (event) => this.onSseEvent(event),
      onComment: (comment) => this.onComment(comment),
    });
  }

  /** Decodes the next slice of the body; returns the events it completed (often none or one). */
  push(bytes: Uint8Array): readonly StreamEvent[] {
    this.sse.push(bytes);
    return this.take();
  }

  /** Ends the body: returns an event still pending at EOF (see {@link SseDecoder.end}). Idempotent. */
  end(): readonly StreamEvent[] {
    this.atEof = true;
    this.sse.end();
    return this.take();
  }

  private take(): readonly StreamEvent[] {
    const events = this.out;
    if (events.length === 0) return NO_EVENTS;
    this.out = [];
    return events;
  }

  private onComment(comment: string): void {
    if (comment.startsWith(HTTP_STATUS_COMMENT_PREFIX)) {
      const status = Number.parseInt(comment.slice(HTTP_STATUS_COMMENT_PREFIX.length), 10);
      this.pendingStatus = Number.isInteger(status) && status >= 100 && status <= 599 ? status : null;
    }
  }

  private onSseEvent(event: SseEvent): void {
    const status = this.pendingStatus;
    this.pendingStatus = null;
    this.out.push(this.interpret(event, status));
  }

  private interpret(event: SseEvent, status: number | null): StreamEvent {
    const data = event.data;
    if (data === DONE_SENTINEL) return DONE_EVENT;

    let parsed: unknown;
    try {
      parsed = parseWellFormedJson(data);
    } catch {
      if (event.event === "error") return nativeError(null, data, status);
      return malformed(
        this.atEof
          ? "Upstream stream ended inside an incomplete event."
          : `Upstream sent an event whose data is not JSON (${data.length} characters).`,
        status,
      );
    }
    if (!isObject(parsed))
      return malformed("Upstream sent an event whose data is not a JSON object.", status);

    if (event.event === "error") return nativeError(parsed, data, status);
    if (isObject(parsed.error)) {
      const error: StreamErrorInfo = {
        shape: "openai",
        status: null,
        code: stringOr(parsed.error.code, stringOr(parsed.error.type, "unknown_error")),
        message: stringOr(parsed.error.message, ""),
        requestId: requestIdFrom(parsed),
      };
      return { type: "error", error };
    }
    if (Array.isArray(parsed.choices)) {
      return { type: "chunk", chunk: parsed as unknown as ChatCompletionChunk };
    }
    // A native frame without `event:error` (the native protocol's own error layout) still carries
    // the status comment and a top-level `code`.
    if (status !== null && status >= 400 && typeof parsed.code === "string") {
      return nativeError(parsed, data, status);
    }
    return malformed("Upstream sent a JSON event that is neither a chunk nor an error.", status);
  }
}

function nativeError(frame: JsonObject | null, rawData: string, status: number | null): StreamEvent {
  const error: StreamErrorInfo = {
    shape: "native",
    status,
    code: frame ? stringOr(frame.code, "unknown_error") : "unknown_error",
    message: frame ? stringOr(frame.message, "") : truncateText(rawData, MAX_ECHOED_TEXT_CHARS),
    requestId: frame ? requestIdFrom(frame) : null,
  };
  return { type: "error", error };
}

/**
 * Reads a DashScope SSE response body and yields its events in order, ending at EOF.
 *
 * EOF without `[DONE]` simply ends the iteration; the consumer decides what that means. A read
 * failure (connection reset) is thrown as is. When `signal` aborts, the body is cancelled and the
 * abort reason is thrown. When `idleTimeoutMs` passes without an event (a chunk, an error frame,
 * `[DONE]`; comment lines do not count, see `IdleWatchdog`), the body is cancelled and
 * `UpstreamIdleTimeout` is thrown. Leaving the loop early (`break`/`return`) cancels the body as
 * well, so the upstream connection is not kept open.
 */
export async function* decodeDashScopeStream(
  body: ReadableStream<Uint8Array>,
  opts?: { signal?: AbortSignal; idleTimeoutMs?: number },
): AsyncGenerator<StreamEvent> {
  const signal = opts?.signal;
  signal?.throwIfAborted();
  const reader = body.getReader();
  const decoder = new DashScopeEventDecoder();
  // Cancelling the reader settles a pending read() with done:true, which unblocks the loop below.
  const onAbort = () => {
    reader.cancel(signal?.reason).catch(() => {});
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const idleMs = opts?.idleTimeoutMs ?? 0;
  let finished = false;
  try {
    let lastEventAt = Date.now();
    for (;;) {
      const { done, value } = await readWithin(reader, idleMs, lastEventAt);
      signal?.throwIfAborted();
      if (done) break;
      const events = decoder.push(value);
      for (const event of events) yield event;
      // Counted from when the consumer took the events: time it spends not pulling is not the upstream's.
      if (events.length > 0) lastEventAt = Date.now();
    }
    finished = true;
    for (const event of decoder.end()) yield event;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
