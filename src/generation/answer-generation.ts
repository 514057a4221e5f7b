import { ReplyLimit } from "../chat/reply-limit";
import { fromUpstreamFailure, upstreamErrorFromStreamError } from "../chat/upstream-error";
import { cacheUsage, estimateAnswerUsage, reportedUsage, usageSummary } from "../chat/usage";
import { type AccumulatedCompletion, CompletionAccumulator } from "../dashscope/accumulator";
import type { UpstreamStream } from "../dashscope/client";
import { IdleWatchdog, UpstreamIdleTimeout } from "../dashscope/idle-watchdog";
import { DashScopeEventDecoder } from "../dashscope/stream";
import type { ChunkDelta, StreamEvent } from "../dashscope/types";
import { ApiError } from "../errors/api-error";
import { logError } from "../log/log";
import { toIso } from "../store/time";
import type { AnswerOutcome } from "../store/turns";
import type { Message, MessageError } from "../store/types";
import { completeToolCalls } from "../text/tool-call-arguments";
import { EventBroadcast } from "./event-broadcast";

/** What an answer needs from its owner: where its events and its final state go. */
export interface AnswerSink {
  /** Stores the final state (exactly once); returns the stored message, or null if it was already finished. */
  persist(outcome: AnswerOutcome): Promise<Message | null>;
  /** Makes an event durable as it is published (for resume and crash recovery). */
  logEvent(id: number, event: string, json: string): void;
  /**
   * The D1 bookmark after {@link persist}, tagged with its shard (store/sessions.ts `tagBookmark`), sent in the terminal event as
   * `d1_bookmark` so a client can read the stored answer from any replica; null: none known.
   */
  bookmark?(): string | null;
}

export interface AnswerGenerationOptions {
  messageId: string;
  /** The stored assistant placeholder (status `streaming`), used if persisting fails. */
  placeholder: Message;
  /**
   * The upstream call, started before the answer (it may still be waiting for DashScope's first
   * byte, through retries): a rejection ends the answer before its stream, as `failed` with the
   * mapped error, or `cancelled` when a stop or a deletion aborted it.
   */
  upstream: Promise<UpstreamStream>;
  /** `Date.now()` when the upstream call started (time to first token and duration count from it). */
  startedAt: number;
  sink: AnswerSink;
  pingIntervalMs: number;
  /** Stop the answer when its last listener leaves. */
  cancelOnDisconnect: boolean;
  /** Estimated prompt tokens, for usage when DashScope reports none (stop, cut-off). */
  estimatedPromptTokens: number;
  /**
   * Reply tokens the answer's quota reservation holds beyond its prompt: an answer that reaches
   * them (counted with {@link ReplyLimit}, erring high) ends there like a `max_tokens` cut
   * (`completed`, `finish_reason: "length"`, estimated usage). Absent: no limit.
   */
  replyRoomTokens?: number;
  /**
   * The longest wait for the next upstream event before the answer ends as `interrupted` with
   * `upstream_timeout` (see {@link IdleWatchdog}); `0` waits forever.
   */
  idleTimeoutMs: number;
  /** Aborts the upstream request (stop). */
  abort: AbortController;
  now?: () => number;
}

/**
 * Deltas reach the client at most this far apart when the model is faster than that (a token
 * after a pause is sent at once): a fast stream costs a fraction of the per-write overhead
 * between the Durable Object and the Worker, while a human cannot see a 10 ms batch.
 */
export const RELAY_COALESCE_MS = 10;

/** The stored `error` of an answer stopped by its user. */
const STOPPED: MessageError = {
  code: "cancelled",
  message: "The answer was stopped before it was complete.",
};

/** The stored `error` of an answer stopped before DashScope's first byte. */
const STOPPED_BEFORE_START: MessageError = {
  code: "cancelled",
  message: "The answer was stopped before it started.",
};

/** The abort reason of a stop: the `error` the cancelled answer is stored with. */
export class AnswerStopped extends Error {
  constructor(readonly error: MessageError) {
    super(error.message);
  }
}

/** Attempts to store the final answer before giving up to the crash recovery. */
const PERSIST_ATTEMPTS = 3;
const PERSIST_RETRY_MS = 200;

