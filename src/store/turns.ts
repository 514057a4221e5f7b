import { messageFromRow, siblingColumns } from "./messages";
import type { D1Queries } from "./sessions";
import { batch, type Query, query, raw, type Sql, selectValues, sql } from "./sql";
import type {
  CacheUsage,
  Message,
  MessageError,
  MessageRow,
  MessageStatus,
  MessageUsage,
  StoredToolCall,
} from "./types";
import {
  type LedgerEntry,
  type QuotaState,
  quotaStateQuery,
  releaseQuery,
  reservationQuery,
  settlementQueries,
} from "./usage";
import { type OutboxEntry, outboxInsertQuery } from "./webhook-outbox";

/**
 * The SQL of a chat turn. The conversation's Durable Object keeps the prompt state (conversation
 * fields and the history window) and reads it from D1 only when it has none
 * ({@link loadPromptSource}); a turn then costs one `batch()` that commits it
 * ({@link commitTurn}, concurrent with the upstream call) and one after the stream closes
 * ({@link finishAnswer}). A D1 batch is a single round trip and runs as one transaction.
 */

/** The conversation fields a turn needs, with the owner and the version they were read at. */
export interface TurnConversation {
  id: string;
  user_id: string;
  system_prompt: string | null;
  model: string | null;
  params_json: string;
  /** Bumped by trigger on every change to these fields or to the conversation's messages (migration 0005). */
  version: number;
  /** The newest message of the active path (migration 0006); null: the newest message. */
  active_leaf_id: string | null;
}

/** A history row as the turn reads it (newest first). */
export type HistoryRow = Pick<
  MessageRow,
  "id" | "parent_id" | "role" | "content_json" | "tool_calls_json" | "tool_call_id" | "status"
>;

/** What a turn's prompt is built from: the conversation and its newest finished messages, newest first. */
export interface PromptSource {
  conversation: TurnConversation;
  history: HistoryRow[];
}

const HISTORY_COLUMNS = sql`id, parent_id, role, content_json, tool_calls_json, tool_call_id, status`;

/**
 * The finished messages of the path ending at `leaf` (default: the conversation's active leaf,
 * else its newest message), newest first, at most `limit` steps up `parent_id` (a placeholder
 * still `streaming` is stepped through, never returned), only when `when` holds.
 */
function historyQuery(
  db: D1Queries,
  conversationId: string,
  limit: number,
  when: Sql = sql`TRUE`,
  leaf: string | null = null,
) {
  return query<HistoryRow>(
    db,
    sql`WITH RECURSIVE path (id, depth) AS (
          SELECT id, 0 FROM messages
          WHERE conversation_id = ${conversationId} AND ${when}
            AND id = COALESCE(${leaf}, (SELECT active_leaf_id FROM conversations WHERE id = ${conversationId}),
                              (SELECT id FROM messages WHERE conversation_id = ${conversationId} ORDER BY id DESC LIMIT 1))
          UNION ALL
          SELECT m.parent_id, path.depth + 1 FROM path JOIN messages AS m ON m.id = path.id
          WHERE m.parent_id IS NOT NULL AND path.depth < ${limit}
        )
        SELECT ${HISTORY_COLUMNS} FROM path JOIN messages USING (id)
        WHERE status != 'streaming' ORDER BY path.depth LIMIT ${limit}`,
  );
}

/**
 * The finished messages of the user's path ending at `leaf`, newest first (at most `limit`); null
 * when `leaf` is not a message of the user's conversation. For a turn that follows a message off
 * the active path (an edit).
 */
export async function loadPath(
  db: D1Queries,
  t: { userId: string; conversationId: string; leaf: string; limit: number },
): Promise<HistoryRow[] | null> {
  const r = await batch(db, {
    leaf: query<{ id: string }>(
      db,
      sql`SELECT id FROM messages WHERE id = ${t.leaf} AND conversation_id = ${t.conversationId}
            AND user_id = ${t.userId}`,
    ),
    history: historyQuery(db, t.conversationId, t.limit, sql`TRUE`, t.leaf),
  });
  return r.leaf.results.length ? r.history.results : null;
}

