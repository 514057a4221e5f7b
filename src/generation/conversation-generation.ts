import { DurableObject } from "cloudflare:workers";
import type { TurnContent } from "../chat/file-parts";
import { type PreparedTurn, prepareTurn, type TurnInput } from "../chat/prepare-turn";
import { rateLimited, withinRateLimit } from "../chat/rate-limit";
import { fromUpstreamFailure } from "../chat/upstream-error";
import { ledgerEntry, quotaRefusal, replyBounds, reservationAsk } from "../chat/usage";
import { type Config, loadConfig } from "../config";
import { type ChatCompletionRequestBody, createDashScopeClient } from "../dashscope/client";
import { ApiError, invalidRequest } from "../errors/api-error";
import { type LogContext, withLogContext } from "../log/context";
import { logError, logInfo } from "../log/log";
import { replayStream } from "../sse/response";
import {
  type ConversationPatch,
  conversationFromRow,
  createConversation,
  deleteConversation,
  getConversation,
  type NewConversation,
  updateConversation,
} from "../store/conversations";
import { purgeHiddenFiles, R2_DELETE_KEYS } from "../store/file-lifecycle";
import { isId, newId } from "../store/ids";
import { getMessage } from "../store/messages";
import { isStillExpired } from "../store/retention";
import { countRoundTrips } from "../store/round-trips";
import { laterBookmark, tagBookmark } from "../store/sessions";
import { bookmarkShard, userDb } from "../store/shards";
import {
  type AnswerOutcome,
  type CommittedTurn,
  commitTurn,
  findTurnByClientMessageId,
  finishAnswer,
  loadPath,
  loadPromptSource,
  type PromptSource,
  revokeTurn,
} from "../store/turns";
import type { Conversation, Message, MessageError } from "../store/types";
import { utcDay } from "../store/usage";
import type { OutboxEntry } from "../store/webhook-outbox";
import { queueAnswerWebhook } from "../webhooks/outbox-feed";
import { AnswerGeneration, AnswerStopped } from "./answer-generation";
import { AnswerLog, type AnswerRecord } from "./answer-log";
import { CONVERSATION_STORAGE_MIGRATIONS } from "./conversation-storage";
import { summarizeConversation } from "./conversation-summary";
import { firstExchange, titleConversation } from "./conversation-title";
import { terminalEventFrame } from "./event-data";
import { closeOrphan } from "./orphan-recovery";
import { PreStreamFailures } from "./pre-stream-failures";
import { PromptBlocks } from "./prompt-blocks";
import { PromptState } from "./prompt-state";
import { PromptSummaries } from "./prompt-summaries";
import { QuotaRefusalMemo } from "./quota-memo";
import { decideSend, type Send } from "./send-decision";
import { StorageSchema } from "./storage-schema";
import { hasFileParts, storeInlineImages, turnFiles, withImages } from "./turn-files";
import { failure, type TurnFailure } from "./turn-result";
import { UpstreamCall } from "./upstream-call";

/**
 * An idle Durable Object can be evicted after 70–140 s without incoming events, and a deploy
 * evicts them all; an alarm is an incoming event, so one every 30 s keeps the owner of a long
 * (thinking) answer alive, and after a real death it is what wakes the object to clean up.
 */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** History messages kept as prompt state: bounds the turn's cost however long the conversation grows. */
export const HISTORY_LIMIT = 200;
/**
 * Commits that may find the prompt state stale before a turn gives up (409 `conflict`). Each retry reads
 * the conversation afresh in the failed commit's own round trip; only a conversation rewritten
 * behind its object's back at every attempt could exhaust them.
 */
const MAX_STALE_COMMITS = 3;

/**
 * Files a conversation's delete purges itself (one R2 delete call); the rest of a conversation
 * with more is finished by the cron's sweep of hidden files, so the delete stays bounded.
 */
const FILES_PURGED_INLINE = R2_DELETE_KEYS;

/** The send holding the conversation's one turn slot, from its claim until its answer ends. */
interface Active extends Send {
  /** Settles once the turn is live, was found stored, or has failed before it was committed. */
  ready: Promise<Started | Stored | TurnFailure>;
  /** The answer's id and its upstream call's abort, once the turn is being opened. */
  messageId?: string;
  abort?: AbortController;
  generation?: AnswerGeneration;
  /** Set once the sender's response is a stream (or a 200): later failures arrive in it. */
  responded?: boolean;
  /** The HTTP error the sender gets for a call that failed before the response started. */
  preStartFailure?: unknown;
}

/** A turn's data URL images, stored as files by its first attempt (`storeInlineImages`). */
interface InlineImages {
  stored?: Promise<{ content: TurnContent; fileIds: string[] }>;
}

/** The object's key-value storage: the conversation's owner. */
const OWNER_KEY = "owner";