/**
 * One in-flight answer: reads DashScope's stream to its end whether or not anyone is listening,
 * relays it to every follower as `message.delta` events, then stores the final answer once and
 * ends every stream with exactly one `message.completed` or `message.failed`.
 */
export class AnswerGeneration {
  readonly events: EventBroadcast;
  /** Resolves with the stored final message when the answer is finished. */
  readonly done: Promise<Message>;
  private resolveDone!: (m: Message) => void;
  private readonly accumulator = new CompletionAccumulator();
  private readonly now: () => number;
  private ttftMs: number | null = null;
  private watchdog: IdleWatchdog | null = null;
  private attemptCount = 0;
  private readonly replyLimit: ReplyLimit;
  /** Set when the answer reached its reply room and was cut. */
  private cut = false;
  private terminalReach = 0;

  constructor(private readonly o: AnswerGenerationOptions) {
    this.events = new EventBroadcast(
      o.pingIntervalMs,
      (id, event, json) => o.sink.logEvent(id, event, json),
      RELAY_COALESCE_MS,
    );
    this.now = o.now ?? Date.now;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.replyLimit = new ReplyLimit(o.replyRoomTokens ?? Number.POSITIVE_INFINITY);
  }

  get messageId(): string {
    return this.o.messageId;
  }

  /** Upstream attempts made (0 until the call has a first byte or has failed). */
  get attempts(): number {
    return this.attemptCount;
  }

  get cancelOnDisconnect(): boolean {
    return this.o.cancelOnDisconnect;
  }

  /**
   * Whether the terminal event (`message.completed`/`message.failed`) was written to at least one
   * open stream when it was published (the webhook's `delivered`; see
   * {@link EventBroadcast.lastWriteReach}). False until then, and for an answer nobody followed
   * at its end (the app in the background, or a `stream: false` send, whose response carries it).
   */
  get delivered(): boolean {
    return this.terminalReach > 0;
  }

  /** Whether the final answer is stored and the terminal event published. */
  get finished(): boolean {
    return this.events.isClosed;
  }

  /**
   * Stops the answer: aborts the upstream request; it ends as `cancelled` with what was received,
   * and with `error` (default: code `cancelled`).
   */
  stop(error?: MessageError): void {
    if (!this.o.abort.signal.aborted) this.o.abort.abort(new AnswerStopped(error ?? STOPPED));
  }

  /**
   * Ends the answer if no upstream event came for the idle timeout, should its own timer not
   * have done so (the owner's heartbeat calls this: belt and braces for an answer that would
   * otherwise hold its conversation forever). Returns whether the answer was timed out.
   */
  expireIfIdle(): boolean {
    return this.watchdog?.check() ?? false;
  }

  /** Gives the upstream up: it ends as `interrupted` (`upstream_timeout`) with what was received. */
  private timeOut(): void {
    if (!this.o.abort.signal.aborted) this.o.abort.abort(new UpstreamIdleTimeout(this.o.idleTimeoutMs));
  }

  /** What has been received so far (for status polling). */
  partial(): Pick<Message, "reasoning_content" | "tool_calls"> & { content: string } {
    const choice = this.accumulator.snapshot().choices[0];
    return {
      content: choice?.content ?? "",
      reasoning_content: choice?.reasoning_content || null,
      tool_calls: choice?.tool_calls.length ? choice.tool_calls : null,
    };
  }

  /** Publishes `turn.started` and starts relaying; returns at once. */
  start(turnStarted: object): void {
    this.events.publish("turn.started", turnStarted);
    void this.run();
  }

