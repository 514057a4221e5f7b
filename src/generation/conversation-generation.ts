import { DurableObject } from "cloudflare:workers";
import { type PreparedTurn, prepareTurn, type TurnInput } from "../chat/prepare-turn";
import { rateLimited, withinRateLimit } from "../chat/rate-limit";
import { fromUpstreamFailure } from "../chat/upstream-error";
import { ledgerEntry, quotaRefusal, reservationTokens, turnPromptEstimate } from "../chat/usage";
import { loadConfig } from "../config";
import { createDashScopeClient, type UpstreamStream } from "../dashscope/client";
import { ApiError } from "../errors/api-error";
import { type LogContext, withLogContext } from "../log/context";
import { logError, logInfo } from "../log/log";
import { replayStream } from "../sse/response";
import { deleteConversation } from "../store/conversations";
import { newId } from "../store/ids";
import { getMessage } from "../store/messages";
import { countRoundTrips } from "../store/round-trips";
import {
  beginTurn,
  findTurnByClientMessageId,
  finishAnswer,
  reorderToolResults,
  revokeTurn,
} from "../store/turns";
import type { Message, MessageError, TokenUsage } from "../store/types";
import { utcDay } from "../store/usage";
import { AnswerGeneration, AnswerStopped, answerOutcome } from "./answer-generation";
import { AnswerLog, type AnswerRecord, type LoggedEvent } from "./answer-log";
import { accumulateLoggedAnswer } from "./answer-recovery";
import { CONVERSATION_STORAGE_MIGRATIONS } from "./conversation-storage";
import { terminalEventFrame } from "./event-data";
import { StorageSchema } from "./storage-schema";
import { failure, type TurnFailure } from "./turn-result";

/**
 * An idle Durable Object can be evicted after 70–140 s without incoming events, and a deploy
 * evicts them all; an alarm is an incoming event, so one every 30 s keeps the owner of a long
 * (thinking) answer alive, and after a real death it is what wakes the object to clean up.
 */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** History rows read per turn: bounds the turn's cost however long the conversation grows. */
export const HISTORY_LIMIT = 200;

interface Active {
  userId: string;
  clientMessageId: string | null;
  requestHash: string | null;
  /** Settles once the turn is streaming, was found stored, or has failed before streaming. */
  ready: Promise<Started | Stored | TurnFailure>;
  /** The answer's id and its upstream call, once the turn is stored (a stop can come before the first byte). */
  messageId?: string;
  abort?: AbortController;
  generation?: AnswerGeneration;
  /**
   * Set while the conversation's owner is unknown: releases the sends waiting to learn it, once
   * this send's D1 batch has told whether its sender owns the conversation.
   */
  decided?: () => void;
}

/** The object's key-value storage (beside the answer log's tables): the conversation's owner. */
const OWNER_KEY = "owner";
/** ... and the error a turn failed with before its stream, so its retries get the same (see `open`). */
const FAILED_BEFORE_STREAM_PREFIX = "failed-before-stream:";
const failedBeforeStreamKey = (assistantMessageId: string) =>
  `${FAILED_BEFORE_STREAM_PREFIX}${assistantMessageId}`;
/** A kept pre-stream failure and when it was kept (ms since the epoch), for retention. */
interface FailedBeforeStream {
  failure: TurnFailure;
  at: number;
}
/** Keys per `storage.delete` call: the Durable Object storage API takes at most 128. */
const MAX_KEYS_PER_DELETE = 128;

/** A turn whose answer is being generated here. */
interface Started {
  ok: true;
  kind: "live";
  generation: AnswerGeneration;
  userMessage: Message;
  toolMessages: Message[];
}

/** A retried send whose turn was stored before. */
interface Stored {
  ok: true;
  kind: "stored";
  userMessage: Message;
  toolMessages: Message[];
  assistantMessage: Message | null;
}