function conversationQuery(db: D1Queries, conversationId: string) {
  return query<TurnConversation>(
    db,
    sql`SELECT id, user_id, system_prompt, model, params_json, version, active_leaf_id FROM conversations
        WHERE id = ${conversationId}`,
  );
}

/**
 * The prompt state of a conversation as D1 holds it (one round trip), whoever owns it: the
 * caller compares `conversation.user_id`. Null when there is no such conversation.
 */
export async function loadPromptSource(
  db: D1Queries,
  conversationId: string,
  historyLimit: number,
): Promise<PromptSource | null> {
  const r = await batch(db, {
    conversation: conversationQuery(db, conversationId),
    history: historyQuery(db, conversationId, historyLimit),
  });
  const conversation = r.conversation.results[0];
  return conversation ? { conversation, history: r.history.results } : null;
}

export interface CommitTurnInput {
  userId: string;
  conversationId: string;
  /** The version the caller's prompt state was read at: the commit happens only if it still holds. */
  expectedVersion: number;
  /**
   * The message the new messages follow (the active leaf, or the one an edit or a regenerated
   * answer follows); null: they start the conversation's tree (an edit of its first message).
   */
  parentId: string | null;
  /** The new user message's id (unused when regenerating). */
  userMessageId: string;
  assistantMessageId: string;
  /** `regenerate`: no new message; a new answer to `parentId`. */
  role: "user" | "tool" | "regenerate";
  /** The new message's content, as JSON text. */
  contentJson: string;
  /**
   * The uploaded files the new user message's `file` parts name (each once): one
   * `message_files` row each (migration 0012), written with the message.
   */
  fileIds: readonly string[];
  toolCallId: string | null;
  /**
   * A send answering several tool calls: every result but the last (which is the new message
   * above), in call order, each stored as its own `tool` message before it. Ids ascend, below
   * `userMessageId`, so the history reads them in this order.
   */
  earlierToolResults: { id: string; contentJson: string; toolCallId: string }[];
  clientMessageId: string | null;
  /** Fingerprint of the send, stored with a `clientMessageId` to recognise retries. */
  requestHash: string | null;
  /** The model the answer is asked of (the turn's, else the conversation's, else the default). */
  model: string;
  /** The history read back when the version no longer holds (see `stale`). */
  historyLimit: number;
  now: number;
  /**
   * The turn's worst case (`tokens`), reserved against the user's daily budget (the reservation's
   * id is the answer's): as much of it as the budget holds, refused below `minimumTokens`.
   */
  quota: { day: string; tokens: number; minimumTokens: number; defaultBudget: number; expiresAt: number };
}

export type CommittedTurn =
  | {
      kind: "new";
      userMessage: Message;
      /** A tool turn's results, oldest first (the last is `userMessage`); empty for a user message. */
      toolMessages: Message[];
      assistantMessage: Message;
      /** The conversation's version after the commit. */
      version: number;
      /** Tokens the reservation holds (at least `quota.minimumTokens`, at most `quota.tokens`). */
      grantedTokens: number;
    }
  | {
      /**
       * The user is blocked (`quota.blocked_at`), or the turn does not fit the day's budget:
       * nothing was written.
       */
      kind: "refused";
      quota: QuotaState;
    }
  | {
      /** A send with this `client_message_id` was stored before: nothing was written now. */
      kind: "duplicate";
      requestHash: string | null;
      userMessage: Message;
      toolMessages: Message[];
      assistantMessage: Message | null;
    }
  | {
      /**
       * The conversation changed since the caller's state was read: nothing was written, and
       * `source` is the state as it is now (read in the same round trip).
       */
      kind: "stale";
      source: PromptSource;
    };

