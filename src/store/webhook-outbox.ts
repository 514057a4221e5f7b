import type { WebhookEvent, WebhookEventData, WebhookEventType } from "../resources/webhook";
import type { D1Queries } from "./sessions";
import { batch, type Query, query, type Sql, sql } from "./sql";
import { toIso } from "./time";

/**
 * The webhook outbox (migration 0015, SCHEMA.md "webhook_outbox"): one row per ended answer,
 * written in the batch that stores the answer ({@link outboxInsertQuery}), put on the queue by the
 * answer's object or, failing that, by the cron, and marked dead by the dead-letter consumer.
 */

/** A row of `webhook_outbox` as D1 returns it. */
export interface OutboxRow {
  id: string;
  message_id: string;
  user_id: string;
  type: WebhookEventType;
  data_json: string;
  delivered: number;
  created_at: number;
  sent_at: number | null;
  dead_at: number | null;
  last_error: string | null;
}

/** What an answer's webhook is recorded with. */
export interface OutboxEntry {
  /** The `webhook-id`: the same on every attempt. */
  id: string;
  type: WebhookEventType;
  data: WebhookEventData;
  /** When the answer ended (epoch ms): the event's `timestamp`. */
  createdAt: number;
}

/**
 * The insert of an answer's webhook, for the batch that stores its final state: written only when
 * that batch stored it (`storedWhen`: the answer row now carries this end), and once per answer
 * (`message_id` is unique), so the exactly-once finish is also the exactly-once record.
 * `delivered` starts false (see {@link markOutboxDelivered}).
 */
export function outboxInsertQuery(db: D1Queries, e: OutboxEntry, storedWhen: Sql): Query<never> {
  return query(
    db,
    sql`INSERT INTO webhook_outbox (id, message_id, user_id, type, data_json, delivered, created_at)
        SELECT ${e.id}, ${e.data.message_id}, ${e.data.user_id}, ${e.type}, ${JSON.stringify(e.data)}, 0, ${e.createdAt}
        WHERE ${storedWhen}
        ON CONFLICT (message_id) DO NOTHING`,
  );
}

/** The webhook body of an outbox entry, with `delivered` as decided. Keys in the documented order. */
export function webhookEvent(e: OutboxEntry, delivered: boolean): WebhookEvent {
  return { type: e.type, timestamp: toIso(e.createdAt), data: { ...e.data, delivered } };
}

/** The webhook body a stored row stands for. */
export function webhookEventOfRow(row: OutboxRow): { id: string; event: WebhookEvent } {
  const data = JSON.parse(row.data_json) as WebhookEventData;
  return {
    id: row.id,
    event: webhookEvent({ id: row.id, type: row.type, data, createdAt: row.created_at }, row.delivered === 1),
  };
}

/** Records that the answer's terminal event reached an open stream (before the webhook is queued). */
export async function markOutboxDelivered(db: D1Queries, id: string): Promise<void> {
  await db.prepare("UPDATE webhook_outbox SET delivered = 1 WHERE id = ?").bind(id).run();
}

/** Records that these webhooks are on the queue (the cron leaves them alone from now on). */
export async function markOutboxSent(db: D1Queries, ids: readonly string[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .prepare(
      "UPDATE webhook_outbox SET sent_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND sent_at IS NULL",
    )
    .bind(now, JSON.stringify(ids))
    .run();
}

/** Webhooks recorded before `before` and never put on the queue, oldest first (at most `limit`). */
export async function unsentOutboxRows(db: D1Queries, before: number, limit: number): Promise<OutboxRow[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM webhook_outbox WHERE sent_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?",
    )
    .bind(before, limit)
    .all<OutboxRow>();
  return results;
}

/** Records the failure of a delivery attempt (`last_error`, for the operator). */
export async function recordOutboxFailure(db: D1Queries, id: string, error: string): Promise<void> {
  await db.prepare("UPDATE webhook_outbox SET last_error = ? WHERE id = ?").bind(error, id).run();
}

/** Records that every attempt of these webhooks failed (the dead-letter queue got them). */
export async function markOutboxDead(db: D1Queries, ids: readonly string[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .prepare("UPDATE webhook_outbox SET dead_at = ? WHERE id IN (SELECT value FROM json_each(?))")
    .bind(now, JSON.stringify(ids))
    .run();
}

/**
 * Deletes webhooks recorded before `sentBefore` that were put on the queue and did not die, and
 * dead ones recorded before `deadBefore` (one round trip; `webhook_outbox_by_time`).
 */
export async function pruneOutbox(db: D1Queries, sentBefore: number, deadBefore: number): Promise<void> {
  await batch(db, {
    sent: query(
      db,
      sql`DELETE FROM webhook_outbox
          WHERE created_at < ${sentBefore} AND sent_at IS NOT NULL AND dead_at IS NULL`,
    ),
    dead: query(db, sql`DELETE FROM webhook_outbox WHERE created_at < ${deadBefore} AND dead_at IS NOT NULL`),
  });
}
