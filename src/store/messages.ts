import { completeToolCalls, type ToolCallLike } from "../text/tool-call-arguments";
import { parseWellFormedJson } from "../text/well-formed";
import { encodeMessageCursor, type MessageCursor } from "./cursor";
import type { D1Queries } from "./sessions";
import { toIso } from "./time";
import type { Message, MessageError, MessagePage, MessageRow, StoredToolCall } from "./types";

export type { Message, MessageRow } from "./types";

/**
 * `sibling_index` and `sibling_count` of the `messages` row named `alias` (a table alias, or
 * `messages` itself in a RETURNING clause): among the messages of its conversation with the same
 * parent (`IS`: roots are siblings too), served by `messages_by_parent`.
 */
export function siblingColumns(alias: string): string {
  const same = `s.conversation_id = ${alias}.conversation_id AND s.parent_id IS ${alias}.parent_id`;
  return `(SELECT COUNT(*) FROM messages AS s WHERE ${same} AND s.id < ${alias}.id) AS sibling_index,
          (SELECT COUNT(*) FROM messages AS s WHERE ${same}) AS sibling_count`;
}

export interface ListMessagesOptions {
  limit: number;
  /** The path ending at this message instead of the active one. */
  leafId?: string;
  /** Where the page starts: the previous page's `next_cursor`, decoded (`decodeMessageCursor`). */
  after?: MessageCursor;
}

/**
 * Maps a D1 row to the API's Message: JSON columns parsed, times as ISO strings, tool calls as
 * {@link storedToolCalls}, and the token columns folded into `usage` once `total_tokens` is known
 * (else `usage` is `null`).
 */
export function messageFromRow(row: MessageRow): Message {
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    parent_id: row.parent_id,
    role: row.role,
    content: row.content_json === null ? null : (parseWellFormedJson(row.content_json) as Message["content"]),
    reasoning_content: row.reasoning_content,
    tool_calls:
      row.tool_calls_json === null ? null : storedToolCalls(parseWellFormedJson(row.tool_calls_json)),
    tool_call_id: row.tool_call_id,
    status: row.status,
    finish_reason: row.finish_reason,
    model: row.model,
    usage:
      row.total_tokens === null
        ? null
        : {
            prompt_tokens: row.prompt_tokens ?? 0,
            completion_tokens: row.completion_tokens ?? 0,
            total_tokens: row.total_tokens,
            cached_tokens: row.cached_tokens ?? 0,
            reasoning_tokens: row.reasoning_tokens ?? 0,
            estimated: row.usage_estimated === 1,
          },
    error: row.error_json === null ? null : (parseWellFormedJson(row.error_json) as MessageError),
    sibling_index: row.sibling_index ?? 0,
    sibling_count: row.sibling_count ?? 1,
    created_at: toIso(row.created_at),
    completed_at: toIso(row.completed_at),
  };
}

/**
 * A stored answer's tool calls as they are returned: complete, with JSON object arguments. Rows
 * stored before answers were held to that may hold `""` arguments (returned as `"{}"`) or a call
 * cut off mid-arguments (left out, as it is from the history sent to the model).
 */
function storedToolCalls(value: unknown): StoredToolCall[] | null {
  if (!Array.isArray(value)) return null;
  const calls = completeToolCalls(value.filter(isToolCallLike));
  // Parsed from the column finishAnswer wrote from complete calls; completeToolCalls has just
  // checked each one's id, name and arguments.
  return calls.length ? (calls as StoredToolCall[]) : null;
}

const isToolCallLike = (value: unknown): value is ToolCallLike =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * One page of a conversation's active path, newest first: from its leaf (`options.leafId`, else
 * the conversation's `active_leaf_id`, else its newest message) up through each message's
 * parent; or `null` when the conversation (or the leaf) is not the user's, so the caller answers
 * 404 rather than an empty page. A page after a cursor starts at the parent of the cursor's
 * message. Messages off the path (other branches) are reached with `leafId` or
 * `GET /v1/messages/{id}/siblings`.
 *
 * One round trip: a `batch()` of the ownership check and the path walk (a recursive CTE of at
 * most `limit + 1` steps up `parent_id`, each a primary-key lookup), consistent as one transaction.
 */
export async function listMessages(
  db: D1Queries,
  userId: string,
  conversationId: string,
  options: ListMessagesOptions,
): Promise<MessagePage | null> {
  const cursor = options.after?.i ?? null;
  const leaf = options.leafId ?? null;
  const start = cursor
    ? "(SELECT parent_id FROM messages WHERE id = ?1 AND conversation_id = ?2)"
    : `COALESCE(?1, (SELECT active_leaf_id FROM conversations WHERE id = ?2),
                (SELECT id FROM messages WHERE conversation_id = ?2 ORDER BY id DESC LIMIT 1))`;
  const page = db
    .prepare(
      `WITH RECURSIVE path (id, depth) AS (
         SELECT id, 0 FROM messages WHERE id = ${start} AND conversation_id = ?2 AND user_id = ?3
         UNION ALL
         SELECT m.parent_id, path.depth + 1 FROM path JOIN messages AS m ON m.id = path.id
         WHERE m.parent_id IS NOT NULL AND path.depth < ?4
       )
       SELECT m.*, ${siblingColumns("m")} FROM path JOIN messages AS m ON m.id = path.id
       ORDER BY path.depth LIMIT ?4`,
    )
    .bind(cursor ?? leaf, conversationId, userId, options.limit + 1);
  const [owned, rows] = await db.batch<unknown>([
    db
      .prepare(
        `SELECT 1 AS found FROM conversations WHERE id = ?1 AND user_id = ?2
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM messages WHERE id = ?3 AND conversation_id = ?1))`,
      )
      .bind(conversationId, userId, leaf),
    page,
  ]);
  if (!owned?.results.length) return null;
  const results = (rows?.results ?? []) as MessageRow[];
  const data = results.slice(0, options.limit);
  const last = data[data.length - 1];
  return {
    data: data.map(messageFromRow),
    next_cursor: results.length > options.limit && last ? encodeMessageCursor(last.id) : null,
  };
}

/**
 * The messages at the same point of the tree as the user's message `messageId` (itself
 * included), oldest first; null when it is not the user's.
 */
export async function listSiblings(
  db: D1Queries,
  userId: string,
  messageId: string,
): Promise<Message[] | null> {
  const { results } = await db
    .prepare(
      `SELECT m.*, ${siblingColumns("m")} FROM messages AS m
       JOIN messages AS me ON me.id = ?1 AND me.user_id = ?2
       WHERE m.conversation_id = me.conversation_id AND m.parent_id IS me.parent_id
       ORDER BY m.id`,
    )
    .bind(messageId, userId)
    .all<MessageRow>();
  return results.length ? results.map(messageFromRow) : null;
}

/** The user's message, or `null` if it does not exist or belongs to someone else. */
export async function getMessage(db: D1Queries, userId: string, messageId: string): Promise<Message | null> {
  const row = await db
    .prepare(`SELECT m.*, ${siblingColumns("m")} FROM messages AS m WHERE m.id = ? AND m.user_id = ?`)
    .bind(messageId, userId)
    .first<MessageRow>();
  return row ? messageFromRow(row) : null;
}
