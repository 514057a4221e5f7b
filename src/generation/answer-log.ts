import { decodeEvents } from "../sse/decode";
import { eventText } from "../sse/encode";
import { withEventType } from "./event-data";

/**
 * The durable record of a conversation's answers, in its Durable Object's SQLite storage:
 * one row per answer (who asked, its status, its last event id) and the answer's SSE events,
 * so a client can resume a stream after any event, and an answer whose owner died can be
 * closed with what was received. Events are kept for `retentionMs` after the answer ends
 * (an answer's events are bounded by its `max_tokens`); answer rows stay. Its tables are made by
 * the object's versioned schema (`conversation-storage.ts`), migrated before this is constructed.
 */
export interface AnswerRecord {
  message_id: string;
  user_id: string;
  conversation_id: string;
  user_message_id: string;
  client_message_id: string | null;
  request_hash: string | null;
  status: string;
  last_event_id: number;
  started_at: number;
  finished_at: number | null;
  prompt_estimate: number;
  /** Completion tokens of the finished answer (sizes the next turn's quota reservation). */
  completion_tokens: number;
  /** UTC day the answer started (its usage counts against that day's budget). */
  day: string;
  model: string;
}

export interface LoggedEvent {
  id: number;
  event: string;
  /** JSON text of the event's data. */
  data: string;
}

/** Buffered events are written in one transaction this often, so the relay never waits per token. */
export const EVENT_FLUSH_INTERVAL_MS = 100;
/** ... or as soon as this many are waiting. */
export const EVENT_FLUSH_BATCH = 64;

export class AnswerLog {
  private pending: { messageId: string; e: LoggedEvent }[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Records a new answer as `streaming`. */
  begin(a: Omit<AnswerRecord, "status" | "last_event_id" | "finished_at" | "completion_tokens">): void {
    this.storage.sql.exec(
      `INSERT INTO answers (message_id, user_id, conversation_id, user_message_id, client_message_id, request_hash,
                            status, started_at, prompt_estimate, day, model)
       VALUES (?, ?, ?, ?, ?, ?, 'streaming', ?, ?, ?, ?)`,
      a.message_id,
      a.user_id,
      a.conversation_id,
      a.user_message_id,
      a.client_message_id,
      a.request_hash,
      a.started_at,
      a.prompt_estimate,
      a.day,
      a.model,
    );
  }

  /** Queues an event for storage (written within {@link EVENT_FLUSH_INTERVAL_MS}). */
  append(messageId: string, e: LoggedEvent): void {
    this.pending.push({ messageId, e });
    if (this.pending.length >= EVENT_FLUSH_BATCH) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), EVENT_FLUSH_INTERVAL_MS);
  }

  /** Writes every queued event now. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const segments = new Map<string, { first: number; last: number; sse: string }>();
    for (const { messageId, e } of batch) {
      const seg = segments.get(messageId);
      const text = eventText(e);
      if (seg) {
        seg.last = e.id;
        seg.sse += text;
      } else segments.set(messageId, { first: e.id, last: e.id, sse: text });
    }
    try {
      this.storage.transactionSync(() => {
        for (const [messageId, seg] of segments) {
          this.storage.sql.exec(
            "INSERT OR IGNORE INTO answer_events (message_id, first_seq, last_seq, sse) VALUES (?, ?, ?, ?)",
            messageId,
            seg.first,
            seg.last,
            seg.sse,
          );
          this.storage.sql.exec(
            "UPDATE answers SET last_event_id = MAX(last_event_id, ?) WHERE message_id = ?",
            seg.last,
            messageId,
          );
        }
      });
    } catch (err) {
      this.onError(err);
    }
  }

  /** Marks an answer finished (its events are flushed first). */
  finish(messageId: string, status: string, finishedAt: number, completionTokens = 0): void {
    this.flush();
    this.storage.sql.exec(
      "UPDATE answers SET status = ?, finished_at = ?, completion_tokens = ? WHERE message_id = ?",
      status,
      finishedAt,
      completionTokens,
      messageId,
    );
  }

  /** Deletes every answer and event (the conversation was deleted); queued events are dropped. */
  forget(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.pending = [];
    this.storage.transactionSync(() => {
      this.storage.sql.exec("DELETE FROM answer_events");
      this.storage.sql.exec("DELETE FROM answers");
    });
  }

  get(messageId: string): AnswerRecord | null {
    return (
      (this.storage.sql
        .exec("SELECT * FROM answers WHERE message_id = ?", messageId)
        .toArray()[0] as unknown as AnswerRecord) ?? null
    );
  }

  /** Whether an answer was recorded for a send with this `client_message_id` (within the retention). */
  hasClientMessageId(clientMessageId: string): boolean {
    return (
      this.storage.sql
        .exec("SELECT 1 FROM answers WHERE client_message_id = ? LIMIT 1", clientMessageId)
        .toArray().length > 0
    );
  }

  /** Answers recorded as streaming (after a restart: those whose owner died). */
  streaming(): AnswerRecord[] {
    return this.storage.sql
      .exec("SELECT * FROM answers WHERE status = 'streaming'")
      .toArray() as unknown as AnswerRecord[];
  }

  /** The stored events of an answer after `afterId`, in order. */
  events(messageId: string, afterId: number): LoggedEvent[] {
    this.flush();
    const rows = this.storage.sql
      .exec(
        "SELECT sse FROM answer_events WHERE message_id = ? AND last_seq > ? ORDER BY first_seq",
        messageId,
        afterId,
      )
      .toArray() as { sse: string }[];
    const out: LoggedEvent[] = [];
    for (const { sse } of rows) {
      for (const e of decodeEvents(sse)) {
        const id = Number(e.id);
        if (id <= afterId) continue;
        // "message" is the event type SSE gives a frame without an `event:` line (ours all have one).
        const event = e.event ?? "message";
        out.push({ id, event, data: withEventType(event, e.data) });
      }
    }
    return out;
  }

  /** Deletes the events of answers finished before `before`; returns when the next deletion is due, if any. */
  collect(before: number, retentionMs: number): number | null {
    const old = this.storage.sql
      .exec(
        "SELECT message_id FROM answers WHERE finished_at IS NOT NULL AND finished_at < ? AND last_event_id > 0",
        before,
      )
      .toArray() as { message_id: string }[];
    for (const { message_id } of old) {
      this.storage.sql.exec("DELETE FROM answer_events WHERE message_id = ?", message_id);
      // Keep last_event_id: a late resume still gets the terminal event with its id.
    }
    const next = this.storage.sql
      .exec(
        "SELECT MIN(finished_at) AS t FROM answers WHERE finished_at >= ? AND EXISTS (SELECT 1 FROM answer_events e WHERE e.message_id = answers.message_id)",
        before,
      )
      .toArray()[0] as { t: number | null } | undefined;
    return next?.t != null ? next.t + retentionMs : null;
  }
}
