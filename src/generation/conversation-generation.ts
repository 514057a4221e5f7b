import { DurableObject } from "cloudflare:workers";
import { prepareTurn, type TurnInput } from "../chat/prepare-turn";
import { loadConfig } from "../config";
import { createDashScopeClient } from "../dashscope/client";
import type { Env } from "../env";
import { ApiError } from "../errors/api-error";
import { newId } from "../store/ids";
import { countRoundTrips } from "../store/round-trips";
import { beginTurn, finishAnswer, revokeTurn } from "../store/turns";
import type { Message } from "../store/types";
import { AnswerGeneration, type PartialAnswer } from "./answer-generation";
import { failure, type TurnFailure } from "./turn-result";

/**
 * An idle Durable Object can be evicted after 70–140 s without incoming events, and a deploy
 * evicts them all; an alarm is an incoming event, so one every 30 s keeps the owner of a long
 * (thinking) answer alive, and after a real death it is what wakes the object to clean up.
 */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** How often the partial answer is saved for crash recovery. */
export const CHECKPOINT_INTERVAL_MS = 1_000;
/** History rows read per turn: bounds the turn's cost however long the conversation grows. */
export const HISTORY_LIMIT = 200;

const INFLIGHT_KEY = "inflight";

/** What the object remembers of its in-flight answer, durably, until it is stored in D1. */
interface InflightRecord extends PartialAnswer {
  messageId: string;
  userId: string;
  conversationId: string;
  startedAt: number;
}

interface Active {
  userId: string;
  generation?: AnswerGeneration;
}

export type TurnStartResult = { ok: true; stream: ReadableStream<Uint8Array> } | TurnFailure;
export type TurnRunResult = { ok: true; user_message: Message; assistant_message: Message } | TurnFailure;

/**
 * Owner of a conversation's in-flight answer (one object per conversation). It, not the
 * client's request, reads DashScope's stream, so an answer is completed and stored even when
 * the phone goes away (a Worker's `waitUntil` would get only 30 s after a disconnect). Being a
 * single thread per conversation, it is also where "one answer at a time" is enforced.
 */