/**
 * Commits a turn whose prompt was built from the conversation at `expectedVersion`: reserves
 * the turn's worst case against the user's daily budget, and stores the new message and the
 * answer's `streaming` placeholder, in one round trip. Every insert is conditional, inside the
 * same transaction, on the reservation, which is made only for the user's own conversation, at
 * the expected version, for a send not stored before, within the budget. Returns null for a
 * missing or foreign conversation (nothing written).
 */
export async function commitTurn(db: D1Queries, t: CommitTurnInput): Promise<CommittedTurn | null> {
  const { conversationId, userId, clientMessageId, now } = t;
  const atVersion = sql`EXISTS (SELECT 1 FROM conversations
                                WHERE id = ${conversationId} AND user_id = ${userId}
                                  AND version = ${t.expectedVersion})`;
  // A retried send finds its first self and writes nothing.
  const notSentBefore = sql`(${clientMessageId} IS NULL OR NOT EXISTS
    (SELECT 1 FROM messages
     WHERE conversation_id = ${conversationId} AND client_message_id = ${clientMessageId}))`;
  const quota = { ...t.quota, userId, now };
  const earlierResults = JSON.stringify(t.earlierToolResults);
  const regenerate = t.role === "regenerate";
  const r = await batch(db, {
    // Read before the inserts (whose triggers bump the version).
    conversation: conversationQuery(db, conversationId),
    stale: historyQuery(
      db,
      conversationId,
      t.historyLimit,
      sql`(SELECT version FROM conversations WHERE id = ${conversationId}) != ${t.expectedVersion}`,
    ),
    earlier: earlierSendQuery(db, userId, conversationId, clientMessageId),
    quota: quotaStateQuery(db, quota),
    // The reservation (its id is the answer's) is the gate; the inserts after it depend on it.
    reservation: reservationQuery(
      db,
      t.assistantMessageId,
      quota,
      t.quota.expiresAt,
      sql`${atVersion} AND ${notSentBefore}`,
    ),
    // The earlier results, in one statement however many (each statement of a batch counts
    // against D1's queries per invocation: 50 on the Free plan), each the parent of the next.
    earlierToolResults: query<MessageRow>(
      db,
      sql`INSERT INTO messages ${selectValues({
        id: sql`r.value ->> 'id'`,
        conversation_id: conversationId,
        user_id: userId,
        parent_id: sql`CASE r.key
          WHEN 0 THEN ${t.parentId}
          ELSE ${earlierResults} ->> ('$[' || (r.key - 1) || '].id') END`,
        role: "tool",
        content_json: sql`r.value ->> 'contentJson'`,
        tool_call_id: sql`r.value ->> 'toolCallId'`,
        status: "completed",
        created_at: now,
        completed_at: now,
      })}
      FROM json_each(${earlierResults}) AS r
      WHERE EXISTS (SELECT 1 FROM quota_reservations WHERE id = ${t.assistantMessageId})
      RETURNING *, ${raw(siblingColumns("messages"))}`,
    ),
    userMessage: query<MessageRow>(
      db,
      regenerate
        ? // The message answered again is there already.
          sql`SELECT *, ${raw(siblingColumns("messages"))} FROM messages
              WHERE id = ${t.parentId} AND conversation_id = ${conversationId}
                AND EXISTS (SELECT 1 FROM quota_reservations WHERE id = ${t.assistantMessageId})`
        : sql`INSERT INTO messages ${selectValues({
            id: t.userMessageId,
            conversation_id: conversationId,
            user_id: userId,
            parent_id: t.earlierToolResults.at(-1)?.id ?? t.parentId,
            role: t.role,
            content_json: t.contentJson,
            tool_call_id: t.toolCallId,
            status: "completed",
            client_message_id: clientMessageId,
            request_hash: t.requestHash,
            created_at: now,
            completed_at: now,
          })}
          WHERE EXISTS (SELECT 1 FROM quota_reservations WHERE id = ${t.assistantMessageId})
          RETURNING *, ${raw(siblingColumns("messages"))}`,
    ),
    // Only a turn that refers to files has this statement: the others' batch is as it was.
    ...(t.fileIds.length > 0 && !regenerate
      ? {
          messageFiles: query(
            db,
            sql`INSERT OR IGNORE INTO message_files (message_id, file_id, conversation_id, user_id)
                SELECT ${t.userMessageId}, f.value, ${conversationId}, ${userId}
                FROM json_each(${JSON.stringify(t.fileIds)}) AS f
                -- A file hidden since the turn checked it (deleted, or swept as unattached) gets
                -- no reference: it goes, and the history shows it as deleted.
                JOIN files ON files.id = f.value AND files.user_id = ${userId} AND files.deleted_at IS NULL
                WHERE EXISTS (SELECT 1 FROM messages WHERE id = ${t.userMessageId})`,
          ),
        }
      : {}),
    assistantMessage: query<MessageRow>(
      db,
      sql`INSERT INTO messages ${selectValues({
        id: t.assistantMessageId,
        conversation_id: conversationId,
        user_id: userId,
        parent_id: regenerate ? t.parentId : t.userMessageId,
        role: "assistant",
        status: "streaming",
        model: t.model,
        // A regenerated answer is the send itself: retries find it by its id.
        client_message_id: regenerate ? clientMessageId : null,
        request_hash: regenerate ? t.requestHash : null,
        created_at: now,
      })}
      WHERE EXISTS (SELECT 1 FROM quota_reservations WHERE id = ${t.assistantMessageId})
      RETURNING *, ${raw(siblingColumns("messages"))}`,
    ),
    // The new answer is the active path's leaf (an edit makes its branch the active one).
    activeLeaf: query(
      db,
      sql`UPDATE conversations SET active_leaf_id = ${t.assistantMessageId}
          WHERE id = ${conversationId} AND EXISTS (SELECT 1 FROM messages WHERE id = ${t.assistantMessageId})`,
    ),
    version: versionQuery(db, conversationId),
  });
  const conversation = r.conversation.results[0];
  if (!conversation || conversation.user_id !== userId) return null;
  const duplicate = duplicateOf(r.earlier.results, clientMessageId);
  if (duplicate) return { kind: "duplicate", ...duplicate };
  if (conversation.version !== t.expectedVersion)
    return { kind: "stale", source: { conversation, history: r.stale.results } };
  const userRow = r.userMessage.results[0];
  const assistantRow = r.assistantMessage.results[0];
  if (!userRow || !assistantRow) return { kind: "refused", quota: r.quota.results[0]! };
  return {
    kind: "new",
    userMessage: messageFromRow(userRow),
    // RETURNING gives rows in no set order.
    toolMessages:
      t.role === "tool" ? [...r.earlierToolResults.results, userRow].sort(byId).map(messageFromRow) : [],
    assistantMessage: messageFromRow(assistantRow),
    version: r.version.results[0]!.version,
    grantedTokens: r.reservation.results[0]?.tokens ?? t.quota.tokens,
  };
}

