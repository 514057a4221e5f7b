import { completeToolCalls, type ToolCallLike } from "../text/tool-call-arguments";
import { parseWellFormedJson } from "../text/well-formed";
import { encodeMessageCursor, type MessageCursor } from "./cursor";
import { toIso } from "./time";
import type { Message, MessageError, MessagePage, MessageRow, StoredToolCall } from "./types";

export type { Message, MessageRow } from "./types";

export interface ListMessagesOptions {
  limit: number;
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
 * One page of a conversation's messages, newest first (ids are time-ordered), or `null` when
 * the conversation is not the user's (so the caller answers 404 rather than an empty page).
 *
 * One round trip: a `batch()` of the ownership check and the page query. A batch runs as one
 * transaction, so the two reads are consistent; a join would instead lose the distinction
 * between "no such conversation" and "no messages yet". The page reads `limit + 1` rows from
 * `messages_by_conversation` to learn whether another page exists.
 */
export async function listMessages(
  db: D1Database,
  userId: string,
  conversationId: string,
  options: ListMessagesOptions,
): Promise<MessagePage | null> {
  const before = options.after?.i ?? null;
  const page = before
    ? db
        .prepare(
          "SELECT * FROM messages WHERE conversation_id = ? AND user_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(conversationId, userId, before, options.limit + 1)
    : db
        .prepare("SELECT * FROM messages WHERE conversation_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?")
        .bind(conversationId, userId, options.limit + 1);
  const [owned, rows] = await db.batch<unknown>([
    db
      .prepare("SELECT 1 AS found FROM conversations WHERE id = ? AND user_id = ?")
      .bind(conversationId, userId),
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

/** The user's message, or `null` if it does not exist or belongs to someone else. */
export async function getMessage(db: D1Database, userId: string, messageId: string): Promise<Message | null> {
  const row = await db
    .prepare("SELECT * FROM messages WHERE id = ? AND user_id = ?")
    .bind(messageId, userId)
    .first<MessageRow>();
  return row ? messageFromRow(row) : null;
}