  private async run(): Promise<void> {
    let upstream: UpstreamStream;
    try {
      upstream = await this.o.upstream;
    } catch (err) {
      await this.end(this.failedBeforeStream(err));
      return;
    }
    this.attemptCount = upstream.attempts;
    let readError: unknown = null;
    const decoder = new DashScopeEventDecoder();
    // Aborting the upstream request rejects the pending read, as a stop does.
    const watchdog = new IdleWatchdog(this.o.idleTimeoutMs, () => this.timeOut(), this.now);
    this.watchdog = watchdog;
    try {
      // One network read → its events relayed, then one write to the followers.
      reading: for (;;) {
        const bytes = await upstream.read();
        const events = bytes === null ? decoder.end() : decoder.push(bytes);
        if (events.length > 0) watchdog.progress();
        for (const event of events) {
          this.accumulator.push(event);
          if (event.type === "chunk") {
            this.relay(event, upstream.startedAt);
            if (this.replyLimit.addChunk(event.chunk)) {
              // The reservation holds no more: end here, as DashScope ends at `max_tokens`.
              this.cut = true;
              this.events.flush(true);
              await upstream.cancel();
              break reading;
            }
          } else if (event.type === "error") {
            this.events.flush(true);
            await upstream.cancel();
            break reading;
          }
        }
        this.events.flush();
        if (bytes === null) break;
      }
    } catch (err) {
      // The connection dropped, or a stop or the idle timeout aborted it: what was received is kept.
      readError = err;
    }
    watchdog.stop();
    const result = this.accumulator.finish();
    await this.end(this.outcome(result, readError));
  }

  /** Stores the final answer, publishes its terminal event and ends every stream. */
  private async end(outcome: AnswerOutcome): Promise<void> {
    const message = await this.store(outcome);
    const bookmark = this.o.sink.bookmark?.() ?? null;
    this.events.publish(
      outcome.status === "completed" ? "message.completed" : "message.failed",
      bookmark === null ? { message } : { message, d1_bookmark: bookmark },
    );
    // Not deferred: the publish wrote it to the followers just now.
    this.terminalReach = this.events.lastWriteReach;
    this.events.close();
    this.resolveDone(message);
  }

  /** The outcome of an upstream call that failed (or was aborted) before its first byte: no usage. */
  private failedBeforeStream(err: unknown): AnswerOutcome {
    const completedAt = this.now();
    const aborted = this.o.abort.signal;
    let status: AnswerOutcome["status"] = "failed";
    let error: MessageError;
    if (aborted.aborted) {
      status = "cancelled";
      const reason: unknown = aborted.reason;
      error =
        reason instanceof AnswerStopped && reason.error !== STOPPED ? reason.error : STOPPED_BEFORE_START;
    } else {
      error = upstreamErrorBody(fromUpstreamFailure(err));
    }
    this.attemptCount = attemptsOf(err);
    return {
      status,
      content: null,
      reasoningContent: null,
      toolCalls: null,
      finishReason: null,
      model: null,
      usage: null,
      error,
      ttftMs: null,
      durationMs: completedAt - this.o.startedAt,
      completedAt,
    };
  }

  private relay(event: Extract<StreamEvent, { type: "chunk" }>, startedAt: number): void {
    for (const choice of event.chunk.choices) {
      if (choice.index !== 0) continue;
      const delta = deltaEvent(this.o.messageId, choice.delta);
      if (!delta) continue;
      if (this.ttftMs === null) this.ttftMs = this.now() - startedAt;
      this.events.publish("message.delta", delta, true);
    }
  }

  private outcome(result: AccumulatedCompletion, readError: unknown): AnswerOutcome {
    const completedAt = this.now();
    if (this.cut) {
      const choice = result.choices[0];
      if (choice) choice.finish_reason = "length";
      return answerOutcome(result, {
        status: "completed",
        error: null,
        estimatedPromptTokens: this.o.estimatedPromptTokens,
        ttftMs: this.ttftMs,
        durationMs: completedAt - this.o.startedAt,
        completedAt,
      });
    }
    let status: AnswerOutcome["status"] = result.status === "completed" ? "completed" : "interrupted";
    let error: MessageError | null = null;
    if (status !== "completed") {
      const aborted = this.o.abort.signal;
      if (aborted.aborted && aborted.reason instanceof UpstreamIdleTimeout) {
        error = {
          code: "upstream_timeout",
          message: `${aborted.reason.message} The answer ends with what was received.`,
        };
      } else if (aborted.aborted) {
        status = "cancelled";
        error = aborted.reason instanceof AnswerStopped ? aborted.reason.error : STOPPED;
      } else if (result.error) {
        const mapped = upstreamErrorFromStreamError(result.error);
        error = { code: mapped.code, message: mapped.message };
      } else {
        error = {
          code: "upstream_error",
          message: readError
            ? "The connection to the model was lost before the answer was complete."
            : "The model's stream ended before the answer was complete.",
        };
      }
    }
    return answerOutcome(result, {
      status,
      error,
      estimatedPromptTokens: this.o.estimatedPromptTokens,
      ttftMs: this.ttftMs,
      durationMs: completedAt - this.o.startedAt,
      completedAt,
    });
  }

