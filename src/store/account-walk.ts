import { raw } from "sql-template-tag";
import { conversationFromRow } from "./conversations";
import { messageFromRow, siblingColumns } from "./messages";
import type { D1Queries } from "./sessions";
import { batch, query, sql } from "./sql";
import type { Conversation, ConversationRow, Message, MessageRow } from "./types";

/**
 * Where a walk stands: after conversation `c` itself (`m` = `""`) or after its message `m`.
 * Items are ordered by (conversation id, message id), a conversation before its messages (`""`
 * sorts before every id), so each conversation comes right before its own messages.
 */
export interface WalkPosition {
  c: string;
  m: string;
}

/** One item of a walk: a conversation, or one of its messages, as the API returns them. */
export type WalkItem =
  | { type: "conversation"; id: string; conversation_id: string; data: Conversation }
  | { type: "message"; id: string; conversation_id: string; data: Message };

export interface WalkPage {
  items: WalkItem[];
  /** Where the next page starts; `null` after the last item. */
  next: WalkPosition | null;
}

/**
 * One page of up to `limit` items of the user's conversations and messages (every branch), in
 * walk order, after `after` (from the start when `null`); only conversation `conversationId`
 * and its messages when it is given.
 *
 * One round trip: the next `limit + 1` conversations (`conversations_by_user_id`) and the next
 * `limit + 1` messages (`messages_by_user_conversation`) in one `batch()`, which is one transaction, so a
 * message's conversation is read in the same state as the message. Merged, the first `limit`
 * are the page. Pages are separate transactions: a walk shows each row as it was when its page
 * was read, never a row twice, and (keyset, not OFFSET) never skips a row that existed
 * throughout.
 */
export async function readWalkPage(
  db: D1Queries,
  userId: string,
  after: WalkPosition | null,
  limit: number,
  conversationId?: string,
): Promise<WalkPage> {
  const r = await batch(db, walkQueries(db, userId, after, limit, conversationId));
  return walkPageOf(r.conversations.results, r.messages.results, limit);
}

/** The two reads of {@link readWalkPage}, to run in a caller's own `batch()`. */
export function walkQueries(
  db: D1Queries,
  userId: string,
  after: WalkPosition | null,
  limit: number,
  conversationId?: string,
) {
  const c = after?.c ?? "";
  const m = after?.m ?? "";
  // Each variant a range scan of one index, with no sort step (EXPLAIN QUERY PLAN).
  const conversationRange =
    conversationId === undefined ? sql`id > ${c}` : sql`id = ${conversationId} AND id > ${c}`;
  const messageRange =
    conversationId === undefined
      ? sql`(m.conversation_id, m.id) > (${c}, ${m})`
      : sql`m.conversation_id = ${conversationId} AND m.id > ${c === conversationId ? m : ""}`;
  return {
    conversations: query<ConversationRow>(
      db,
      sql`SELECT * FROM conversations WHERE user_id = ${userId} AND ${conversationRange}
          ORDER BY id LIMIT ${limit + 1}`,
    ),
    messages: query<MessageRow>(
      db,
      sql`SELECT m.*, ${raw(siblingColumns("m"))} FROM messages AS m
          WHERE m.user_id = ${userId} AND ${messageRange}
          ORDER BY m.conversation_id, m.id LIMIT ${limit + 1}`,
    ),
  };
}

/** The page {@link walkQueries} read: the first `limit` items of both, merged. */
export function walkPageOf(
  conversations: ConversationRow[],
  messages: MessageRow[],
  limit: number,
): WalkPage {
  const items: WalkItem[] = [
    ...conversations.map(
      (row): WalkItem => ({
        type: "conversation",
        id: row.id,
        conversation_id: row.id,
        data: conversationFromRow(row),
      }),
    ),
    ...messages.map(
      (row): WalkItem => ({
        type: "message",
        id: row.id,
        conversation_id: row.conversation_id,
        data: messageFromRow(row),
      }),
    ),
  ].sort(byWalkOrder);
  const page = items.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page,
    next:
      items.length > limit && last
        ? { c: last.conversation_id, m: last.type === "message" ? last.id : "" }
        : null,
  };
}

const keyOf = (item: WalkItem) => [item.conversation_id, item.type === "message" ? item.id : ""] as const;

/** Walk order; ids are ASCII (UUIDv7 hex), so code-unit comparison is SQLite's BINARY collation. */
function byWalkOrder(a: WalkItem, b: WalkItem): number {
  const [ac, am] = keyOf(a);
  const [bc, bm] = keyOf(b);
  if (ac !== bc) return ac < bc ? -1 : 1;
  return am < bm ? -1 : am > bm ? 1 : 0;
}