/*
 * What the RPC methods resolve with. Through the stub, each member of a union that is not
 * `Rpc.Serializable` (a field typed `unknown`, say) silently becomes `never`, so these must stay
 * serializable for the routes to see the success members at all (`JsonValue` in resources/json.ts).
 */
type TurnStartResult = { ok: true; stream: ReadableStream<Uint8Array> } | TurnFailure;
/**
 * The messages of a turn as `turn.started` and the `stream: false` reply carry them: a tool turn
 * adds its results as `tool_messages`, in call order (the last is `user_message`).
 */
type TurnMessages = { user_message: Message; tool_messages?: Message[] };
type TurnRunResult = ({ ok: true; assistant_message: Message | null } & TurnMessages) | TurnFailure;
type FollowResult = { ok: true; stream: ReadableStream<Uint8Array> } | TurnFailure;

/**
 * Owner of a conversation's in-flight answer (one object per conversation). It, not the
 * client's request, reads DashScope's stream, so an answer is completed and stored even when
 * the phone goes away (a Worker's `waitUntil` would get only 30 s after a disconnect). Being a
 * single thread per conversation, it is also where "one answer at a time" and retry-safe
 * sends are decided. Every event of an answer goes to its {@link AnswerLog}, so any client can
 * resume after any event, and an answer whose owner died is closed with what was received.
 */