/**
 * A send stored earlier under `clientMessageId`, with its answer (read-only; used when another
 * answer holds the conversation, so a retry of an older send still gets its result).
 */
export async function findTurnByClientMessageId(
  db: D1Queries,
  userId: string,
  conversationId: string,
  clientMessageId: string,
): Promise<{
  requestHash: string | null;
  userMessage: Message;
  toolMessages: Message[];
  assistantMessage: Message | null;
} | null> {
  const { results } = await earlierSendQuery(
    db,
    userId,
    conversationId,
    clientMessageId,
  ).statement.all<MessageRow>();
  return duplicateOf(results, clientMessageId);
}

/**
 * A send stored under `clientMessageId`, the earlier tool results of the same send (the chain
 * of `tool` parents above it: the message before a send's first result is an answer) and its
 * answer; no rows when the id is null or unused.
 */
function earlierSendQuery(
  db: D1Queries,
  userId: string,
  conversationId: string,
  clientMessageId: string | null,
): Query<MessageRow> {
  return query(
    db,
    sql`WITH RECURSIVE send (id, parent_id, role) AS (
          SELECT id, parent_id, role FROM messages
          WHERE conversation_id = ${conversationId} AND client_message_id = ${clientMessageId}
          UNION ALL
          SELECT m.id, m.parent_id, m.role FROM messages AS m JOIN send ON m.id = send.parent_id
          WHERE send.role = 'tool' AND m.role = 'tool'
        )
        SELECT *, ${raw(siblingColumns("messages"))} FROM messages
        WHERE conversation_id = ${conversationId} AND user_id = ${userId}
          AND ${clientMessageId} IS NOT NULL
          AND (id IN (SELECT id FROM send)
               OR id = (SELECT parent_id FROM messages WHERE conversation_id = ${conversationId}
                          AND client_message_id = ${clientMessageId} AND role = 'assistant')
               OR parent_id = (SELECT id FROM messages WHERE conversation_id = ${conversationId}
                                                         AND client_message_id = ${clientMessageId}))
        ORDER BY id`,
  );
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function duplicateOf(rows: MessageRow[], clientMessageId: string | null) {
  const first = rows.find((m) => m.client_message_id === clientMessageId);
  if (!first) return null;
  if (first.role === "assistant") {
    // A regenerated answer: the send is the answer, asked by its parent.
    const asked = rows.find((m) => m.id === first.parent_id);
    if (!asked) return null;
    return {
      requestHash: first.request_hash,
      userMessage: messageFromRow(asked),
      toolMessages: asked.role === "tool" ? [messageFromRow(asked)] : [],
      assistantMessage: messageFromRow(first),
    };
  }
  const answer = rows.find((m) => m.parent_id === first.id && m.role === "assistant");
  return {
    requestHash: first.request_hash,
    userMessage: messageFromRow(first),
    // Rows come in id order: the send's results, oldest first, end with `first`.
    toolMessages: first.role === "tool" ? rows.filter((m) => m.role === "tool").map(messageFromRow) : [],
    assistantMessage: answer ? messageFromRow(answer) : null,
  };
}

/**
 * Takes back a turn that was begun but turned out invalid once the stored context was known
 * (the error path only): its new messages (`messageIds`) and the answer go, and nothing else
 * was touched.
 */
export async function revokeTurn(
  db: D1Queries,
  t: {
    userId: string;
    conversationId: string;
    messageIds: string[];
    assistantMessageId: string;
    /** The active leaf before the turn, restored. */
    previousLeafId: string | null;
  },
): Promise<void> {
  const ids = JSON.stringify([...t.messageIds, t.assistantMessageId]);
  await batch(db, {
    leaf: query(
      db,
      sql`UPDATE conversations SET active_leaf_id = ${t.previousLeafId}
          WHERE id = ${t.conversationId} AND user_id = ${t.userId} AND active_leaf_id = ${t.assistantMessageId}`,
    ),
    messages: query(
      db,
      sql`DELETE FROM messages WHERE id IN (SELECT value FROM json_each(${ids}))
            AND conversation_id = ${t.conversationId} AND user_id = ${t.userId}`,
    ),
    // The revoked message's file references go with it, so its files count as unattached again.
    messageFiles: query(
      db,
      sql`DELETE FROM message_files WHERE message_id IN (SELECT value FROM json_each(${ids}))
            AND user_id = ${t.userId}`,
    ),
    reservation: releaseQuery(db, t.assistantMessageId),
  });
}

/** The final state of an answer. */
export interface AnswerOutcome {
  status: Exclude<MessageStatus, "streaming">;
  content: string | null;
  reasoningContent: string | null;
  toolCalls: StoredToolCall[] | null;
  finishReason: string | null;
  model: string | null;
  usage: MessageUsage | null;
  /** The explicit-cache part of DashScope's usage report, for the cost; absent without one. */
  cache?: CacheUsage;
  error: MessageError | null;
  ttftMs: number | null;
  durationMs: number | null;
  completedAt: number;
}

/**
 * How a write moved a conversation's version: `before` it and `after` it, read in the write's
 * own transaction (null when the conversation is gone). A holder of the prompt state at
 * `before` may apply the write and move to `after`; any other holder's state is stale.
 */
export interface VersionStep {
  before: number | null;
  after: number | null;
}

/** The version of a conversation, as a statement of a batch. */
export function versionQuery(db: D1Queries, conversationId: string) {
  return query<{ version: number }>(db, sql`SELECT version FROM conversations WHERE id = ${conversationId}`);
}

/**
 * Stores an answer's final state and bumps its conversation, atomically. Only an answer still
 * `streaming` is written, so an answer is finished exactly once even if two owners race
 * (the normal end and a recovery after a crash). Returns the stored message, or `null` when it
 * was already finished (or its conversation was deleted meanwhile), and the version step.
 * With `webhook`, the answer's webhook is recorded in the outbox in the same transaction, only
 * when this call stored the answer (see {@link outboxInsertQuery}).
 */
export async function finishAnswer(
  db: D1Queries,
  a: { userId: string; conversationId: string; messageId: string },
  o: AnswerOutcome,
  ledger: LedgerEntry,
  webhook: OutboxEntry | null = null,
): Promise<{ message: Message | null; version: VersionStep }> {
  const u = o.usage;
  // Usage goes to the ledger once, in the same transaction; an answer without usage (it never
  // reached DashScope) only releases its reservation.
  const ledgerQueries = u
    ? settlementQueries(db, {
        ...ledger,
        model: o.model ?? ledger.model,
        id: a.messageId,
        userId: a.userId,
        conversationId: a.conversationId,
        status: o.status,
        usage: u,
        now: o.completedAt,
      })
    : { release: releaseQuery(db, a.messageId) };
  const { before, answer, after } = await batch(db, {
    before: versionQuery(db, a.conversationId),
    answer: query<MessageRow>(
      db,
      sql`UPDATE messages SET
            status = ${o.status},
            content_json = ${o.content === null ? null : JSON.stringify(o.content)},
            reasoning_content = ${o.reasoningContent || null},
            tool_calls_json = ${o.toolCalls?.length ? JSON.stringify(o.toolCalls) : null},
            finish_reason = ${o.finishReason},
            model = COALESCE(${o.model}, model),
            prompt_tokens = ${u?.prompt_tokens ?? null},
            completion_tokens = ${u?.completion_tokens ?? null},
            total_tokens = ${u?.total_tokens ?? null},
            cached_tokens = ${u?.cached_tokens ?? null},
            reasoning_tokens = ${u?.reasoning_tokens ?? null},
            usage_estimated = ${u?.estimated ? 1 : 0},
            error_json = ${o.error ? JSON.stringify(o.error) : null},
            ttft_ms = ${o.ttftMs},
            duration_ms = ${o.durationMs},
            completed_at = ${o.completedAt}
          WHERE id = ${a.messageId} AND user_id = ${a.userId} AND status = 'streaming'
          RETURNING *, ${raw(siblingColumns("messages"))}`,
    ),
    conversation: query(
      db,
      sql`UPDATE conversations
          SET updated_at = MAX(updated_at, ${o.completedAt}),
              last_message_at = MAX(COALESCE(last_message_at, 0), ${o.completedAt})
          WHERE id = ${a.conversationId} AND user_id = ${a.userId}
            AND EXISTS (SELECT 1 FROM messages
                        WHERE id = ${a.messageId} AND completed_at = ${o.completedAt})`,
    ),
    ...ledgerQueries,
    ...(webhook
      ? {
          webhook: outboxInsertQuery(
            db,
            webhook,
            sql`EXISTS (SELECT 1 FROM messages WHERE id = ${a.messageId} AND status = ${o.status}
                                                 AND completed_at = ${o.completedAt})`,
          ),
        }
      : {}),
    after: versionQuery(db, a.conversationId),
  });
  const row = answer.results[0];
  return {
    message: row ? messageFromRow(row) : null,
    version: { before: before.results[0]?.version ?? null, after: after.results[0]?.version ?? null },
  };
}