export class ConversationGeneration extends DurableObject<Env> {
  /** D1 round trips made by this object, in all and by the last turn (reported by tests and benchmarks). */
  readonly metrics = { d1RoundTrips: 0, lastTurn: { beforeUpstream: 0, afterStream: 0 } };
  private readonly db: D1Database;
  private active: Active | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = countRoundTrips(env.DB, () => this.metrics.d1RoundTrips++);
    // A fresh instance holding an in-flight record means the previous owner died: let the
    // alarm close that answer.
    void ctx.blockConcurrencyWhile(async () => {
      if (await ctx.storage.get(INFLIGHT_KEY)) await ctx.storage.setAlarm(Date.now());
    });
  }

  /** Starts a streamed turn; the stream carries every event of the answer. */
  async startTurn(input: TurnInput): Promise<TurnStartResult> {
    const started = await this.begin(input);
    if (!started.ok) return started;
    return { ok: true, stream: started.generation.events.follow(0) };
  }

  /** Runs a turn to its end (`stream: false`). */
  async runTurn(input: TurnInput): Promise<TurnRunResult> {
    const started = await this.begin(input);
    if (!started.ok) return started;
    const assistant = await started.generation.done;
    return { ok: true, user_message: started.userMessage, assistant_message: assistant };
  }

  override async alarm(): Promise<void> {
    if (this.active) {
      await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_INTERVAL_MS);
      return;
    }
    const record = await this.ctx.storage.get<InflightRecord>(INFLIGHT_KEY);
    if (!record) return;
    const now = Date.now();
    await finishAnswer(this.db, record, {
      status: "interrupted",
      content: record.content,
      reasoningContent: record.reasoningContent || null,
      toolCalls: null,
      finishReason: null,
      model: null,
      usage: null,
      error: { code: "interrupted", message: "The answer was interrupted when its server restarted." },
      ttftMs: record.ttftMs,
      durationMs: now - record.startedAt,
      completedAt: now,
    });
    await this.ctx.storage.delete(INFLIGHT_KEY);
  }

  private async begin(
    input: TurnInput,
  ): Promise<{ ok: true; generation: AnswerGeneration; userMessage: Message } | TurnFailure> {
    if (this.active) {
      // Another user's conversation must look like no conversation at all.
      return this.active.userId === input.userId
        ? failure(new ApiError(409, "turn_in_progress", "An answer is still being generated in this conversation."))
        : failure(new ApiError(404, "not_found", "Conversation not found."));
    }
    // Claimed before the first await: the object is single-threaded, but awaits interleave.
    const active: Active = { userId: input.userId };
    this.active = active;
    try {
      return await this.open(input, active);
    } catch (err) {
      this.active = null;
      return failure(err);
    }
  }

  private async open(input: TurnInput, active: Active) {
    const config = loadConfig(this.env);
    const now = Date.now();
    const tripsAtStart = this.metrics.d1RoundTrips;
    const ids = { userId: input.userId, conversationId: input.conversationId };
    const userMessageId = newId();
    const assistantMessageId = newId();

    // The one D1 round trip before the upstream call.
    const began = await beginTurn(this.db, {
      ...ids,
      userMessageId,
      assistantMessageId,
      role: input.role,
      contentJson: JSON.stringify(input.content),
      toolCallId: input.toolCallId,
      clientMessageId: input.clientMessageId,
      turnModel: input.model,
      defaultModel: config.defaultModel,
      historyLimit: HISTORY_LIMIT,
      now,
    });
    if (!began) throw new ApiError(404, "not_found", "Conversation not found.");

    let prepared;
    try {
      prepared = prepareTurn(began, input, config);
    } catch (err) {
      // Invalid only in the light of the stored conversation: take the turn back.
      await revokeTurn(this.db, { ...ids, userMessageId, assistantMessageId });
      throw err;
    }

    const record: InflightRecord = {
      ...ids,
      messageId: assistantMessageId,
      startedAt: now,
      content: "",
      reasoningContent: "",
      ttftMs: null,
    };
    await this.ctx.storage.put(INFLIGHT_KEY, record);
    await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_INTERVAL_MS);

    const abort = new AbortController();
    let upstream;
    try {
      upstream = await createDashScopeClient(config).stream(prepared.request, { signal: abort.signal });
    } catch (err) {
      await this.recordFailure(record, err);
      throw err;
    }

    const beforeUpstream = this.metrics.d1RoundTrips - tripsAtStart;
    const generation = new AnswerGeneration({
      messageId: assistantMessageId,
      placeholder: began.assistantMessage,
      upstream,
      abort,
      pingIntervalMs: config.ssePingIntervalMs,
      checkpointIntervalMs: CHECKPOINT_INTERVAL_MS,
      sink: {
        persist: (outcome) => finishAnswer(this.db, record, outcome),
        checkpoint: (partial) => {
          // Unconfirmed: the relay to the client must not wait on this write.
          this.ctx.storage.put(INFLIGHT_KEY, { ...record, ...partial }, { allowUnconfirmed: true }).catch(logError);
        },
      },
    });
    active.generation = generation;
    generation.start({ user_message: began.userMessage, assistant_message: began.assistantMessage });
    void generation.done.then(async (message) => {
      this.metrics.lastTurn = {
        beforeUpstream,
        afterStream: this.metrics.d1RoundTrips - tripsAtStart - beforeUpstream,
      };
      // One structured line per turn for Workers Logs (and the benchmarks); never content.
      console.log(
        JSON.stringify({
          event: "turn.finished",
          request_id: input.requestId,
          message_id: message.id,
          status: message.status,
          model: message.model,
          upstream_attempts: upstream.attempts,
          d1_round_trips_before_upstream: this.metrics.lastTurn.beforeUpstream,
          d1_round_trips_after_stream: this.metrics.lastTurn.afterStream,
          history_included: prepared.historyIncluded,
          history_omitted: prepared.historyOmitted,
          usage: message.usage,
        }),
      );
      this.active = null;
      await this.ctx.storage.delete(INFLIGHT_KEY);
      await this.ctx.storage.deleteAlarm();
    }).catch(logError);
    return { ok: true as const, generation, userMessage: began.userMessage };
  }

  /** An upstream error before the stream: the user message stays, the answer is `failed`. */
  private async recordFailure(record: InflightRecord, err: unknown): Promise<void> {
    const error = err instanceof ApiError ? { code: err.code, message: err.message } : { code: "upstream_error", message: "The model provider could not be reached." };
    const now = Date.now();
    try {
      await finishAnswer(this.db, record, {
        status: "failed",
        content: null,
        reasoningContent: null,
        toolCalls: null,
        finishReason: null,
        model: null,
        usage: null,
        error,
        ttftMs: null,
        durationMs: now - record.startedAt,
        completedAt: now,
      });
      await this.ctx.storage.delete(INFLIGHT_KEY);
      await this.ctx.storage.deleteAlarm();
    } catch (storeErr) {
      // The alarm closes the answer later from the in-flight record.
      logError(storeErr);
    }
  }
}

/** Background failures (this object being reset, D1 unavailable) are logged, never left unhandled. */
function logError(err: unknown): void {
  console.error(JSON.stringify({ level: "error", where: "conversation-generation", error: String(err) }));
}
