/**
 * Lookups for clients that name messages by their own ids (the AI SDK's `useChat` keeps the id it
 * gave a user message; `POST /v1/ui/conversations` sends it as `client_message_id`).
 */
import { messageFromRow, siblingColumns } from "./messages";
import type { D1Queries } from "./sessions";
import type { Message, MessageRow } from "./types";

/**
 * The `client_message_id` of an edit of the message a client calls `clientId`:
 * `<clientId>:edit:<suffix>`. {@link findClientMessages} finds the edits too.
 */
export const editClientMessageId = (clientId: string, suffix: string): string => `${clientId}:edit:${suffix}`;

/**
 * The user messages of the caller's conversation that `clientId` may name, newest first: the
 * message with that id, the one sent with that `client_message_id`, and the edits of it
 * ({@link editClientMessageId}); at most {@link MAX_CANDIDATES}. One round trip, served by
 * `messages_client_id` (`conversation_id, client_message_id`) and the primary key.
 */
export async function findClientMessages(
  db: D1Queries,
  userId: string,
  conversationId: string,
  clientId: string,
): Promise<Message[]> {
  const edits = editClientMessageId(clientId, "");
  const { results } = await db
    .prepare(
      `SELECT m.*, ${siblingColumns("m")} FROM messages AS m
       WHERE m.conversation_id = ?1 AND m.user_id = ?2 AND m.role = 'user'
         AND (m.id = ?3 OR m.client_message_id = ?3
              OR (m.client_message_id >= ?4 AND m.client_message_id < ?5))
       ORDER BY m.id DESC LIMIT ?6`,
    )
    // ";" follows ":" in ASCII: the range holds exactly the ids that start with `edits`.
    .bind(conversationId, userId, clientId, edits, `${edits.slice(0, -1)};`, MAX_CANDIDATES)
    .all<MessageRow>();
  return results.map(messageFromRow);
}

/** Most versions of one client message {@link findClientMessages} returns. */
const MAX_CANDIDATES = 50;

/**
 * The answer being generated in the caller's conversation (the newest `streaming` one), `null`
 * when none; `undefined` when the conversation is not the caller's or does not exist.
 */
export async function findStreamingAnswer(
  db: D1Queries,
  userId: string,
  conversationId: string,
): Promise<string | null | undefined> {
  const row = await db
    .prepare(
      `SELECT (SELECT m.id FROM messages AS m
               WHERE m.conversation_id = c.id AND m.role = 'assistant' AND m.status = 'streaming'
               ORDER BY m.id DESC LIMIT 1) AS answer_id
       FROM conversations AS c WHERE c.id = ?1 AND c.user_id = ?2`,
    )
    .bind(conversationId, userId)
    .first<{ answer_id: string | null }>();
  return row ? row.answer_id : undefined;
}
