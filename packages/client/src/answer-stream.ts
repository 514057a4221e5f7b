import { EdgeChatError, errorOf } from "./errors";
import type { AnswerEvent, Message } from "./generated";
import { sseEvents } from "./sse";

const EVENT_TYPES: ReadonlySet<string> = new Set<AnswerEvent["type"]>([
  "turn.started",
  "message.delta",
  "message.completed",
  "message.failed",
]);

/** An event's `data` as the server sends it: an object whose `type` is one of the four names. */
function isAnswerEvent(value: unknown): value is AnswerEvent {
  return (
    typeof value === "object" &&
    value !== null &&
    "type" in value &&
    typeof value.type === "string" &&
    EVENT_TYPES.has(value.type)
  );
}

/** `data` parsed, or null when it is not JSON (not an answer event: skipped, not a dropped connection). */
function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

/** How a stream (re)connects: the first request, and the resumption once the answer's id is known. */
export interface StreamRequests {
  /**
   * The request that starts the answer (null when resuming a known answer). It is sent again when
   * the connection drops before `turn.started` (the send carries a `client_message_id`, so the
   * server attaches to the same turn).
   */
  open: ((signal: AbortSignal) => Promise<Response>) | null;
  /** `GET /v1/messages/{id}/events` with `Last-Event-ID`. */
  resume(messageId: string, lastEventId: string | null, signal: AbortSignal): Promise<Response>;
  /** `POST /v1/messages/{id}/stop`. */
  stop(messageId: string): Promise<Message>;
  /** Given the terminal event's `d1_bookmark` (the stored answer's D1 bookmark), when it has one. */
  bookmark?(bookmark: string): void;
}

export interface ReconnectOptions {
  /** Reconnections in a row without a new event before giving up with `connection_lost`; default 5. */
  maxReconnects?: number;
  /** First wait before reconnecting, doubled each time in a row (at most 8 s); default 250 ms. */
  reconnectDelayMs?: number;
  /** Ends the stream (and its connection) from the caller's side; the answer goes on on the server. */
  signal?: AbortSignal;
}

const MAX_RECONNECT_DELAY_MS = 8000;

/**
 * One answer's events, each exactly once and in order, however often the connection drops: after
 * a drop it reconnects to `GET /v1/messages/{id}/events` with the last event id it delivered
 * (`Last-Event-ID`), and drops any event it already delivered (ids increase within an answer).
 * Iterate it once (`for await`); it ends after `message.completed` or `message.failed`.
 *
 * Errors: an error response (4xx/5xx) rejects with its {@link EdgeChatError} at once;
 * `maxReconnects` drops in a row with no progress reject with `code: "connection_lost"`.
 */
export class AnswerStream implements AsyncIterable<AnswerEvent> {
  /** The answer's message id: known from `turn.started` (or from the start, when resuming). */
  messageId: string | null;
  /** The `id:` of the last event delivered. */
  lastEventId: string | null;
  /** How many times the stream reconnected. */
  reconnects = 0;
  private readonly controller = new AbortController();
  private started = false;

  constructor(
    private readonly requests: StreamRequests,
    private readonly options: ReconnectOptions = {},
    from: { messageId: string; lastEventId?: string | null } | null = null,
  ) {
    this.messageId = from?.messageId ?? null;
    this.lastEventId = from?.lastEventId ?? null;
    options.signal?.addEventListener("abort", () => this.controller.abort(options.signal?.reason), {
      once: true,
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<AnswerEvent> {
    if (this.started) throw new Error("An AnswerStream can be iterated once.");
    this.started = true;
    return this.events();
  }

  /** Reads the stream to its end and returns the final message (`completed`, or `failed`/`interrupted`/`cancelled`). */
  async finalMessage(): Promise<Message> {
    for await (const event of this)
      if (event.type === "message.completed" || event.type === "message.failed") return event.message;
    throw new EdgeChatError(0, "connection_lost", "The stream ended without its last event.");
  }

  /**
   * Stops the answer on the server (`POST /v1/messages/{id}/stop`); the stream then ends with
   * `message.failed` (status `cancelled`). Throws when the answer's id is not known yet.
   */
  stop(): Promise<Message> {
    if (this.messageId === null) throw new Error("The answer has not started yet.");
    return this.requests.stop(this.messageId);
  }

  /** Closes the connection without stopping the answer (it can be resumed later by its id). */
  close(): void {
    this.controller.abort();
  }

  private async *events(): AsyncGenerator<AnswerEvent> {
    const signal = this.controller.signal;
    const maxReconnects = this.options.maxReconnects ?? 5;
    const firstDelay = this.options.reconnectDelayMs ?? 250;
    let failures = 0;
    while (true) {
      let response: Response | null = null;
      try {
        response =
          this.messageId !== null
            ? await this.requests.resume(this.messageId, this.lastEventId, signal)
            : this.requests.open
              ? await this.requests.open(signal)
              : null;
      } catch (err) {
        if (signal.aborted) throw err;
        // No response at all (network down): retried like a drop.
      }
      if (response && !response.ok) throw await errorOf(response);
      if (response?.body) {
        try {
          for await (const message of sseEvents(response.body)) {
            if (this.lastEventId !== null && Number(message.id) <= Number(this.lastEventId)) continue;
            const data = parseJson(message.data);
            if (!isAnswerEvent(data)) continue;
            this.lastEventId = message.id ?? this.lastEventId;
            failures = 0;
            if (data.type === "turn.started") this.messageId = data.assistant_message.id;
            const terminal = data.type === "message.completed" || data.type === "message.failed";
            if (terminal && data.d1_bookmark !== undefined) this.requests.bookmark?.(data.d1_bookmark);
            yield data;
            if (terminal) return;
          }
        } catch (err) {
          if (signal.aborted) throw err;
          // The connection dropped mid-stream: resumed below.
        }
      }
      if (signal.aborted) return;
      if (++failures > maxReconnects)
        throw new EdgeChatError(
          0,
          "connection_lost",
          `The stream dropped ${maxReconnects + 1} times in a row.`,
        );
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(firstDelay * 2 ** (failures - 1), MAX_RECONNECT_DELAY_MS)),
      );
      this.reconnects++;
    }
  }
}
