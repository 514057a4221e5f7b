import { messageFromRow } from "./messages";
import type { JsonObject, Message, MessageRow, MessageStatus, MessageUsage, StoredToolCall } from "./types";
import {
  type LedgerEntry,
  type QuotaState,
  quotaCondition,
  quotaStateStatement,
  releaseStatement,
  settlementStatements,
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
      assistantMessage: Message;
    }
  | {
      /** The user is blocked (`quota.blocked_at`), or the turn does not fit the day's budget: nothing was written. */
      kind: "refused";
      quota: QuotaState;
    }
  | {
      /** A send with this `client_message_id` was stored before: nothing was written now. */
      kind: "duplicate";
      requestHash: string | null;
      userMessage: Message;
      assistantMessage: Message | null;
    };

/**
 * Checks the conversation belongs to the user, reads its recent history, reserves the turn's
 * worst case against the user's daily budget, and stores the new message and the answer's
 * `streaming` placeholder, in one round trip. The conversation's
 * `updated_at` moves when the answer is finished ({@link finishAnswer}). The inserts are conditional on the ownership check inside the same transaction, so a
 * foreign or missing conversation writes nothing. Returns `null` in that case.
 */
export async function beginTurn(db: D1Database, t: BeginTurnInput): Promise<BeganTurn | null> {
  // ?9 is the client message id: a retried send finds its first self and writes nothing.
  const q = t.quota;
  const results = await db.batch([
    earlierSendStatement(db, t.userId, t.conversationId, t.clientMessageId),
    db
      .prepare(
        "SELECT id, system_prompt, model, params_json FROM conversations WHERE id = ?1 AND user_id = ?2",
      )
      .bind(t.conversationId, t.userId),
    db
      .prepare(
        `SELECT id, role, content_json, tool_calls_json, tool_call_id, status FROM messages
         WHERE conversation_id = ?1 AND user_id = ?2 AND status != 'streaming'
         ORDER BY id DESC LIMIT ?3`,
      )
      .bind(t.conversationId, t.userId, t.historyLimit),
    quotaStateStatement(db, {
      userId: t.userId,
      day: q.day,
      tokens: q.tokens,
      now: t.now,
      defaultBudget: q.defaultBudget,
    }),
    // The reservation is the gate: it is made only for the owner's conversation, for a send not
    // stored before, within the budget; everything after it is conditional on it.
    db
      .prepare(
        `INSERT INTO quota_reservations (id, user_id, day, tokens, expires_at)
         SELECT ?3, ?2, ?4, ?5, ?8
         WHERE EXISTS (SELECT 1 FROM conversations WHERE id = ?1 AND user_id = ?2)
           AND (?9 IS NULL OR NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ?1 AND client_message_id = ?9))
           AND ${quotaCondition({ user: 2, day: 4, tokens: 5, now: 6, defaultBudget: 7 })}`,
      )
      .bind(
        t.conversationId,
        t.userId,
        t.assistantMessageId,
        q.day,
        q.tokens,
        t.now,
        q.defaultBudget,
        q.expiresAt,
        t.clientMessageId,
      ),
    db
      .prepare(
        `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, tool_call_id, status,
                               client_message_id, request_hash, created_at, completed_at)
         SELECT ?3, ?1, ?2, (SELECT id FROM messages WHERE conversation_id = ?1 ORDER BY id DESC LIMIT 1),
                ?4, ?5, ?6, 'completed', ?9, ?7, ?8, ?8
         WHERE EXISTS (SELECT 1 FROM quota_reservations WHERE id = ?10)
         RETURNING *`,
      )
      .bind(
        t.conversationId,
        t.userId,
        t.userMessageId,
        t.role,
        t.contentJson,
        t.toolCallId,
        t.requestHash,
        t.now,
        t.clientMessageId,
        t.assistantMessageId,
      ),
    db
      .prepare(
        `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, status, model, created_at)
         SELECT ?3, ?1, ?2, ?4, 'assistant', 'streaming',
                COALESCE(?5, (SELECT model FROM conversations WHERE id = ?1), ?6), ?7
         WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?4)
         RETURNING *`,
      )
      .bind(
        t.conversationId,
        t.userId,
        t.assistantMessageId,
        t.userMessageId,
        t.turnModel,
        t.defaultModel,
        t.now,
      ),
  ]);
  const earlier = results[0]!.results as MessageRow[];
  const conversation = results[1]!.results[0] as TurnConversation | undefined;
  const quota = results[3]!.results[0] as QuotaState;
  const userRow = results[5]!.results[0] as MessageRow | undefined;
  const assistantRow = results[6]!.results[0] as MessageRow | undefined;
  if (!conversation) return null;
  const duplicate = duplicateOf(earlier, t.clientMessageId);
  if (duplicate) return { kind: "duplicate", ...duplicate };
  if (!userRow || !assistantRow) return { kind: "refused", quota };
  return {
    kind: "new",
    conversation,
    history: results[2]!.results as HistoryRow[],
    userMessage: messageFromRow(userRow),
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
): Promise<{ requestHash: string | null; userMessage: Message; assistantMessage: Message | null } | null> {
  const rows = (await earlierSendStatement(db, userId, conversationId, clientMessageId).all<MessageRow>())
    .results;
  return duplicateOf(rows, clientMessageId);
}

/** A send stored under `clientMessageId` and its answer (no rows when the id is null or unused). */
function earlierSendStatement(
  db: D1Database,
  userId: string,
  conversationId: string,
  clientMessageId: string | null,
): D1PreparedStatement {
  return db
    .prepare(
      `SELECT * FROM messages WHERE conversation_id = ?1 AND user_id = ?2 AND ?3 IS NOT NULL
         AND (client_message_id = ?3
              OR parent_id = (SELECT id FROM messages WHERE conversation_id = ?1 AND client_message_id = ?3))
       ORDER BY id`,
    )
    .bind(conversationId, userId, clientMessageId);
}

function duplicateOf(rows: MessageRow[], clientMessageId: string | null) {
  const first = rows.find((m) => m.client_message_id === clientMessageId);
  if (!first) return null;
  const answer = rows.find((m) => m.parent_id === first.id && m.role === "assistant");
  return {
    requestHash: first.request_hash,
    userMessage: messageFromRow(first),
    assistantMessage: answer ? messageFromRow(answer) : null,
  };
}

/**
 * Takes back a turn that was begun but turned out invalid once the stored context was known
 * (the error path only): both messages go, and nothing else was touched.
 */
export async function revokeTurn(
  db: D1Database,
  t: { userId: string; conversationId: string; userMessageId: string; assistantMessageId: string },
): Promise<void> {
  await db.batch([
    db
      .prepare("DELETE FROM messages WHERE id IN (?1, ?2) AND conversation_id = ?3 AND user_id = ?4")
      .bind(t.assistantMessageId, t.userMessageId, t.conversationId, t.userId),
    releaseStatement(db, t.assistantMessageId),
  ]);
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
  error: JsonObject | null;
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
  const usageStatements = u
    ? settlementStatements(db, {
        ...ledger,
        model: o.model ?? ledger.model,
        id: a.messageId,
        userId: a.userId,
        conversationId: a.conversationId,
        status: o.status,
        usage: u,
        now: o.completedAt,
      })
    : [releaseStatement(db, a.messageId)];
  const results = await db.batch([
    db
      .prepare(
        `UPDATE messages SET status = ?1, content_json = ?2, reasoning_content = ?3, tool_calls_json = ?4,
           finish_reason = ?5, model = COALESCE(?6, model), prompt_tokens = ?7, completion_tokens = ?8,
           total_tokens = ?9, cached_tokens = ?10, reasoning_tokens = ?11, error_json = ?12, ttft_ms = ?13,
           duration_ms = ?14, completed_at = ?15, usage_estimated = ?18
         WHERE id = ?16 AND user_id = ?17 AND status = 'streaming'
         RETURNING *`,
      )
      .bind(
        o.status,
        o.content === null ? null : JSON.stringify(o.content),
        o.reasoningContent || null,
        o.toolCalls && o.toolCalls.length ? JSON.stringify(o.toolCalls) : null,
        o.finishReason,
        o.model,
        u?.prompt_tokens ?? null,
        u?.completion_tokens ?? null,
        u?.total_tokens ?? null,
        u?.cached_tokens ?? null,
        u?.reasoning_tokens ?? null,
        o.error ? JSON.stringify(o.error) : null,
        o.ttftMs,
        o.durationMs,
        o.completedAt,
        a.messageId,
        a.userId,
        u?.estimated ? 1 : 0,
      ),
    db
      .prepare(
        `UPDATE conversations SET updated_at = MAX(updated_at, ?3), last_message_at = MAX(COALESCE(last_message_at, 0), ?3)
         WHERE id = ?1 AND user_id = ?2 AND EXISTS (SELECT 1 FROM messages WHERE id = ?4 AND completed_at = ?3)`,
      )
      .bind(a.conversationId, a.userId, o.completedAt, a.messageId),
    ...usageStatements,
  ]);
  const row = results[0]!.results[0] as MessageRow | undefined;
  return row ? messageFromRow(row) : null;
}
