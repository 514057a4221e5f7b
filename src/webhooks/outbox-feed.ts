import { logError, logInfo } from "../log/log";
import { allShards, userDb } from "../store/shards";
import {
  markOutboxDelivered,
  markOutboxSent,
  type OutboxEntry,
  pruneOutbox,
  unsentOutboxRows,
  webhookEvent,
  webhookEventOfRow,
} from "../store/webhook-outbox";
import type { QueuedWebhook } from "./queued-webhook";

/**
 * How old an outbox row must be before the cron puts it on the queue: the answer's object sends
 * its webhook within milliseconds of storing the answer, so a row still unsent after a minute was
 * left by an object that died (or a failed queue send).
 */
export const UNSENT_GRACE_MS = 60_000;
/** Rows per queue send: a `sendBatch` takes at most 100 messages (and 256 KB; a webhook is < 1 KB). */
const ROWS_PER_SEND = 100;
/** Batches one cron run sends at most (the rest wait for the next run, 10 minutes later). */
const SENDS_PER_RUN = 10;
/** Sent webhooks are kept this long for the operator, dead ones longer. */
const SENT_RETENTION_MS = 7 * 86_400_000;
const DEAD_RETENTION_MS = 30 * 86_400_000;

/**
 * Puts an answer's webhook on the queue right after the answer was stored with its outbox row,
 * then marks the row sent. `delivered` (the terminal event reached an open stream) is written to
 * the row before the send, so the row and every copy of the webhook agree. Never throws: on any
 * failure the row stays unsent and the cron sends it ({@link feedUnsentWebhooks}).
 */
export async function queueAnswerWebhook(
  env: Pick<Env, "DB" | "WEBHOOKS">,
  entry: OutboxEntry,
  delivered: boolean,
): Promise<void> {
  // The outbox row was written with the answer, in its owner's shard.
  const db = userDb(env, entry.data.user_id);
  try {
    if (delivered) await markOutboxDelivered(db, entry.id);
    const message: QueuedWebhook = { id: entry.id, event: webhookEvent(entry, delivered) };
    await env.WEBHOOKS.send(message);
    await markOutboxSent(db, [entry.id], Date.now());
  } catch (err) {
    logError("webhook.queue_failed", {
      webhook_id: entry.id,
      message_id: entry.data.message_id,
      message: "Left in the outbox; the cron puts it on the queue.",
      error: err,
    });
  }
}

/**
 * The cron's part: puts on the queue every outbox row recorded more than a minute before
 * `scheduledTime` and never sent (its object died between storing the answer and the send, or
 * the send failed), marks them sent, and prunes old rows. Returns how many it sent.
 */
export async function feedUnsentWebhooks(
  env: Pick<Env, "DB" | "WEBHOOKS">,
  scheduledTime: number,
): Promise<number> {
  // Every shard at once, each bounded by SENDS_PER_RUN; a failing shard is logged on its own.
  const sent = await Promise.all(allShards(env).map((db) => feedShard(env, db, scheduledTime)));
  return sent.reduce((a, b) => a + b, 0);
}

async function feedShard(env: Pick<Env, "WEBHOOKS">, db: D1Database, scheduledTime: number): Promise<number> {
  let sent = 0;
  try {
    for (let i = 0; i < SENDS_PER_RUN; i++) {
      const rows = await unsentOutboxRows(db, scheduledTime - UNSENT_GRACE_MS, ROWS_PER_SEND);
      if (rows.length === 0) break;
      const messages = rows.map((row) => ({ body: webhookEventOfRow(row) satisfies QueuedWebhook }));
      await env.WEBHOOKS.sendBatch(messages);
      await markOutboxSent(
        db,
        rows.map((r) => r.id),
        Date.now(),
      );
      sent += rows.length;
      if (rows.length < ROWS_PER_SEND) break;
    }
    await pruneOutbox(db, scheduledTime - SENT_RETENTION_MS, scheduledTime - DEAD_RETENTION_MS);
  } catch (err) {
    logError("webhook.feed_failed", { message: "The next cron run tries again.", error: err });
  }
  if (sent > 0) logInfo("webhook.fed", { webhooks: sent });
  return sent;
}
