import type { D1Queries } from "./sessions";
import { query, sql } from "./sql";

/*
 * Retention (`RETENTION_DAYS`): the scan for conversations whose last activity is older than a
 * cutoff, and the check made again by a conversation's Durable Object before it deletes one.
 * "Last activity" is `updated_at`: a finished answer moves it (and `last_message_at`, never
 * later than it), as do a PATCH and a title. A turn in flight does not move it until its answer
 * ends, so a conversation with an answer `streaming` is never taken as expired.
 */

/** A conversation found by the scan: its id, owner and last activity (epoch ms). */
export interface ExpiredConversation {
  id: string;
  user_id: string;
  updated_at: number;
}

/** Where a scan stopped: the last conversation it returned. */
export interface ScanPosition {
  updated_at: number;
  id: string;
}

/**
 * Up to `limit` conversations last active before `cutoff` (epoch ms), oldest first, after
 * `after` (the last one of the previous page; null: from the start). One round trip, served by
 * `conversations_by_updated` (migration 0016).
 */
export async function expiredConversations(
  db: D1Queries,
  cutoff: number,
  after: ScanPosition | null,
  limit: number,
): Promise<ExpiredConversation[]> {
  const from = after ?? { updated_at: Number.MIN_SAFE_INTEGER, id: "" };
  const { results } = await query<ExpiredConversation>(
    db,
    sql`SELECT id, user_id, updated_at FROM conversations
        WHERE updated_at < ${cutoff} AND (updated_at, id) > (${from.updated_at}, ${from.id})
        ORDER BY updated_at, id LIMIT ${limit}`,
  ).statement.all<ExpiredConversation>();
  return results;
}

/**
 * Whether the user's conversation is still expired: last active before `cutoff` and without an
 * answer `streaming` in D1 (one whose owner died is closed by its object's alarm first, which
 * makes it recent). One round trip.
 */
export async function isStillExpired(
  db: D1Queries,
  userId: string,
  conversationId: string,
  cutoff: number,
): Promise<boolean> {
  const row = await query(
    db,
    sql`SELECT 1 AS expired FROM conversations c
        WHERE c.id = ${conversationId} AND c.user_id = ${userId} AND c.updated_at < ${cutoff}
          AND NOT EXISTS (SELECT 1 FROM messages m
                          WHERE m.status = 'streaming' AND m.conversation_id = c.id)`,
  ).statement.first<{ expired: number }>();
  return row !== null;
}