export class ConversationGeneration extends DurableObject<Env> {
  /** D1 round trips made by this object, in all and by the last turn (reported by tests and benchmarks). */
  readonly metrics = { d1RoundTrips: 0, lastTurn: { beforeUpstream: 0, afterStream: 0 } };
  private readonly db: D1Database;
  private readonly log: AnswerLog;
  private active: Active | null = null;
  /** The last finished answer, kept in memory so resuming it costs no storage read. */
  private recent: AnswerGeneration | null = null;
  /**
   * The user owning this object's conversation, once a turn's D1 batch found it theirs (kept in
   * storage): anyone else is refused before touching the turn slot. Null while unknown.
   */
  private owner: string | null = null;
  /** While the owner is unknown, the send finding it out; other sends wait for it (see `turn`). */
  private deciding: Promise<void> | null = null;
  /** Set while a deletion stops this conversation's answer: a turn opening meanwhile is aborted too. */
  private deleting: MessageError | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = countRoundTrips(env.DB, () => this.metrics.d1RoundTrips++);
    new StorageSchema(ctx.storage, CONVERSATION_STORAGE_MIGRATIONS).migrate();
    this.log = new AnswerLog(ctx.storage, (err) => logError("answer_log.write_failed", { error: err }));
    // A fresh instance holding answers marked streaming means their owner died: let the
    // alarm close them.
    if (this.log.streaming().length > 0) ctx.storage.setAlarm(Date.now()).catch(logAlarmFailure);
    void ctx.blockConcurrencyWhile(async () => {
      this.owner = (await ctx.storage.get<string>(OWNER_KEY)) ?? null;
    });
  }

  /** Starts a streamed turn (or attaches a retried send to its turn); the stream carries every event of the answer. */
  async startTurn(input: TurnInput): Promise<TurnStartResult> {
    const turn = await withLogContext(turnLogContext(input), () => this.turn(input));
    if (!turn.ok) return turn;
    if (turn.kind === "live") return { ok: true, stream: this.followLive(turn.generation, 0) };
    const failedBefore = await this.failedBeforeStream(turn);
    if (failedBefore) return failedBefore;
    if (!turn.assistantMessage)
      return failure(new ApiError(409, "conflict", "This message was stored without an answer."));
    return this.follow(turn.assistantMessage.id, input.userId, 0);
  }

  /** Runs a turn to its end (`stream: false`). */
  async runTurn(input: TurnInput): Promise<TurnRunResult> {
    const turn = await withLogContext(turnLogContext(input), () => this.turn(input));
    if (!turn.ok) return turn;
    if (turn.kind === "stored") {
      const failedBefore = await this.failedBeforeStream(turn);
      if (failedBefore) return failedBefore;
      return { ok: true, ...turnMessages(turn), assistant_message: turn.assistantMessage };
    }
    const assistant = await turn.generation.done;
    return { ok: true, ...turnMessages(turn), assistant_message: assistant };
  }

  /**
   * The events of an answer after `afterId`, exactly once and in order, then the live tail
   * while it is generated; for a finished answer, what was missed up to its terminal event.
   */
  async follow(messageId: string, userId: string, afterId: number): Promise<FollowResult> {
    if (this.isForeign(userId)) return failure(new ApiError(404, "not_found", "Message not found."));
    await this.recoverOrphans();
    const record = this.log.get(messageId);
    if (!record || record.user_id !== userId)
      return failure(new ApiError(404, "not_found", "Message not found."));
    const live = this.liveGeneration(messageId);
    if (live) return { ok: true, stream: this.followLive(live, afterId) };
    let events = this.log.events(messageId, afterId);
    if (events.length === 0 && record.last_event_id > afterId) {
      // The events were collected after the retention period: the terminal event stands for them.
      const message = await getMessage(this.db, userId, messageId);
      events = message ? [terminalEvent(record.last_event_id, message)] : [];
    }
    return { ok: true, stream: replayStream(events) };
  }

  /** Stops an answer being generated here; resolves with the stored answer, or null when it is not generated here. */
  async stop(messageId: string, userId: string): Promise<Message | null> {
    if (this.isForeign(userId)) return null;
    const record = this.log.get(messageId);
    if (!record || record.user_id !== userId) return null;
    const live = this.liveGeneration(messageId);
    if (live && !live.finished) {
      live.stop();
      return live.done;
    }
    const opening = this.active;
    if (opening && !opening.generation && opening.messageId === messageId && opening.abort) {
      // Still waiting for DashScope's first byte: abort the call; the turn ends `cancelled`.
      opening.abort.abort(new Error("stopped"));
      await opening.ready;
      return getMessage(this.db, userId, messageId);
    }
    await this.recoverOrphans();
    return null;
  }

  /**
   * Deletes the user's conversation (D1 cascades to its messages) after stopping its answer in
   * flight: the upstream call is aborted, the answer is settled with what was generated, and its
   * streams end with `message.failed` (`cancelled`, `conversation_deleted`). Then this object
   * forgets the conversation's answers, so their events are 404 too. Returns false when the user
   * has no such conversation (another user's turn here is left alone).
   */
  async deleteConversation(conversationId: string, userId: string): Promise<boolean> {
    if (this.isForeign(userId)) return false;
    if (this.active?.userId === userId) {
      this.deleting = DELETED;
      try {
        for (let active = this.active; active?.userId === userId; active = this.active) {
          if (active.generation) {
            active.generation.stop(DELETED);
            await active.generation.done;
          } else {
            active.abort?.abort(new AnswerStopped(DELETED));
            // A turn that was already streaming when the abort came ends through its generation.
            const opened = await active.ready;
            if (opened.ok && opened.kind === "live") await opened.generation.done;
          }
        }
      } finally {
        this.deleting = null;
      }
    }
    const deleted = await deleteConversation(this.db, userId, conversationId);
    if (deleted) {
      this.log.forget();
      await this.forgetFailuresBeforeStream(Number.POSITIVE_INFINITY);
      this.recent = null;
    }
    return deleted;
  }

  /** What has been received so far of an answer being generated here, or null. */
  partial(messageId: string, userId: string): ReturnType<AnswerGeneration["partial"]> | null {
    if (this.isForeign(userId)) return null;
    const record = this.log.get(messageId);
    const live = this.liveGeneration(messageId);
    if (!record || record.user_id !== userId || !live || live.finished) return null;
    return live.partial();
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    if (this.active) {
      // The answer's own timer ends a stuck upstream read; the heartbeat, which keeps this object
      // alive for it, enforces the same bound in case it did not.
      this.active.generation?.expireIfIdle();
      await this.ctx.storage.setAlarm(now + HEARTBEAT_INTERVAL_MS);
      return;
    }
    await this.recoverOrphans();
    const retentionMs = loadConfig(this.env).eventLogRetentionMs;
    const next = this.log.collect(now - retentionMs, retentionMs);
    // Kept pre-stream failures go with their answers' events: a retry after that replays the
    // answer's `message.failed`, as for any answer whose events were collected.
    await this.forgetFailuresBeforeStream(now - retentionMs);
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  /** Whether `userId` is known not to own this conversation. */
  private isForeign(userId: string): boolean {
    return this.owner !== null && this.owner !== userId;
  }

  /** Remembers the conversation's owner: its D1 row was found theirs. */
  private learnOwner(userId: string): void {
    if (this.owner === userId) return;
    this.owner = userId;
    // Not awaited: the output gate holds every response until the write is durable.
    this.ctx.storage
      .put(OWNER_KEY, userId)
      .catch((err: unknown) => logError("owner.store_failed", { error: err }));
  }

  /**
   * A retried send whose first request failed before its stream: that request's error (a
   * retry gets the same status and form as the first request, not a stream of `message.failed`).
   */
  private async failedBeforeStream(turn: Stored): Promise<TurnFailure | null> {
    const answer = turn.assistantMessage;
    if (!answer || (answer.status !== "failed" && answer.status !== "cancelled")) return null;
    const kept = await this.ctx.storage.get<FailedBeforeStream>(failedBeforeStreamKey(answer.id));
    return kept?.failure ?? null;
  }

  /** Drops the kept pre-stream failures kept before `before` (ms since the epoch). */
  private async forgetFailuresBeforeStream(before: number): Promise<void> {
    const kept = await this.ctx.storage.list<FailedBeforeStream>({ prefix: FAILED_BEFORE_STREAM_PREFIX });
    const stale = [...kept].filter(([, value]) => value.at < before).map(([key]) => key);
    for (let i = 0; i < stale.length; i += MAX_KEYS_PER_DELETE) {
      await this.ctx.storage.delete(stale.slice(i, i + MAX_KEYS_PER_DELETE));
    }
  }

  /**
   * What a sender who does not own the conversation gets: exactly what a send to an id with no
   * conversation gets (counted against their rate limit first, as that send is), so it tells
   * nothing about the conversation and never touches its turn slot.
   */
  private async refuseForeign(input: TurnInput): Promise<TurnFailure> {
    if (input.rateLimitTier && !(await withinRateLimit(this.env, input.rateLimitTier, input.userId)))
      return failure(rateLimited(loadConfig(this.env).rateLimitPerMinute[input.rateLimitTier]));
    return failure(conversationNotFound());
  }

  private liveGeneration(messageId: string): AnswerGeneration | null {
    for (const g of [this.active?.generation, this.recent]) if (g && g.messageId === messageId) return g;
    return null;
  }

  private followLive(generation: AnswerGeneration, afterId: number): ReadableStream<Uint8Array> {
    return generation.events.follow(afterId, () => {
      if (generation.cancelOnDisconnect && generation.events.followerCount === 0) generation.stop();
    });
  }

  /** Decides what a send is: a retry of the turn in flight, a conflict, or a new turn. */
  private async turn(input: TurnInput): Promise<Started | Stored | TurnFailure> {
    // Ownership before the slot: while a send is finding out who owns the conversation (its
    // D1 batch), the others wait for the answer rather than be refused by a claim that may be a
    // stranger's, which would also tell the stranger the conversation exists.
    while (this.owner === null && this.deciding) await this.deciding;
    // Another user's conversation must look like no conversation at all.
    if (this.isForeign(input.userId)) return this.refuseForeign(input);
    const active = this.active;
    if (active) {
      // Unreachable while the invariant holds (a claim made with the owner unknown is decided
      // before anyone looks at it); kept so a stranger can never see a 409.
      if (active.userId !== input.userId) return this.refuseForeign(input);
      if (input.clientMessageId && input.clientMessageId === active.clientMessageId) {
        if (input.requestHash !== active.requestHash) return failure(reusedId());
        return active.ready;
      }
      if (input.clientMessageId) {
        const stored = await findTurnByClientMessageId(
          this.db,
          input.userId,
          input.conversationId,
          input.clientMessageId,
        );
        if (stored) return this.storedTurn(stored, input);
      }
      return failure(
        new ApiError(409, "turn_in_progress", "An answer is still being generated in this conversation."),
      );
    }
    // Claimed before the first await: the object is single-threaded, but awaits interleave.
    let settle!: (r: Started | Stored | TurnFailure) => void;
    const claim: Active = {
      userId: input.userId,
      clientMessageId: input.clientMessageId,
      requestHash: input.requestHash,
      ready: new Promise((resolve) => (settle = resolve)),
    };
    if (this.owner === null) {
      let release!: () => void;
      const deciding = new Promise<void>((resolve) => (release = resolve));
      this.deciding = deciding;
      claim.decided = () => {
        if (this.deciding === deciding) this.deciding = null;
        release();
      };
    }
    this.active = claim;
    let result: Started | Stored | TurnFailure;
    try {
      result = await this.open(input, claim);
    } catch (err) {
      result = failure(err);
    }
    if (!result.ok || result.kind === "stored") this.active = null;
    // After the slot is free again: a waiting send must not find a stranger's claim in it.
    claim.decided?.();
    // Concurrent retries of this same send get the same outcome.
    settle(result);
    return result;
  }

  private storedTurn(
    stored: {
      requestHash: string | null;
      userMessage: Message;
      toolMessages: Message[];
      assistantMessage: Message | null;
    },
    input: TurnInput,
  ): Stored | TurnFailure {
    if (stored.requestHash !== input.requestHash) return failure(reusedId());
    return {
      ok: true,
      kind: "stored",
      userMessage: stored.userMessage,
      toolMessages: stored.toolMessages,
      assistantMessage: stored.assistantMessage,
    };
  }

  private async open(input: TurnInput, claim: Active): Promise<Started | Stored | TurnFailure> {
    const config = loadConfig(this.env);
    const now = Date.now();
    const tripsAtStart = this.metrics.d1RoundTrips;
    const ids = { userId: input.userId, conversationId: input.conversationId };
    // One message per tool result (ids ascending in the order they are stored), else the user's.
    const messageIds = input.role === "tool" ? input.toolResults.map(() => newId()) : [newId()];
    const userMessageId = messageIds.at(-1)!;
    const assistantMessageId = newId();
    const revoke = () => revokeTurn(this.db, { ...ids, messageIds, assistantMessageId });
    const lastResult = input.role === "tool" ? input.toolResults.at(-1)! : null;
    const day = utcDay(now);

    // The rate limit is counted while the one D1 round trip before the upstream call is in
    // flight: the two waits overlap instead of adding up.
    const allowed = input.rateLimitTier
      ? withinRateLimit(this.env, input.rateLimitTier, input.userId)
      : Promise.resolve(true);
    const last = this.log.lastSizes();
    const beginning = beginTurn(this.db, {
      ...ids,
      userMessageId,
      assistantMessageId,
      role: input.role,
      contentJson: JSON.stringify(
        lastResult ? lastResult.content : input.role === "user" ? input.content : null,
      ),
      toolCallId: lastResult?.toolCallId ?? null,
      earlierToolResults:
        input.role === "tool"
          ? input.toolResults.slice(0, -1).map((r, i) => ({
              id: messageIds[i]!,
              contentJson: JSON.stringify(r.content),
              toolCallId: r.toolCallId,
            }))
          : [],
      clientMessageId: input.clientMessageId,
      requestHash: input.requestHash,
      turnModel: input.model,
      defaultModel: config.defaultModel,
      historyLimit: HISTORY_LIMIT,
      now,
      quota: {
        day,
        tokens: reservationTokens(
          turnPromptEstimate(
            last,
            config.defaultSystemPrompt,
            input.role === "tool" ? input.toolResults.map((r) => r.content) : [input.content],
            input.parameters,
          ),
          input.parameters,
          // The conversation's model is not read yet: the turn's, else the one of its latest answer.
          input.model ?? last.model ?? config.defaultModel,
          config.defaultReplyTokens,
        ),
        defaultBudget: config.dailyTokenBudget,
        expiresAt: now + config.quotaReservationTtlMs,
      },
    });
    const [began, withinLimit] = await Promise.all([beginning, allowed]);
    if (began) this.learnOwner(input.userId);
    if (!withinLimit) {
      // Over the limit: take back what the batch stored (the refused path pays a second round trip).
      if (began?.kind === "new") await revoke();
      throw rateLimited(config.rateLimitPerMinute[input.rateLimitTier!]);
    }
    if (!began) throw conversationNotFound();
    if (began.kind === "duplicate") return this.storedTurn(began, input);
    if (began.kind === "refused") throw quotaRefusal(began.quota, now, "start new turns");
    // The owner is known and the slot theirs: sends that waited to learn the owner go on now
    // (a retry of this send attaches to it, another send is 409 `turn_in_progress`).
    claim.decided?.();
    const model = began.assistantMessage.model ?? config.defaultModel;
    const ledger = (usage: TokenUsage | null, answerModel: string | null) =>
      ledgerEntry({ day, model, usage, pricedModel: answerModel }, config.modelPrices);

    let prepared: PreparedTurn;
    try {
      prepared = prepareTurn(began, input, config);
    } catch (err) {
      // Invalid only in the light of the stored conversation: take the turn back.
      await revoke();
      throw err;
    }
    let { userMessage, toolMessages } = began;
    if (prepared.toolResults.some((r, i) => r.toolCallId !== toolMessages[i]!.tool_call_id)) {
      // Sent in another order than the calls: only now, with the answer read, is the order
      // known. One more round trip, on this path only, stores them in call order.
      const results = prepared.toolResults.map((r) => ({
        contentJson: JSON.stringify(r.content),
        toolCallId: r.toolCallId,
      }));
      try {
        await reorderToolResults(this.db, { userId: input.userId, ids: messageIds, results });
      } catch (err) {
        await revoke();
        throw err;
      }
      toolMessages = toolMessages.map((m, i) => ({
        ...m,
        content: prepared.toolResults[i]!.content,
        tool_call_id: prepared.toolResults[i]!.toolCallId,
      }));
      userMessage = toolMessages.at(-1)!;
    }

    this.log.begin({
      message_id: assistantMessageId,
      user_id: input.userId,
      conversation_id: input.conversationId,
      user_message_id: userMessageId,
      client_message_id: input.clientMessageId,
      request_hash: input.requestHash,
      started_at: now,
      prompt_estimate: prepared.estimatedPromptTokens,
      day,
      model,
    });
    // Not awaited: the upstream call need not wait for the heartbeat to be scheduled.
    this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_INTERVAL_MS).catch(logAlarmFailure);
    const answer = { ...ids, messageId: assistantMessageId };

    const abort = new AbortController();
    claim.messageId = assistantMessageId;
    claim.abort = abort;
    if (this.deleting) abort.abort(new AnswerStopped(this.deleting));
    let upstream: UpstreamStream;
    try {
      upstream = await createDashScopeClient(config).stream(prepared.request, { signal: abort.signal });
    } catch (caught) {
      const err = fromUpstreamFailure(caught);
      if (abort.signal.aborted) {
        const reason: unknown = abort.signal.reason;
        const deleted = reason instanceof AnswerStopped && reason.error.code === DELETED.code;
        const error: MessageError = deleted
          ? DELETED
          : { code: "cancelled", message: "The answer was stopped before it started." };
        const refusal = deleted
          ? new ApiError(409, "conversation_deleted", DELETED.message)
          : stoppedBeforeStart();
        await this.rememberFailedBeforeStream(assistantMessageId, refusal);
        await this.recordFailure(answer, now, error, ledger(null, null), "cancelled");
        throw refusal;
      }
      // Kept before the answer is stored as failed: a retry that finds it so gets this error.
      await this.rememberFailedBeforeStream(assistantMessageId, err);
      await this.recordFailure(answer, now, upstreamErrorBody(err), ledger(null, null), "failed");
      throw err;
    }

    const beforeUpstream = this.metrics.d1RoundTrips - tripsAtStart;
    const generation = new AnswerGeneration({
      messageId: assistantMessageId,
      placeholder: began.assistantMessage,
      upstream,
      abort,
      cancelOnDisconnect: input.cancelOnDisconnect,
      pingIntervalMs: config.ssePingIntervalMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      estimatedPromptTokens: prepared.estimatedPromptTokens,
      sink: {
        persist: (outcome) => finishAnswer(this.db, answer, outcome, ledger(outcome.usage, outcome.model)),
        logEvent: (id, event, data) => this.log.append(assistantMessageId, { id, event, data }),
      },
    });
    claim.generation = generation;
    generation.start({
      ...turnMessages({ userMessage, toolMessages }),
      assistant_message: began.assistantMessage,
    });
    void generation.done
      .then((message) => {
        this.log.finish(
          assistantMessageId,
          message.status,
          Date.now(),
          message.usage?.completion_tokens ?? 0,
        );
        this.metrics.lastTurn = {
          beforeUpstream,
          afterStream: this.metrics.d1RoundTrips - tripsAtStart - beforeUpstream,
        };
        this.recent = generation;
        this.active = null;
        // One structured line per turn for Workers Logs (and the benchmarks); never content.
        logInfo("turn.finished", {
          message_id: message.id,
          status: message.status,
          model: message.model,
          upstream_attempts: upstream.attempts,
          d1_round_trips_before_upstream: this.metrics.lastTurn.beforeUpstream,
          d1_round_trips_after_stream: this.metrics.lastTurn.afterStream,
          history_included: prepared.historyIncluded,
          history_omitted: prepared.historyOmitted,
          usage: message.usage,
        });
      })
      .catch((err: unknown) =>
        logError("turn.finish_failed", { message_id: assistantMessageId, error: err }),
      );
    return { ok: true, kind: "live", generation, userMessage, toolMessages };
  }

  /**
   * The error the sender of a turn gets when it fails before its stream, kept for its retries
   * as long as the answer's events (one small entry per such answer; the stored answer alone
   * cannot tell this failure from one that ended a stream, whose retries replay the stream).
   */
  private async rememberFailedBeforeStream(assistantMessageId: string, err: unknown): Promise<void> {
    try {
      const kept: FailedBeforeStream = { failure: failure(err), at: Date.now() };
      await this.ctx.storage.put(failedBeforeStreamKey(assistantMessageId), kept);
    } catch (storeErr) {
      // The retry then replays the answer's `message.failed`, as before this was kept.
      logError("answer.failure_store_failed", { message_id: assistantMessageId, error: storeErr });
    }
  }

  /** An upstream error before the stream: the user message stays, the answer is `failed`. */
  private async recordFailure(
    answer: { userId: string; conversationId: string; messageId: string },
    startedAt: number,
    error: MessageError,
    ledger: Parameters<typeof finishAnswer>[3],
    status: "failed" | "cancelled",
  ): Promise<void> {
    const now = Date.now();
    try {
      const stored = await finishAnswer(
        this.db,
        answer,
        {
          status,
          content: null,
          reasoningContent: null,
          toolCalls: null,
          finishReason: null,
          model: null,
          usage: null,
          error,
          ttftMs: null,
          durationMs: now - startedAt,
          completedAt: now,
        },
        ledger,
      );
      if (stored) this.log.append(answer.messageId, terminalEvent(1, stored));
      this.log.finish(answer.messageId, status, now);
    } catch (storeErr) {
      // The alarm closes the answer later from its log.
      logError("answer.store_failed", { message_id: answer.messageId, error: storeErr });
    }
  }

  /**
   * Closes answers whose owner died (their log says streaming, nothing here generates them):
   * stored as `interrupted` with the content their logged events carried, and their log ends
   * with `message.failed`, so resumed streams end too.
   */
  private async recoverOrphans(): Promise<void> {
    for (const record of this.log.streaming()) {
      if (this.active?.generation?.messageId === record.message_id) continue;
      if (this.active && !this.active.generation) continue; // a turn is opening right now
      await this.closeOrphan(record);
    }
  }

  private async closeOrphan(record: AnswerRecord): Promise<void> {
    const events = this.log.events(record.message_id, 0);
    const now = Date.now();
    const answer = {
      userId: record.user_id,
      conversationId: record.conversation_id,
      messageId: record.message_id,
    };
    const outcome = answerOutcome(accumulateLoggedAnswer(events), {
      status: "interrupted",
      error: { code: "interrupted", message: "The answer was interrupted when its server restarted." },
      estimatedPromptTokens: record.prompt_estimate,
      ttftMs: null,
      durationMs: now - record.started_at,
      completedAt: now,
    });
    const usage = outcome.usage!;
    const config = loadConfig(this.env);
    const stored =
      (await finishAnswer(
        this.db,
        answer,
        outcome,
        ledgerEntry({ day: record.day, model: record.model, usage }, config.modelPrices),
      )) ?? (await getMessage(this.db, record.user_id, record.message_id));
    const lastId = events.at(-1)?.id ?? record.last_event_id;
    if (stored && stored.status !== "streaming")
      this.log.append(record.message_id, terminalEvent(lastId + 1, stored));
    this.log.finish(record.message_id, stored?.status ?? "interrupted", now, usage.completion_tokens);
  }
}