/** A turn whose answer is being generated here. */
interface Started {
  ok: true;
  kind: "live";
  generation: AnswerGeneration;
  call: UpstreamCall;
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
type TurnStartResult = { ok: true; stream: ReadableStream<Uint8Array>; d1_bookmark: Bookmark } | TurnFailure;
/**
 * The messages of a turn as `turn.started` and the `stream: false` reply carry them: a tool turn
 * adds its results as `tool_messages`, in call order (the last is `user_message`).
 */
type TurnMessages = { user_message: Message; tool_messages?: Message[] };
type TurnRunResult =
  | ({ ok: true; assistant_message: Message | null; d1_bookmark: Bookmark } & TurnMessages)
  | TurnFailure;
/**
 * The D1 bookmark (store/sessions.ts) of the latest write or read this object made on the user's
 * shard, once its work for the call is done: at least as new as the call's last commit. Null
 * when it has not touched D1 for that user.
 */
type Bookmark = string | null;
type FollowResult = { ok: true; stream: ReadableStream<Uint8Array> } | TurnFailure;

/**
 * The single writer of one conversation (one object per conversation), and the owner of its
 * in-flight answer.
 *
 * It keeps what a prompt is built from ({@link PromptState}: the conversation's fields and its
 * history window, in its own storage), so a turn starts its upstream call at once and commits
 * the new messages and the quota reservation to D1 concurrently; a commit that refuses (quota,
 * rate limit, a deleted conversation, a stale state) aborts the call before anything is relayed.
 * Every write to the conversation passes through here (turns, PATCH, DELETE), which keeps the
 * state current; the commit's version check catches any other change.
 *
 * It, not the client's request, reads DashScope's stream, so an answer is completed and stored
 * even when the phone goes away (a Worker's `waitUntil` would get only 30 s after a
 * disconnect). Being a single thread per conversation, it is also where "one answer at a time"
 * and retry-safe sends are decided. Every event of an answer goes to its {@link AnswerLog}, so
 * any client can resume after any event, and an answer whose owner died is closed with what was
 * received.
 */
export class ConversationGeneration extends DurableObject<Env> {
  /**
   * D1 round trips made by this object, in all and by the last turn: awaited before its upstream
   * call started, made concurrently with it (the commit), and after its stream (reported by
   * tests and benchmarks).
   */
  readonly metrics = {
    d1RoundTrips: 0,
    lastTurn: { beforeUpstream: 0, concurrent: 0, afterStream: 0 },
  };
  /** The latest D1 bookmark seen on each user's shard, by user id (see {@link db}). */
  private readonly bookmarks = new Map<string, string>();
  private readonly log: AnswerLog;
  private readonly promptState: PromptState;
  private readonly promptBlocks: PromptBlocks;
  private readonly promptSummaries: PromptSummaries;
  /** The running summary being made (one at a time; a turn that finds one in flight asks again next turn). */
  private summarizing: Promise<void> | null = null;
  private readonly preStreamFailures: PreStreamFailures;
  private readonly quotaMemo = new QuotaRefusalMemo();
  private active: Active | null = null;
  /**
   * The user owning this object's conversation, once known (kept in storage): anyone else is
   * refused before touching the turn slot. Null while unknown.
   */
  private owner: string | null = null;
  /** The prompt state's read from D1 in flight (from `userId`'s shard), shared by the sends waiting for it. */
  private loading: { userId: string; source: Promise<PromptSource | null> } | null = null;
  /** Set while a deletion stops this conversation's answer: a turn opening meanwhile is aborted too. */
  private deleting: MessageError | null = null;
  /**
   * The outbox entries of answers this object stored (by message id), until their webhook is put
   * on the queue: after the terminal event was published, once `delivered` is known.
   */
  private readonly storedWebhooks = new Map<string, OutboxEntry>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    new StorageSchema(ctx.storage, CONVERSATION_STORAGE_MIGRATIONS).migrate();
    this.log = new AnswerLog(ctx.storage, (err) => logError("answer_log.write_failed", { error: err }));
    this.promptState = new PromptState(ctx.storage.sql, HISTORY_LIMIT);
    this.promptBlocks = new PromptBlocks(ctx.storage.sql);
    this.promptSummaries = new PromptSummaries(ctx.storage.sql);
    this.preStreamFailures = new PreStreamFailures(ctx.storage);
    // A fresh instance holding answers marked streaming means their owner died: let the
    // alarm close them.
    if (this.log.streaming().length > 0) ctx.storage.setAlarm(Date.now()).catch(logAlarmFailure);
    void ctx.blockConcurrencyWhile(async () => {
      this.owner = this.promptState.owner() ?? (await ctx.storage.get<string>(OWNER_KEY)) ?? null;
    });
  }

  /**
   * Starts a streamed turn (or attaches a retried send to its turn). The stream starts once the
   * turn is committed, as soon as DashScope's status is known and no later than
   * `STREAM_START_DEADLINE_MS` after the commit; a call that failed before that gets its HTTP
   * error instead. The stream carries every event of the answer, with pings from its first byte.
   */
  async startTurn(input: TurnInput): Promise<TurnStartResult> {
    return this.withFailureBookmark(input.userId, await this.startTurnOnce(input));
  }

  private async startTurnOnce(input: TurnInput): Promise<TurnStartResult> {
    const turn = await withLogContext(turnLogContext(input), () => this.turn(input));
    if (!turn.ok) return turn;
    if (turn.kind === "live") {
      const deadline = loadConfig(this.env).streamStartDeadlineMs;
      const started = await this.responseStart(turn, deadline);
      if (started) return started;
      return {
        ok: true,
        stream: this.followLive(turn.generation, 0),
        d1_bookmark: this.bookmarkOf(input.userId),
      };
    }
    const failedBefore = await this.failedBeforeStream(turn);
    if (failedBefore) return failedBefore;
    if (!turn.assistantMessage)
      return failure(new ApiError(409, "conflict", "This message was stored without an answer."));
    const followed = await this.follow(turn.assistantMessage.id, input.userId, 0);
    return followed.ok ? { ...followed, d1_bookmark: this.bookmarkOf(input.userId) } : followed;
  }

  /** Runs a turn to its end (`stream: false`); a call that fails before its first byte is its HTTP error. */
  async runTurn(input: TurnInput): Promise<TurnRunResult> {
    return this.withFailureBookmark(input.userId, await this.runTurnOnce(input));
  }

  /**
   * A refused or failed turn may have written (a `failed` answer after a content-filter 422, an
   * upstream error): its error response carries the bookmark too, so the app reads those rows back.
   */
  private withFailureBookmark<T extends { ok: true } | TurnFailure>(userId: string, result: T): T {
    return result.ok ? result : { ...result, d1_bookmark: this.bookmarkOf(userId) };
  }

  private async runTurnOnce(input: TurnInput): Promise<TurnRunResult> {
    const turn = await withLogContext(turnLogContext(input), () => this.turn(input));
    if (!turn.ok) return turn;
    if (turn.kind === "stored") {
      const failedBefore = await this.failedBeforeStream(turn);
      if (failedBefore) return failedBefore;
      return {
        ok: true,
        ...turnMessages(turn),
        assistant_message: turn.assistantMessage,
        d1_bookmark: this.bookmarkOf(input.userId),
      };
    }
    const started = await this.responseStart(turn, null);
    if (started) return started;
    const assistant = await turn.generation.done;
    return {
      ok: true,
      ...turnMessages(turn),
      assistant_message: assistant,
      d1_bookmark: this.bookmarkOf(input.userId),
    };
  }

