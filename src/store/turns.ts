import { messageFromRow } from "./messages";
import { batch, type Query, query, selectValues, sql } from "./sql";
import type { Message, MessageError, MessageRow, MessageStatus, MessageUsage, StoredToolCall } from "./types";
import {
  type LedgerEntry,
  type QuotaState,
  quotaStateQuery,
  releaseQuery,
  reservationQuery,
  settlementQueries,
} from "./usage";

/**
 * The SQL of a chat turn: one `batch()` before the upstream call, one after the stream closes.
 * A D1 batch is a single round trip and runs as one transaction, so each step is atomic.
 */

/** The conversation fields a turn needs. */
export interface TurnConversation {
  id: string;
  system_prompt: string | null;
  model: string | null;
  params_json: string;
}

/** A history row as the turn reads it (newest first). */
export type HistoryRow = Pick<
  MessageRow,
  "id" | "role" | "content_json" | "tool_calls_json" | "tool_call_id" | "status"
>;

export interface BeginTurnInput {
  userId: string;
  conversationId: string;
  userMessageId: string;
  assistantMessageId: string;
  role: "user" | "tool";
  /** The new message's content, as JSON text. */
  contentJson: string;
  toolCallId: string | null;
  /**
   * A send answering several tool calls: every result but the last (which is the new message
   * above), oldest first, each stored as its own `tool` message before it. Ids ascend, below
   * `userMessageId`, so the history reads them in this order.
   */
  earlierToolResults: { id: string; contentJson: string; toolCallId: string }[];
  clientMessageId: string | null;
  /** Fingerprint of the send, stored with a `clientMessageId` to recognise retries. */
  requestHash: string | null;
  /** The model the answer is asked of (turn, else conversation, else default; resolved by SQL). */
  turnModel: string | null;
  defaultModel: string;
  /** At most this many history messages are read: keeps the turn's cost flat in long conversations. */
  historyLimit: number;
  now: number;
  /** The turn's worst case, reserved against the user's daily budget (the reservation's id is the answer's). */
  quota: { day: string; tokens: number; defaultBudget: number; expiresAt: number };
}

export type BeganTurn =
  | {
      kind: "new";
      conversation: TurnConversation;
      /** Newest first. */
      history: HistoryRow[];
      userMessage: Message;
      /** A tool turn's results, oldest first (the last is `userMessage`); empty for a user message. */
      toolMessages: Message[];
      assistantMessage: Message;
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
    };

/**
 * Checks the conversation belongs to the user, reads its recent history, reserves the turn's
 * worst case against the user's daily budget, and stores the new message and the answer's
 * `streaming` placeholder, in one round trip. The conversation's `updated_at` moves when the
 * answer is finished ({@link finishAnswer}). The inserts are conditional on the ownership check
 * inside the same transaction, so a foreign or missing conversation writes nothing. Returns
 * `null` in that case.
 */