/** A turn's stored new messages as its reply names them (see {@link TurnMessages}). */
function turnMessages(turn: { userMessage: Message; toolMessages: Message[] }): TurnMessages {
  return turn.userMessage.role === "tool"
    ? { user_message: turn.userMessage, tool_messages: turn.toolMessages }
    : { user_message: turn.userMessage };
}

/** The terminal event of a finished answer. */
function terminalEvent(id: number, message: Message): LoggedEvent {
  return terminalEventFrame(id, message);
}

/** The stored `error` of an answer whose upstream call failed before its stream. */
function upstreamErrorBody(err: unknown): MessageError {
  return err instanceof ApiError
    ? { code: err.code, message: err.message }
    : { code: "upstream_error", message: "The model provider could not be reached." };
}

/** A send to a conversation that does not exist, or is not the sender's: the two look the same. */
const conversationNotFound = () => new ApiError(404, "not_found", "Conversation not found.");

/** The stored `error` of an answer stopped by the deletion of its conversation. */
const DELETED: MessageError = {
  code: "conversation_deleted",
  message: "The conversation was deleted while its answer was being generated.",
};

/** What the sender of a turn stopped before DashScope's first byte gets. */
const stoppedBeforeStart = () => new ApiError(409, "conflict", "The answer was stopped before it started.");

const reusedId = () =>
  new ApiError(
    409,
    "conflict",
    "This client_message_id was already used for a different message.",
    "client_message_id",
  );

/** The log context of a turn: its lines carry the sender's request, user and conversation. */
function turnLogContext(input: TurnInput): LogContext {
  return { request_id: input.requestId, user_id: input.userId, conversation_id: input.conversationId };
}

/** A failed alarm schedule (this object being reset) is logged, never left unhandled. */
function logAlarmFailure(err: unknown): void {
  logError("alarm.schedule_failed", { error: err });
}