  /**
   * The events of an answer after `afterId`, exactly once and in order, then the live tail
   * while it is generated (from `turn.started` on, also while DashScope's first byte is awaited);
   * for a finished answer, what was missed up to its terminal event.
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
      const message = await getMessage(this.db(userId), userId, messageId);
      // With the bookmark of this read: at least as new as the answer's store.
      events = message
        ? [terminalEventFrame(record.last_event_id, message, this.handedOutBookmark(userId))]
        : [];
    }
    return { ok: true, stream: replayStream(events) };
  }

  /**
   * Stops an answer being generated here (also while DashScope's first byte is awaited: the call
   * is aborted and the answer ends `cancelled`); resolves with the stored answer and the bookmark
   * of its store, or null when it is not generated here.
   */
  async stop(messageId: string, userId: string): Promise<{ message: Message; d1_bookmark: Bookmark } | null> {
    if (this.isForeign(userId)) return null;
    const record = this.log.get(messageId);
    if (!record || record.user_id !== userId) return null;
    const live = this.liveGeneration(messageId);
    if (live && !live.finished) {
      live.stop();
      const message = await live.done;
      return { message, d1_bookmark: this.bookmarkOf(userId) };
    }
    await this.recoverOrphans();
    return null;
  }

  /**
   * Creates the conversation this object is named after, holding its prompt state from the start;
   * resolves with it and the bookmark of its insert.
   */
  async createConversation(
    conversationId: string,
    userId: string,
    input: NewConversation,
  ): Promise<{ conversation: Conversation; d1_bookmark: Bookmark }> {
    const row = await createConversation(this.db(userId), userId, input, conversationId);
    this.learnOwner(userId);
    this.promptState.replace({ conversation: row, history: [] });
    return { conversation: conversationFromRow(row), d1_bookmark: this.bookmarkOf(userId) };
  }

  /**
   * Applies a PATCH to the user's conversation, keeping the prompt state current (the next turn
   * uses the new system prompt, model and defaults, or the path through `active_leaf_id`).
   */
  async updateConversation(
    conversationId: string,
    userId: string,
    patch: ConversationPatch,
  ): Promise<{ ok: true; conversation: Conversation; d1_bookmark: Bookmark } | TurnFailure> {
    const notFound = failure(conversationNotFound());
    if (this.isForeign(userId)) return notFound;
    if (patch.active_leaf_id !== undefined) {
      const leaf = isId(patch.active_leaf_id)
        ? await getMessage(this.db(userId), userId, patch.active_leaf_id)
        : null;
      if (leaf?.conversation_id !== conversationId) {
        if (!(await getConversation(this.db(userId), userId, conversationId))) return notFound;
        return failure(
          invalidRequest("active_leaf_id is not a message of this conversation.", "active_leaf_id"),
        );
      }
    }
    const updated = await updateConversation(this.db(userId), userId, conversationId, patch);
    if (!updated) return notFound;
    this.learnOwner(userId);
    if (patch.active_leaf_id !== undefined) {
      // Another path: read from D1 before the next turn.
      this.promptState.drop();
    } else {
      this.promptState.advance(updated.version, () => this.promptState.setConversation(updated.row));
    }
    return { ok: true, conversation: conversationFromRow(updated.row), d1_bookmark: this.bookmarkOf(userId) };
  }

  /**
   * Deletes the user's conversation (D1 cascades to its messages) after stopping its answer in
   * flight: the upstream call is aborted, the answer is settled with what was generated, and its
   * streams end with `message.failed` (`cancelled`, `conversation_deleted`). Then this object
   * forgets the conversation's answers and prompt state, so their events are 404 too. `deleted`
   * is false when the user has no such conversation (another user's turn here is left alone);
   * `d1_bookmark` is the bookmark after the delete.
   */
  async deleteConversation(
    conversationId: string,
    userId: string,
  ): Promise<{ deleted: boolean; d1_bookmark: Bookmark }> {
    if (this.isForeign(userId)) return { deleted: false, d1_bookmark: null };
    if (this.active?.userId === userId) {
      this.deleting = DELETED;
      try {
        for (let active = this.active; active?.userId === userId; active = this.active) {
          if (active.generation) {
            active.generation.stop(DELETED);
            await active.generation.done;
          } else {
            active.abort?.abort(new AnswerStopped(DELETED));
            // A turn that was committed when the abort came ends through its generation.
            const opened = await active.ready;
            if (opened.ok && opened.kind === "live") await opened.generation.done;
          }
        }
      } finally {
        this.deleting = null;
      }
    }
    const { deleted, hiddenFiles } = await deleteConversation(this.db(userId), userId, conversationId);
    if (deleted) {
      this.log.forget();
      this.promptState.drop();
      await this.preStreamFailures.forget(Number.POSITIVE_INFINITY);
    }
    await this.purgeFiles(userId, conversationId, hiddenFiles);
    return { deleted, d1_bookmark: this.bookmarkOf(userId) };
  }