export async function beginTurn(db: D1Database, t: BeginTurnInput): Promise<BeganTurn | null> {
  const { conversationId, userId, clientMessageId, now } = t;
  const ownsConversation = sql`EXISTS (SELECT 1 FROM conversations
                                       WHERE id = ${conversationId} AND user_id = ${userId})`;
  // A retried send finds its first self and writes nothing.
  const notSentBefore = sql`(${clientMessageId} IS NULL OR NOT EXISTS
    (SELECT 1 FROM messages
     WHERE conversation_id = ${conversationId} AND client_message_id = ${clientMessageId}))`;
  const quota = { ...t.quota, userId, now };
  const earlierResults = JSON.stringify(t.earlierToolResults);
  const r = await batch(db, {
    earlier: earlierSendQuery(db, userId, conversationId, clientMessageId),
    conversation: query<TurnConversation>(
      db,
      sql`SELECT id, system_prompt, model, params_json FROM conversations
          WHERE id = ${conversationId} AND user_id = ${userId}`,
    ),
    history: query<HistoryRow>(
      db,
      sql`SELECT id, role, content_json, tool_calls_json, tool_call_id, status FROM messages
          WHERE conversation_id = ${conversationId} AND user_id = ${userId} AND status != 'streaming'
          ORDER BY id DESC LIMIT ${t.historyLimit}`,
    ),
    quota: quotaStateQuery(db, quota),
    // The reservation (its id is the answer's) is the gate: it is made only for the owner's
    // conversation, for a send not stored before, within the budget; the inserts after it are
    // conditional on it.
    reservation: reservationQuery(
      db,
      t.assistantMessageId,
      quota,
      t.quota.expiresAt,
      sql`${ownsConversation} AND ${notSentBefore}`,
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
          WHEN 0 THEN (SELECT id FROM messages WHERE conversation_id = ${conversationId} ORDER BY id DESC LIMIT 1)
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
      RETURNING *`,
    ),
    userMessage: query<MessageRow>(
      db,
      sql`INSERT INTO messages ${selectValues({
        id: t.userMessageId,
        conversation_id: conversationId,
        user_id: userId,
        // The conversation's latest message.
        parent_id: sql`(SELECT id FROM messages WHERE conversation_id = ${conversationId}
                        ORDER BY id DESC LIMIT 1)`,
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
      RETURNING *`,
    ),
    assistantMessage: query<MessageRow>(
      db,
      sql`INSERT INTO messages ${selectValues({
        id: t.assistantMessageId,
        conversation_id: conversationId,
        user_id: userId,
        parent_id: t.userMessageId,
        role: "assistant",
        status: "streaming",
        // The turn's model, else the conversation's, else the default.
        model: sql`COALESCE(${t.turnModel}, (SELECT model FROM conversations WHERE id = ${conversationId}),
                            ${t.defaultModel})`,
        created_at: now,
      })}
      WHERE EXISTS (SELECT 1 FROM messages WHERE id = ${t.userMessageId})
      RETURNING *`,
    ),
  });
  const conversation = r.conversation.results[0];
  if (!conversation) return null;
  const duplicate = duplicateOf(r.earlier.results, clientMessageId);
  if (duplicate) return { kind: "duplicate", ...duplicate };
  const userRow = r.userMessage.results[0];
  const assistantRow = r.assistantMessage.results[0];
  if (!userRow || !assistantRow) return { kind: "refused", quota: r.quota.results[0]! };
  return {
    kind: "new",
    conversation,
    history: r.history.results,
    userMessage: messageFromRow(userRow),
    // RETURNING gives rows in no set order.
    toolMessages:
      t.role === "tool" ? [...r.earlierToolResults.results, userRow].sort(byId).map(messageFromRow) : [],
    assistantMessage: messageFromRow(assistantRow),
  };
}

/**
 * A send stored earlier under `clientMessageId`, with its answer (read-only; used when another
 * answer holds the conversation, so a retry of an older send still gets its result).
 */
export async function findTurnByClientMessageId(
  db: D1Database,
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
  db: D1Database,
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
        SELECT * FROM messages WHERE conversation_id = ${conversationId} AND user_id = ${userId}
          AND ${clientMessageId} IS NOT NULL
          AND (id IN (SELECT id FROM send)
               OR parent_id = (SELECT id FROM messages WHERE conversation_id = ${conversationId}
                                                         AND client_message_id = ${clientMessageId}))
        ORDER BY id`,
  );
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function duplicateOf(rows: MessageRow[], clientMessageId: string | null) {
  const first = rows.find((m) => m.client_message_id === clientMessageId);
  if (!first) return null;
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
  db: D1Database,
  t: { userId: string; conversationId: string; messageIds: string[]; assistantMessageId: string },
): Promise<void> {
  const ids = JSON.stringify([...t.messageIds, t.assistantMessageId]);
  await batch(db, {
    messages: query(
      db,
      sql`DELETE FROM messages WHERE id IN (SELECT value FROM json_each(${ids}))
            AND conversation_id = ${t.conversationId} AND user_id = ${t.userId}`,
    ),
    reservation: releaseQuery(db, t.assistantMessageId),
  });
}

/**
 * Puts a tool turn's results, stored in the order the client sent them, into the order of the
 * calls: row `ids[i]` gets `results[i]` (ids ascending, as stored). Only the content and the call
 * answered move; the rows, their parents and the send's `client_message_id` stay.
 */
export async function reorderToolResults(
  db: D1Database,
  t: { userId: string; ids: string[]; results: { contentJson: string; toolCallId: string }[] },
): Promise<void> {
  const rows = JSON.stringify(t.ids.map((id, i) => ({ id, ...t.results[i]! })));
  await query(
    db,
    sql`UPDATE messages SET content_json = r.value ->> 'contentJson', tool_call_id = r.value ->> 'toolCallId'
        FROM json_each(${rows}) AS r
        WHERE messages.id = r.value ->> 'id' AND messages.user_id = ${t.userId} AND messages.role = 'tool'`,
  ).statement.run();
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
  error: MessageError | null;
  ttftMs: number | null;
  durationMs: number | null;
  completedAt: number;
}

/**
 * Stores an answer's final state and bumps its conversation, atomically. Only an answer still
 * `streaming` is written, so an answer is finished exactly once even if two owners race
 * (the normal end and a recovery after a crash). Returns the stored message, or `null` when it
 * was already finished (or its conversation was deleted meanwhile).
 */
export async function finishAnswer(
  db: D1Database,
  a: { userId: string; conversationId: string; messageId: string },
  o: AnswerOutcome,
  ledger: LedgerEntry,
): Promise<Message | null> {
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
  const { answer } = await batch(db, {
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
          RETURNING *`,
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
  });
  const row = answer.results[0];
  return row ? messageFromRow(row) : null;
}
