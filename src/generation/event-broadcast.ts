import { eventText } from "../sse/encode";
import { Heartbeat } from "../sse/heartbeat";
import { type AnswerEventName, type EventPayload, eventDataJson } from "./event-data";

const encoder = new TextEncoder();

/**
 * The events of one answer, numbered from 1, and the streams following them. Every stream
 * gets every event after the id it started from, in order, then the live tail; `close()`
 * ends them all after the last event. Comment pings go to live streams only, at a fixed cadence
 * from the first event on (the heartbeat is never touched).
 */
export class EventBroadcast {
  /** SSE text of every event; encoded once per write, not once per event. */
  private readonly events: string[] = [];
  /** Total length of `events` (see {@link textLength}). */
  private eventsLength = 0;
  /** Events published with `defer`, sent to followers as one write by `flush()`. */
  private pending: string[] = [];
  private readonly followers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private closed = false;
  private readonly heartbeat: Heartbeat;

  /** Streams the last write reached (see {@link lastWriteReach}). */
  private lastReach = 0;

  private lastSend = Number.NEGATIVE_INFINITY;
  private sendTimer: ReturnType<typeof setTimeout> | null = null;

  /**
   * @param pingIntervalMs interval of `: ping` comments to live streams
   * @param onPublish called with each event as published (to make it durable)
   * @param coalesceMs deferred events are sent at most this often: an event arriving after a
   *   quiet spell goes out at once; a burst goes out in writes at most this far apart
   */
  constructor(
    pingIntervalMs: number,
    private readonly onPublish?: (id: number, event: string, json: string) => void,
    private readonly coalesceMs = 0,
  ) {
    this.heartbeat = new Heartbeat(pingIntervalMs, (ping) => {
      for (const follower of this.followers) this.send(follower, ping);
    });
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * UTF-16 code units of event text this broadcast holds for replay: its events' bytes for ASCII
   * text (V8 keeps Latin-1 strings at one byte per unit, others at two). It grows by about 100
   * per `message.delta`, and stays with the broadcast as long as anything references it.
   */
  get textLength(): number {
    return this.eventsLength;
  }

  /**
   * How many streams the last write to followers was handed to: each one's `enqueue` succeeded,
   * i.e. its reader had not gone away as far as this object knows. A reader's cancel crosses from
   * the Worker to the Durable Object asynchronously, so a client that has just hung up may still
   * count. After a non-deferred {@link publish}, the streams that event was written to.
   */
  get lastWriteReach(): number {
    return this.lastReach;
  }

  /** Number of streams currently following. */
  get followerCount(): number {
    return this.followers.size;
  }

  /**
   * Publishes an event to every follower; returns its id. Its data is `payload` with `type`, the
   * event's name, as its first key ({@link eventDataJson}). With `defer`, followers get it at the
   * next `flush()`, together with the other deferred events: every write to a stream crosses
   * from the Durable Object to the Worker, so the events of one upstream read travel as one.
   */
  publish<P extends object>(event: AnswerEventName, payload: EventPayload<P>, defer = false): number {
    if (this.closed) throw new Error("publish after close");
    const id = this.events.length + 1;
    const json = eventDataJson(event, payload);
    const text = eventText({ id, event, data: json });
    this.events.push(text);
    this.eventsLength += text.length;
    this.onPublish?.(id, event, json);
    this.pending.push(text);
    if (!defer) this.flush(true);
    this.heartbeat.start();
    return id;
  }

  /**
   * Sends the deferred events to every follower: now, or (within a burst, unless `force`) at the
   * end of the current coalescing window. Each write crosses from the Durable Object to the
   * Worker, which costs far more than the bytes, so a fast model's tokens travel in batches.
   */
  flush(force = false): void {
    if (this.pending.length === 0) return;
    const now = performance.now();
    if (!force && now - this.lastSend < this.coalesceMs) {
      this.sendTimer ??= setTimeout(
        () => {
          this.sendTimer = null;
          this.lastSend = performance.now();
          this.flush(true);
        },
        this.coalesceMs - (now - this.lastSend),
      );
      return;
    }
    if (this.sendTimer) clearTimeout(this.sendTimer);
    this.sendTimer = null;
    // Only deferred (token) writes open a coalescing window: the first token after
    // `turn.started`, or after a pause, goes out at once.
    if (!force) this.lastSend = now;
    const bytes = encoder.encode(this.pending.length === 1 ? this.pending[0]! : this.pending.join(""));
    this.pending = [];
    let reached = 0;
    for (const follower of this.followers) if (this.send(follower, bytes)) reached++;
    this.lastReach = reached;
  }

  /**
   * A stream of the events after `afterId`, then the live tail until `close()`.
   * `onCancel` runs when this stream's reader goes away.
   */
  follow(afterId = 0, onCancel?: () => void): ReadableStream<Uint8Array> {
    let self: ReadableStreamDefaultController<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          self = controller;
          // Deferred events go out to the current followers first, so the replay below is
          // exactly what this follower has not got, and the live set gets only what follows.
          this.flush(true);
          if (afterId < this.events.length)
            controller.enqueue(encoder.encode(this.events.slice(Math.max(0, afterId)).join("")));
          if (this.closed) controller.close();
          else this.followers.add(controller);
        },
        cancel: () => {
          if (self) this.followers.delete(self);
          onCancel?.();
        },
      },
      // No backpressure reaches the producer: enqueue ignores desiredSize (the model does not wait).
    );
  }

  /** Ends every stream after the events published so far. */
  close(): void {
    if (this.closed) return;
    this.flush(true);
    this.closed = true;
    this.heartbeat.stop();
    for (const follower of this.followers) {
      try {
        follower.close();
      } catch {
        // Already errored or cancelled by its reader.
      }
    }
    this.followers.clear();
  }

  /** Writes to one stream; false when its reader is gone. */
  private send(follower: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array): boolean {
    try {
      follower.enqueue(bytes);
      return true;
    } catch {
      // The reader went away between cancel() and here.
      this.followers.delete(follower);
      return false;
    }
  }
}