  /**
   * Deletes the R2 objects and rows of the files the conversation's delete hid (the files no other
   * conversation refers to). The conversation is gone whatever happens here: a failure, or more
   * files than {@link FILES_PURGED_INLINE}, is left to the cron's sweep of hidden files.
   */
  private async purgeFiles(userId: string, conversationId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      await purgeHiddenFiles(this.db(userId), this.env.FILES, ids.slice(0, FILES_PURGED_INLINE));
    } catch (err) {
      logError("conversation.files_purge_failed", {
        user_id: userId,
        conversation_id: conversationId,
        message: `${ids.length} file(s) hidden; the cron's sweep deletes them`,
        error: err,
      });
    }
  }

  /**
   * Account deletion (`DELETE /v1/account`): as {@link deleteConversation} (an answer in flight is
   * stopped, the D1 row deleted if it is still there), then empties this object's storage whether
   * or not the row was still there (the account deletion deletes its rows itself), alarm
   * included; only the empty schema is made again, as for a new object, so this instance keeps
   * answering (every id 404). Another user's conversation is left alone.
   */
  async purge(conversationId: string, userId: string): Promise<void> {
    if (this.isForeign(userId)) return;
    await this.deleteConversation(conversationId, userId);
    this.log.forget();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    new StorageSchema(this.ctx.storage, CONVERSATION_STORAGE_MIGRATIONS).migrate();
    this.owner = null;
  }

  /**
   * Retention (`RETENTION_DAYS`, `./retention.ts`): deletes the user's conversation as
   * {@link purge} does (its D1 rows, search rows and event log, this object's storage), but only
   * while it is expired: last active before `cutoff` (epoch ms) and without an answer in flight,
   * here or left `streaming` in D1. A conversation with an answer in flight is kept for a later
   * run rather than cut. Returns `"deleted"`, `"busy"` (an answer in flight) or `"kept"` (recent
   * again, gone, or another user's).
   */
  async expire(conversationId: string, userId: string, cutoff: number): Promise<"deleted" | "busy" | "kept"> {
    if (this.isForeign(userId)) return "kept";
    if (this.active) return "busy";
    if (!(await isStillExpired(this.db(userId), userId, conversationId, cutoff))) return "kept";
    // A send may have claimed the turn slot while D1 answered: its turn goes on.
    if (this.active) return "busy";
    // From here on a send arriving finds the row deleted (its commit refuses), as after a DELETE.
    await this.purge(conversationId, userId);
    return "deleted";
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
    await this.preStreamFailures.forget(now - retentionMs);
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
   * The prompt state: as kept here, else read from D1 once (sends arriving meanwhile share the
   * read). Null when there is no such conversation.
   */
  private async promptSource(conversationId: string, userId: string): Promise<PromptSource | null> {
    const held = this.promptState.get();
    if (held) return held;
    // Read from the sender's shard: the conversation is found only there if the sender owns it.
    if (this.loading?.userId === userId) return this.loading.source;
    const loading = {
      userId,
      source: loadPromptSource(this.db(userId), conversationId, HISTORY_LIMIT)
        .then((source) => {
          if (source) {
            this.promptState.replace(source);
            this.learnOwner(source.conversation.user_id);
          }
          return source;
        })
        .finally(() => {
          if (this.loading === loading) this.loading = null;
        }),
    };
    this.loading = loading;
    return loading.source;
  }

  /**
   * `userId`'s shard (store/shards.ts `userDb`), its round trips counted in {@link metrics}. The
   * owner of the conversation is known on every call (the route passes the user), so the
   * conversation's rows are always read and written on its owner's shard.
   *
   * Each call opens a new D1 session at the primary (`"first-primary"`: the first query goes to
   * the primary, as a plain binding's queries all do; opening one costs no round trip), so this
   * object reads what any writer committed, and the bookmark of every query is kept for the
   * routes and the terminal event ({@link bookmarkOf}).
   */
  private db(userId: string): D1DatabaseSession {
    const session = userDb(this.env, userId).withSession("first-primary");
    return countRoundTrips(
      session,
      () => this.metrics.d1RoundTrips++,
      () => {
        const latest = laterBookmark(this.bookmarks.get(userId) ?? null, session.getBookmark());
        if (latest !== null) this.bookmarks.set(userId, latest);
      },
    );
  }

  /** The latest D1 bookmark this object has seen on `userId`'s shard ({@link Bookmark}). */
  private bookmarkOf(userId: string): Bookmark {
    return this.bookmarks.get(userId) ?? null;
  }

  /**
   * {@link bookmarkOf} as the terminal events hand it to the app: tagged with the user's shard
   * (store/sessions.ts `tagBookmark`). The RPC results carry it untagged: the route adds it to the
   * request's session, whose response header tags it.
   */
  private handedOutBookmark(userId: string): Bookmark {
    return tagBookmark(this.bookmarkOf(userId), bookmarkShard(this.env, userId).index);
  }

  /**
   * A retried send whose first request failed before its stream: that request's error (a
   * retry gets the same status and form as the first request, not a stream of `message.failed`).
   */
  private async failedBeforeStream(turn: Stored): Promise<TurnFailure | null> {
    const answer = turn.assistantMessage;
    if (!answer || (answer.status !== "failed" && answer.status !== "cancelled")) return null;
    return this.preStreamFailures.get(answer.id);
  }

  /**
   * Waits until the sender's response can start: DashScope's 200 is in (with `deadlineMs`: or
   * that long has passed since the commit), or the call has settled. Returns the HTTP error of a
   * call that failed first; null when the response is a stream (or a 200), whose later failures
   * arrive in it. Without a deadline (a `stream: false` turn), waits for the first byte.
   */
  private async responseStart(turn: Started, deadlineMs: number | null): Promise<TurnFailure | null> {
    const active = this.active;
    const claim = active?.generation === turn.generation ? active : null;
    if (claim?.responded) return null;
    if (!turn.call.failed) {
      const waits: Promise<unknown>[] = [
        deadlineMs === null ? turn.call.settled : turn.call.headersOrSettled,
      ];
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (deadlineMs !== null)
        waits.push(new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs))));
      await Promise.race(waits);
      clearTimeout(timer);
    }
    if (turn.call.failed) {
      // The answer is stored `failed`/`cancelled` by its generation, which kept this error first.
      await turn.generation.done;
      const kept = await this.preStreamFailures.get(turn.generation.messageId);
      return kept ?? failure(preStartError(turn.call.failed.error));
    }
    if (claim) claim.responded = true;
    return null;
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

  /**
   * Event text held in memory for resume (see {@link EventBroadcast.textLength}): only the answer being
   * generated holds any. A finished answer is replayed from the answer log, so an idle object keeps
   * none: with each idle object keeping its last answer's events, a 1,000-token answer cost 258 KiB
   * of isolate heap per object, and a 100-token one 36 KiB (BENCHMARKS.md, memory).
   */
  get heldEventText(): number {
    return this.inMemory().reduce((n, g) => n + g.events.textLength, 0);
  }

  /** The answers this object holds in memory, and follows or stops without the log. */
  private inMemory(): AnswerGeneration[] {
    return this.active?.generation ? [this.active.generation] : [];
  }

  private liveGeneration(messageId: string): AnswerGeneration | null {
    return this.inMemory().find((g) => g.messageId === messageId) ?? null;
  }

  private followLive(generation: AnswerGeneration, afterId: number): ReadableStream<Uint8Array> {
    return generation.events.follow(afterId, () => {
      if (generation.cancelOnDisconnect && generation.events.followerCount === 0) generation.stop();
    });
  }

  /** Decides what a send is (see {@link decideSend}) and opens a new turn. */
  private async turn(input: TurnInput): Promise<Started | Stored | TurnFailure> {
    // Ownership before the slot: the owner is known from the prompt state (read from D1 once,
    // shared by concurrent sends), so a stranger is refused before touching the slot, and is
    // never told the conversation exists.
    if (this.owner === null) await this.promptSource(input.conversationId, input.userId);
    // Unknown still: there is no such conversation, which must look the same.
    if (this.owner === null) return this.refuseForeign(input);
    const active = this.active;
    switch (decideSend(input, this.owner, active)) {
      case "foreign":
        return this.refuseForeign(input);
      case "attach":
        return active!.ready;
      case "reused-id":
        return failure(reusedId());
      case "find-stored":
        return (await this.storedSend(input)) ?? failure(turnInProgress());
      case "busy":
        return failure(turnInProgress());
      case "new":
        break;
    }
    // Claimed before the first await: the object is single-threaded, but awaits interleave.
    let settle!: (r: Started | Stored | TurnFailure) => void;
    const claim: Active = {
      userId: input.userId,
      clientMessageId: input.clientMessageId,
      requestHash: input.requestHash,
      ready: new Promise((resolve) => (settle = resolve)),
    };
    this.active = claim;
    let result: Started | Stored | TurnFailure;
    try {
      result = await this.open(input, claim);
    } catch (err) {
      result = failure(err);
    }
    if (!result.ok || result.kind === "stored") this.active = null;
    // Concurrent retries of this same send get the same outcome.
    settle(result);
    return result;
  }

  /** The send stored earlier under the input's `client_message_id`, or null (one D1 round trip). */
  private async storedSend(input: TurnInput): Promise<Stored | TurnFailure | null> {
    if (!input.clientMessageId) return null;
    const stored = await findTurnByClientMessageId(
      this.db(input.userId),
      input.userId,
      input.conversationId,
      input.clientMessageId,
    );
    return stored ? this.storedTurn(stored, input) : null;
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

  /**
   * Opens a turn: builds its prompt from the prompt state, starts the upstream call, and commits
   * the turn to D1 concurrently (commit first while a quota refusal is remembered). A refused
   * commit aborts the call; a stale state is replaced by the commit's fresh read and the turn is
   * built again.
   */
  private async open(input: TurnInput, claim: Active): Promise<Started | Stored | TurnFailure> {
    const config = loadConfig(this.env);
    const tripsAtStart = this.metrics.d1RoundTrips;
    let source = await this.promptSource(input.conversationId, input.userId);
    // The message's data URL images are stored as files once, whatever attempt commits.
    const inline: InlineImages = {};
    for (let attempt = 1; ; attempt++) {
      if (!source || source.conversation.user_id !== input.userId) throw conversationNotFound();
      const opened = await this.openFrom(source, input, claim, config, tripsAtStart, inline);
      if (!("kind" in opened) || opened.kind !== "stale") return opened;
      source = opened.source;
      this.promptState.replace(source);
      if (attempt >= MAX_STALE_COMMITS)
        throw new ApiError(
          409,
          "conflict",
          "The conversation kept changing while this turn was stored; send it again.",
        );
    }
  }

  private async openFrom(
    source: PromptSource,
    input: TurnInput,
    claim: Active,
    config: Config,
    tripsAtStart: number,
    inline: InlineImages,
  ): Promise<Started | Stored | TurnFailure | Extract<CommittedTurn, { kind: "stale" }>> {
    const now = Date.now();
    const ids = { userId: input.userId, conversationId: input.conversationId };
    // A retry of a send stored here before is answered from D1, without calling DashScope (the
    // log knows the sends of the retention period; an older one is caught by the commit).
    if (input.clientMessageId && this.log.hasClientMessageId(input.clientMessageId)) {
      const stored = await this.storedSend(input);
      if (stored) return stored;
    }
    // The path the new message follows: the active one, or the branch of an edit.
    const branch = await this.branchOf(source, input);
    // The files the prompt names (a D1 read only when the history has file parts).
    const files = await turnFiles(
      this.db(input.userId),
      input.userId,
      branch.source.history,
      input.role === "user" ? input.files : [],
    );
    let prepared: PreparedTurn;
    try {
      // Invalid only in the light of the stored conversation: a 400 before anything is written.
      const summaries = new Map([...this.promptSummaries.all()].map(([through, s]) => [through, s.content]));
      prepared = prepareTurn(branch.source, input, config, files, this.promptBlocks.all(), summaries);
    } catch (err) {
      // A retry of a send the conversation has moved past may no longer fit it (its tool
      // results answer an older answer): it is still that send.
      const stored = input.clientMessageId ? await this.storedSend(input) : null;
      if (stored) return stored;
      throw err;
    }
    // One message per tool result (ids ascending, in the order of the calls), else the user's.
    const messageIds = input.role === "tool" ? prepared.toolResults.map(() => newId()) : [newId()];
    const userMessageId = messageIds.at(-1)!;
    const assistantMessageId = newId();
    const lastResult = prepared.toolResults.at(-1) ?? null;
    const day = utcDay(now);
    const model = prepared.model;
    // What the message stores: its data URL images as files (no D1 row holds image bytes).
    if (input.role === "user")
      inline.stored ??= storeInlineImages(this.db(input.userId), this.env.FILES, input.userId, input.content);
    const stored = input.role === "user" ? await inline.stored! : null;
    // File parts become images: R2 reads (or signed URLs) run alongside the commit below; the
    // call starts once they are in. A turn without files starts its call at once, as before.
    const withFiles = hasFileParts(prepared.request)
      ? withImages(prepared.request, files, this.env, config)
      : null;

    const abort = new AbortController();
    claim.messageId = assistantMessageId;
    claim.abort = abort;
    if (this.deleting) abort.abort(new AnswerStopped(this.deleting));
    const client = createDashScopeClient(config);
    const startCall = (request: ChatCompletionRequestBody) => {
      const call = new UpstreamCall(client, request, abort.signal);
      // Settled by the answer (or by the abort below); never an unhandled rejection.
      call.stream.catch(() => {});
      return call;
    };
    // While a quota refusal is remembered, DashScope is called only after the commit reserved.
    // The reservation: the prompt as it will be sent, and the whole reply it may generate (the
    // model's maximum output and chain of thought unless the turn bounds them); a budget that
    // cannot hold it all grants what is left, and the answer is cut there (`ReplyLimit`).
    const ask = reservationAsk(
      prepared.estimatedPromptTokens,
      replyBounds(prepared.parameters, model, config),
    );
    const commitFirst = this.quotaMemo.holds(input.userId, now);
    let call: UpstreamCall | null = null;
    let calling: Promise<void> = Promise.resolve();
    if (!commitFirst) {
      if (withFiles)
        calling = withFiles.then((request) => {
          call = startCall(request);
        });
      else call = startCall(prepared.request);
    }
    const tripsBeforeUpstream = this.metrics.d1RoundTrips - tripsAtStart;

    // The rate limit is counted while the commit is in flight: the two waits overlap.
    const allowed = input.rateLimitTier
      ? withinRateLimit(this.env, input.rateLimitTier, input.userId)
      : Promise.resolve(true);
    const committing = commitTurn(this.db(input.userId), {
      ...ids,
      expectedVersion: source.conversation.version,
      parentId: branch.parentId,
      userMessageId,
      assistantMessageId,
      role: input.role,
      contentJson: JSON.stringify(lastResult ? lastResult.content : stored ? stored.content : null),
      fileIds: input.role === "user" ? [...input.files.map((f) => f.id), ...(stored?.fileIds ?? [])] : [],
      toolCallId: lastResult?.toolCallId ?? null,
      earlierToolResults: prepared.toolResults.slice(0, -1).map((r, i) => ({
        id: messageIds[i]!,
        contentJson: JSON.stringify(r.content),
        toolCallId: r.toolCallId,
      })),
      clientMessageId: input.clientMessageId,
      requestHash: input.requestHash,
      model,
      historyLimit: HISTORY_LIMIT,
      now,
      quota: {
        day,
        tokens: ask.wanted,
        minimumTokens: ask.minimum,
        defaultBudget: config.dailyTokenBudget,
        expiresAt: now + config.quotaReservationTtlMs,
      },
    });
    const [committed, withinLimit] = await Promise.all([committing, allowed]);
    // Nothing was relayed: a refused commit only has to take the call back.
    const refuse = () => abort.abort(new Error(CALL_ABANDONED));
    if (!committed) {
      refuse();
      this.promptState.drop();
      throw conversationNotFound();
    }
    if (committed.kind === "duplicate") {
      refuse();
      return this.storedTurn(committed, input);
    }
    if (committed.kind === "stale") {
      refuse();
      return committed;
    }
    if (!withinLimit) {
      refuse();
      // Over the limit: take back what the commit stored (the refused path pays a second round trip).
      if (committed.kind === "new") {
        await revokeTurn(this.db(input.userId), {
          ...ids,
          messageIds,
          assistantMessageId,
          previousLeafId: source.conversation.active_leaf_id,
        });
        this.promptState.drop();
      }
      throw rateLimited(config.rateLimitPerMinute[input.rateLimitTier!]);
    }
    if (committed.kind === "refused") {
      refuse();
      this.quotaMemo.remember(input.userId, now);
      throw quotaRefusal(committed.quota, now, "start new turns");
    }
    this.quotaMemo.forget(input.userId);
    this.learnOwner(input.userId);
    // A fold opens the block the path's next turns repeat (recorded once the turn is stored).
    const block = prepared.block;
    if (block?.folded && block.start !== null && block.anchor !== null)
      this.promptBlocks.record(block.start, block.anchor, block.summary);
    const { userMessage, toolMessages, assistantMessage } = committed;
    const added = input.role === "tool" ? toolMessages : input.role === "user" ? [userMessage] : [];
    if (branch.edit) {
      // The edit's branch is the active path now.
      this.promptState.replace({
        conversation: {
          ...source.conversation,
          version: committed.version,
          active_leaf_id: assistantMessage.id,
        },
        history: branch.source.history,
      });
      this.promptState.putMessages(added);
    } else {
      this.promptState.advance({ before: source.conversation.version, after: committed.version }, () => {
        this.promptState.putMessages(added);
        this.promptState.setActiveLeaf(assistantMessage.id);
      });
    }
    await calling;
    call ??= startCall(withFiles ? await withFiles : prepared.request);
    return this.startAnswer({
      input,
      claim,
      prepared,
      call,
      abort,
      day,
      model,
      assistantMessage,
      userMessage,
      toolMessages,
      tripsAtStart,
      tripsBeforeUpstream,
      grantedTokens: committed.grantedTokens,
      wantedTokens: ask.wanted,
    });
  }

  /** The committed turn's answer: logged, published from `turn.started` on, generated here. */
  private startAnswer(t: {
    input: TurnInput;
    claim: Active;
    prepared: PreparedTurn;
    call: UpstreamCall;
    abort: AbortController;
    day: string;
    model: string;
    assistantMessage: Message;
    userMessage: Message;
    toolMessages: Message[];
    grantedTokens: number;
    /** The whole reply bounds' reservation, of which `grantedTokens` was granted. */
    wantedTokens: number;
    tripsAtStart: number;
    tripsBeforeUpstream: number;
  }): Started {
    const { input, claim, prepared, call, day, model } = t;
    const config = loadConfig(this.env);
    const assistantMessageId = t.assistantMessage.id;
    const answer = {
      userId: input.userId,
      conversationId: input.conversationId,
      messageId: assistantMessageId,
    };
    const ledger = (outcome: AnswerOutcome) =>
      ledgerEntry(
        { day, model, usage: outcome.usage, pricedModel: outcome.model, cache: outcome.cache },
        config.modelPrices,
      );
    this.log.begin({
      message_id: assistantMessageId,
      user_id: input.userId,
      conversation_id: input.conversationId,
      user_message_id: t.userMessage.id,
      client_message_id: input.clientMessageId,
      request_hash: input.requestHash,
      started_at: call.startedAt,
      prompt_estimate: prepared.estimatedPromptTokens,
      day,
      model,
    });
    // Not awaited: the answer need not wait for the heartbeat to be scheduled.
    this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_INTERVAL_MS).catch(logAlarmFailure);
    const tripsAtCommit = this.metrics.d1RoundTrips;

    const generation = new AnswerGeneration({
      messageId: assistantMessageId,
      placeholder: t.assistantMessage,
      upstream: call.stream,
      startedAt: call.startedAt,
      abort: t.abort,
      cancelOnDisconnect: input.cancelOnDisconnect,
      pingIntervalMs: config.ssePingIntervalMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      estimatedPromptTokens: prepared.estimatedPromptTokens,
      // A whole grant holds every bound DashScope keeps itself (`max_tokens`, the model's
      // maxima); only a partial one needs counting what streams in, which errs high.
      replyRoomTokens:
        t.grantedTokens < t.wantedTokens ? t.grantedTokens - prepared.estimatedPromptTokens : undefined,
      sink: {
        persist: async (outcome) => {
          if (call.failed && !claim.responded) {
            // The sender gets this as its HTTP error; kept before the answer is stored as
            // failed, so a retry that finds it so gets the same.
            claim.preStartFailure = preStartError(call.failed.error);
            await this.rememberFailedBeforeStream(assistantMessageId, claim.preStartFailure);
          }
          return this.finish(answer, outcome, ledger(outcome));
        },
        bookmark: () => this.handedOutBookmark(input.userId),
        logEvent: (id, event, data) => this.log.append(assistantMessageId, { id, event, data }),
      },
    });
    claim.generation = generation;
    generation.start({
      ...turnMessages({ userMessage: t.userMessage, toolMessages: t.toolMessages }),
      assistant_message: t.assistantMessage,
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
          beforeUpstream: t.tripsBeforeUpstream,
          concurrent: tripsAtCommit - t.tripsAtStart - t.tripsBeforeUpstream,
          afterStream: this.metrics.d1RoundTrips - tripsAtCommit,
        };
        if (this.active === claim) this.active = null;
        this.queueWebhook(assistantMessageId, generation.delivered);
        // One structured line per turn for Workers Logs (and the benchmarks); never content.
        logInfo("turn.finished", {
          message_id: message.id,
          status: message.status,
          model: message.model,
          upstream_attempts: generation.attempts,
          d1_round_trips_before_upstream: this.metrics.lastTurn.beforeUpstream,
          d1_round_trips_concurrent: this.metrics.lastTurn.concurrent,
          d1_round_trips_after_stream: this.metrics.lastTurn.afterStream,
          history_included: prepared.historyIncluded,
          history_omitted: prepared.historyOmitted,
          usage: message.usage,
        });
        this.summarizeAfter(input, prepared);
        // Titles an untitled conversation after its first completed answer, off the turn's path
        // (the shard uncounted: its round trips are no turn's, so the turn metrics leave them out).
        const exchange = firstExchange(this.promptState.get(), t.userMessage, message);
        const titleModel = config.titleModel;
        if (exchange && titleModel !== null) {
          const { userId, conversationId } = input;
          this.ctx.waitUntil(
            titleConversation({
              db: userDb(this.env, userId),
              config,
              model: titleModel,
              userId,
              conversationId,
              ...exchange,
            }),
          );
        }
      })
      .catch((err: unknown) =>
        logError("turn.finish_failed", { message_id: assistantMessageId, error: err }),
      );
    return {
      ok: true,
      kind: "live",
      generation,
      call,
      userMessage: t.userMessage,
      toolMessages: t.toolMessages,
    };
  }

  /**
   * The path a turn's new message follows, and the prompt source built on it: the active path
   * (the state as it is), or for an edit (`parentId` another message) the path root → parentId,
   * cut from the window when it lies on the active path, else read from D1 (one round trip).
   */
  /**
   * Makes the running summary the turn asked for (`prepared.block.summarize`), in the background
   * once the answer is done: no answer waits for it, and the next turns are served meanwhile
   * (the summary call is an awaited fetch, at which this object takes other events). One at a
   * time; the summary is stored beside the blocks if this object's conversation still exists.
   * Its shard round trips are no turn's (uncounted in the turn metrics), as for titles.
   */
  private summarizeAfter(input: TurnInput, prepared: PreparedTurn): void {
    const config = loadConfig(this.env);
    const wanted = prepared.block?.summarize;
    const model = config.summaryModel;
    if (!wanted || model === null || this.summarizing) return;
    const { userId, conversationId } = input;
    const previous =
      wanted.previous === null ? null : (this.promptSummaries.all().get(wanted.previous)?.content ?? null);
    const job = summarizeConversation({
      db: userDb(this.env, userId),
      config,
      model,
      userId,
      conversationId,
      // A previous summary forgotten since the turn began: the turns are folded into a new one.
      previous,
      messages: wanted.messages,
    }).then(({ content }) => {
      if (content === null || this.owner !== userId) return;
      this.promptSummaries.record({
        through: wanted.through,
        previous: previous === null ? null : wanted.previous,
        content,
        model,
      });
    });
    this.summarizing = job.finally(() => {
      this.summarizing = null;
    });
    this.ctx.waitUntil(this.summarizing);
  }

  private async branchOf(
    source: PromptSource,
    input: TurnInput,
  ): Promise<{ source: PromptSource; parentId: string | null; edit: boolean }> {
    const leaf = source.conversation.active_leaf_id ?? source.history[0]?.id ?? null;
    const parentId = input.parentId;
    // A regenerated answer always starts a branch: a sibling of the answer it replaces.
    const regenerate = input.role === "regenerate";
    if (!regenerate && (parentId === undefined || parentId === leaf))
      return { source, parentId: leaf, edit: false };
    if (parentId === undefined) throw invalidRequest("A regenerated answer needs the message it answers.");
    if (input.role === "tool") throw invalidRequest("parent_id is for a user message only.", "parent_id");
    if (parentId === null) return { source: { ...source, history: [] }, parentId, edit: true };
    const onPath = source.history.findIndex((m) => m.id === parentId);
    const history =
      onPath >= 0
        ? source.history.slice(onPath)
        : await loadPath(this.db(input.userId), {
            userId: input.userId,
            conversationId: input.conversationId,
            leaf: parentId,
            limit: HISTORY_LIMIT,
          });
    if (!history) throw invalidRequest("parent_id is not a message of this conversation.", "parent_id");
    // A user message follows an answer (the one the edited message followed); a regenerated
    // answer follows the message it answers, as the route found it.
    const parent = history[0];
    if (!regenerate && (parent?.id !== parentId || parent.role !== "assistant"))
      throw invalidRequest(
        "parent_id must be a finished answer of this conversation (the one the edited message followed), or null for the first message.",
        "parent_id",
      );
    return { source: { ...source, history }, parentId, edit: true };
  }

  /**
   * Stores an answer's final state in D1 and applies it to the prompt state. With `WEBHOOK_URL`
   * set, its webhook is recorded in the outbox in the same batch (so a stored answer is announced
   * even if this object dies next: the cron sends what was not sent), and kept here for
   * {@link queueWebhook}.
   */
  private async finish(
    answer: { userId: string; conversationId: string; messageId: string },
    outcome: AnswerOutcome,
    ledger: Parameters<typeof finishAnswer>[3],
  ): Promise<Message | null> {
    const webhook: OutboxEntry | null = loadConfig(this.env).webhook.url
      ? {
          id: newId(),
          type: outcome.status === "completed" ? "message.completed" : "message.failed",
          data: {
            user_id: answer.userId,
            conversation_id: answer.conversationId,
            message_id: answer.messageId,
            status: outcome.status,
            finish_reason: outcome.finishReason,
            usage: outcome.usage,
          },
          createdAt: outcome.completedAt,
        }
      : null;
    const { message, version } = await finishAnswer(this.db(answer.userId), answer, outcome, ledger, webhook);
    if (message && webhook) this.storedWebhooks.set(answer.messageId, webhook);
    this.promptState.advance(version, () => {
      if (message) this.promptState.putMessages([message]);
    });
    return message;
  }

  /**
   * Puts the webhook of an answer this object stored on the queue (not awaited by the answer):
   * `delivered` says whether its terminal event was written to an open stream. Nothing to do when
   * webhooks are off, or when the storing batch's result was lost (a retried store found the answer
   * finished): the row is in the outbox, and the cron sends it.
   */
  private queueWebhook(messageId: string, delivered: boolean): void {
    const webhook = this.storedWebhooks.get(messageId);
    if (!webhook) return;
    this.storedWebhooks.delete(messageId);
    // Uncounted: these round trips are after the answer, no turn's (the turn metrics leave them out).
    this.ctx.waitUntil(queueAnswerWebhook(this.env, webhook, delivered));
  }

  private async rememberFailedBeforeStream(assistantMessageId: string, err: unknown): Promise<void> {
    try {
      await this.preStreamFailures.remember(assistantMessageId, err);
    } catch (storeErr) {
      // The retry then replays the answer's `message.failed`, as before this was kept.
      logError("answer.failure_store_failed", { message_id: assistantMessageId, error: storeErr });
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
      await closeOrphan(
        {
          log: this.log,
          finish: (r, outcome) => this.finish(answerOf(r), outcome, this.orphanLedger(r, outcome)),
          stored: (r) => getMessage(this.db(r.user_id), r.user_id, r.message_id),
          bookmark: (r) => this.handedOutBookmark(r.user_id),
        },
        record,
      );
      // Its streams died with the object that generated it: no stream got its end.
      this.queueWebhook(record.message_id, false);
    }
  }

  private orphanLedger(record: AnswerRecord, outcome: AnswerOutcome) {
    const config = loadConfig(this.env);
    return ledgerEntry(
      { day: record.day, model: record.model, usage: outcome.usage, cache: outcome.cache },
      config.modelPrices,
    );
  }
}