  private async store(outcome: AnswerOutcome): Promise<Message> {
    for (let attempt = 1; ; attempt++) {
      try {
        const stored = await this.o.sink.persist(outcome);
        if (stored) return stored;
        break;
      } catch (err) {
        if (attempt >= PERSIST_ATTEMPTS) {
          logError("answer.store_failed", { message_id: this.o.messageId, error: err });
          break;
        }
        await new Promise((r) => setTimeout(r, PERSIST_RETRY_MS * attempt));
      }
    }
    // Not stored (already finished elsewhere, or D1 unavailable): report what we know; the
    // crash recovery closes the stored placeholder if it is still `streaming`.
    return {
      ...this.o.placeholder,
      status: outcome.status,
      content: outcome.content,
      reasoning_content: outcome.reasoningContent,
      tool_calls: outcome.toolCalls,
      finish_reason: outcome.finishReason,
      usage: outcome.usage,
      error: outcome.error,
      completed_at: toIso(outcome.completedAt),
    };
  }
}

/** The stored `error` of an answer whose upstream call failed before its stream (`err` mapped). */
export function upstreamErrorBody(err: unknown): MessageError {
  return err instanceof ApiError
    ? { code: err.code, message: err.message }
    : { code: "upstream_error", message: "The model provider could not be reached." };
}

/** The attempts an upstream failure reports (`UpstreamFailure.attempts`), else 1. */
function attemptsOf(err: unknown): number {
  const attempts = (err as { attempts?: unknown } | null)?.attempts;
  return typeof attempts === "number" ? attempts : 1;
}

/** How an answer ended, beyond what its accumulated stream says. */
export interface AnswerEnding {
  status: AnswerOutcome["status"];
  /** The stored `error` of an answer that did not complete, else null. */
  error: MessageError | null;
  /** For usage when DashScope reported none. */
  estimatedPromptTokens: number;
  ttftMs: number | null;
  durationMs: number | null;
  completedAt: number;
}

/**
 * The final state of an answer from its accumulated stream (choice 0, the one relayed), whether
 * it was read live or rebuilt from its logged events after its owner died.
 *
 * Stored and replayed calls are complete, with JSON object arguments (API.md §2.2): a call cut
 * off by `max_tokens`, a stop or a failure is left out, so it is neither answerable nor replayed
 * (see {@link completeToolCalls}). Its fragments still count in the estimated usage: they were
 * generated.
 */
export function answerOutcome(result: AccumulatedCompletion, ending: AnswerEnding): AnswerOutcome {
  const choice = result.choices[0];
  const calls = choice ? completeToolCalls(choice.tool_calls) : [];
  const reported = usageSummary(result.usage);
  return {
    status: ending.status,
    content: choice ? choice.content : ending.status === "completed" ? "" : null,
    reasoningContent: choice?.reasoning_content || null,
    toolCalls: calls.length ? calls : null,
    finishReason: choice?.finish_reason ?? null,
    model: result.model,
    usage: reported
      ? reportedUsage(reported)
      : estimateAnswerUsage(
          ending.estimatedPromptTokens,
          choice?.content,
          choice?.reasoning_content,
          choice?.tool_calls.length ? choice.tool_calls : null,
        ),
    cache: cacheUsage(result.usage),
    error: ending.error,
    ttftMs: ending.ttftMs,
    durationMs: ending.durationMs,
    completedAt: ending.completedAt,
  };
}

/** The `message.delta` payload of one upstream delta, or null when it carries nothing to show. */
function deltaEvent(messageId: string, d: ChunkDelta): Record<string, unknown> | null {
  let out: Record<string, unknown> | null = null;
  if (typeof d.reasoning_content === "string" && d.reasoning_content !== "") {
    out = { message_id: messageId, reasoning_content: d.reasoning_content };
  }
  if (typeof d.content === "string" && d.content !== "") {
    out ??= { message_id: messageId };
    out.content = d.content;
  }
  if (Array.isArray(d.tool_calls) && d.tool_calls.length > 0) {
    out ??= { message_id: messageId };
    out.tool_calls = d.tool_calls;
  }
  return out;
}
