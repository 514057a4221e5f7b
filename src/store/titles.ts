import type { D1Queries } from "./sessions";
import { batch, query, sql } from "./sql";
import { type QuotaCheck, reservationQuery, type Settlement, settlementQueries } from "./usage";

/**
 * Generated titles (migration 0009): one title call per conversation, claimed in D1 together
 * with its quota reservation, and a title written only where the conversation has none.
 */

/** Whether the conversation still waits for its title call, as an SQL condition. */
const awaitingTitle = (userId: string, conversationId: string) =>
  sql`EXISTS (SELECT 1 FROM conversations
              WHERE id = ${conversationId} AND user_id = ${userId}
                AND title IS NULL AND title_attempted_at IS NULL)`;

/** What {@link claimTitleCall} found. */
export type TitleClaim =
  /** The call is this caller's to make, with `granted` tokens reserved under `reservationId`. */
  | { kind: "claimed"; granted: number }
  /** The call is this caller's, but the budget could not hold it: the attempt is spent. */
  | { kind: "refused" }
  /** The conversation has a title, was attempted before, or is gone (or not the user's). */
  | { kind: "settled" };

/**
 * Claims a conversation's one title call (one round trip, one transaction): reserves `quota`
 * under `reservationId` if the conversation is the user's, has no title and was never attempted,
 * then marks it attempted at `now` on the same condition. The attempt is spent even when the
 * budget refuses the reservation, so a title call is made at most once per conversation.
 */
export async function claimTitleCall(
  db: D1Queries,
  c: {
    userId: string;
    conversationId: string;
    reservationId: string;
    quota: QuotaCheck;
    expiresAt: number;
    now: number;
  },
): Promise<TitleClaim> {
  const gate = awaitingTitle(c.userId, c.conversationId);
  const { reservation, claim } = await batch(db, {
    // First: the claim below makes the gate false.
    reservation: reservationQuery(db, c.reservationId, c.quota, c.expiresAt, gate),
    claim: query<{ id: string }>(
      db,
      sql`UPDATE conversations SET title_attempted_at = ${c.now}
          WHERE id = ${c.conversationId} AND user_id = ${c.userId}
            AND title IS NULL AND title_attempted_at IS NULL
          RETURNING id`,
    ),
  });
  if (claim.results.length === 0) return { kind: "settled" };
  const granted = reservation.results[0]?.tokens;
  return granted === undefined ? { kind: "refused" } : { kind: "claimed", granted };
}

/**
 * Writes a generated title where the conversation still has none (a title the user set, also
 * while the call ran, is kept) and settles the call's usage, in one transaction; a `null` title
 * only settles. Returns whether the title was written.
 */
export async function storeGeneratedTitle(
  db: D1Queries,
  c: { userId: string; conversationId: string; title: string | null; now: number },
  settlement: Settlement,
): Promise<boolean> {
  const settle = settlementQueries(db, settlement);
  if (c.title === null) {
    await batch(db, settle);
    return false;
  }
  const { title } = await batch(db, {
    title: query<{ id: string }>(
      db,
      sql`UPDATE conversations SET title = ${c.title}, updated_at = ${c.now}
          WHERE id = ${c.conversationId} AND user_id = ${c.userId} AND title IS NULL
          RETURNING id`,
    ),
    ...settle,
  });
  return title.results.length > 0;
}