/** The answer an answer-log record is about. */
function answerOf(record: AnswerRecord) {
  return { userId: record.user_id, conversationId: record.conversation_id, messageId: record.message_id };
}

/** A turn's stored new messages as its reply names them (see {@link TurnMessages}). */
function turnMessages(turn: { userMessage: Message; toolMessages: Message[] }): TurnMessages {
  return turn.userMessage.role === "tool"
    ? { user_message: turn.userMessage, tool_messages: turn.toolMessages }
    : { user_message: turn.userMessage };
}

/**
 * The HTTP error of a turn whose upstream call failed (or was aborted) before its response
 * started: the mapped upstream error, or 409 for a stop (`conflict`) or a deletion
 * (`conversation_deleted`).
 */
function preStartError(err: unknown): unknown {
  if (err instanceof AnswerStopped)
    return err.error.code === DELETED.code
      ? new ApiError(409, "conversation_deleted", DELETED.message)
      : stoppedBeforeStart();
  return fromUpstreamFailure(err);
}

/**
 * The abort reason of an upstream call whose turn's commit refused. Aborted while its request
 * body is still being sent (a large prompt), workerd also reports the reason once as an uncaught
 * exception from inside its fetch: the line carries this text (test/support/workerd-log-filter.mjs).
 */
const CALL_ABANDONED = "upstream call abandoned: the turn's commit refused";

/** A send to a conversation that does not exist, or is not the sender's: the two look the same. */
const conversationNotFound = () => new ApiError(404, "not_found", "Conversation not found.");

const turnInProgress = () =>
  new ApiError(409, "turn_in_progress", "An answer is still being generated in this conversation.");

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
