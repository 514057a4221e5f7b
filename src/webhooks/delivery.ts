import { loadConfig } from "../config";
import { logError, logInfo } from "../log/log";
import { userDb } from "../store/shards";
import { markOutboxDead, recordOutboxFailure } from "../store/webhook-outbox";
import { type QueuedWebhook, queuedWebhookSchema } from "./queued-webhook";
import { signatureHeaders } from "./signature";

/** The longest wait for the receiver's response status. */
const POST_TIMEOUT_MS = 15_000;
/** The backoff's cap: retries of a receiver that stays down come hourly. */
const MAX_RETRY_DELAY_SECONDS = 3600;

/**
 * Seconds before attempt `attempts + 1` of a webhook whose attempt `attempts` (from 1) failed:
 * `baseSeconds` doubled per failed attempt, at most an hour (Queues allow up to 12 hours,
 * developers.cloudflare.com/queues/configuration/batching-retries/).
 */
export function retryDelaySeconds(baseSeconds: number, attempts: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, baseSeconds * 2 ** Math.max(0, attempts - 1));
}

/**
 * The webhook queue's consumer: POSTs each webhook to `WEBHOOK_URL`, signed afresh per attempt
 * with the same `webhook-id`; a 2xx acknowledges it, anything else (a status, a network error, a
 * timeout) retries it after {@link retryDelaySeconds}. After `max_retries` (wrangler.toml) the
 * queue hands it to the dead-letter queue ({@link recordDeadWebhooks}). The secret and the
 * signature are never logged.
 */
export async function deliverWebhooks(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const config = loadConfig(env).webhook;
  await Promise.all(
    batch.messages.map(async (msg) => {
      const parsed = queuedWebhookSchema.safeParse(msg.body);
      if (!parsed.success) {
        logError("webhook.malformed", { queue_message_id: msg.id, message: "Dropped: not a webhook." });
        msg.ack();
        return;
      }
      const webhook = parsed.data;
      if (!config.url) {
        logInfo("webhook.dropped", { webhook_id: webhook.id, message: "WEBHOOK_URL is not set." });
        msg.ack();
        return;
      }
      const failure = await post(config, webhook);
      const fields = {
        webhook_id: webhook.id,
        message_id: webhook.event.data.message_id,
        attempt: msg.attempts,
      };
      if (failure === null) {
        msg.ack();
        logInfo("webhook.delivered", fields);
        return;
      }
      const delaySeconds = retryDelaySeconds(config.retryBaseSeconds, msg.attempts);
      msg.retry({ delaySeconds });
      logError("webhook.attempt_failed", { ...fields, retry_in_seconds: delaySeconds, error: failure });
      try {
        await recordOutboxFailure(userDb(env, webhook.event.data.user_id), webhook.id, failure);
      } catch (err) {
        logError("webhook.failure_record_failed", { webhook_id: webhook.id, error: err });
      }
    }),
  );
}

/** One signed attempt; null on a 2xx, else why it failed (never the secret). */
async function post(config: { url: string; secret: string }, webhook: QueuedWebhook): Promise<string | null> {
  const body = JSON.stringify(webhook.event);
  let headers: Record<string, string>;
  try {
    headers = signatureHeaders(config.secret, webhook.id, body, new Date());
  } catch (err) {
    // An empty or malformed WEBHOOK_SECRET: every attempt fails alike, and the webhook dies.
    return `WEBHOOK_SECRET is not a Standard Webhooks secret (whsec_ + base64): ${errorName(err)}`;
  }
  try {
    const res = await fetch(config.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
    // Frees the connection; the receiver's body is not read.
    await res.body?.cancel();
    return res.ok ? null : `HTTP ${res.status}`;
  } catch (err) {
    return `request failed: ${errorName(err)}`;
  }
}

const errorName = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/**
 * The dead-letter queue's consumer: every attempt of these webhooks failed. Marks their outbox
 * rows dead (`dead_at`; `last_error` holds the last attempt's failure) and logs each, so an
 * operator finds them (SCHEMA.md "webhook_outbox"). A failed write retries the batch.
 */
export async function recordDeadWebhooks(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const webhooks = batch.messages.flatMap((msg) => {
    const parsed = queuedWebhookSchema.safeParse(msg.body);
    return parsed.success ? [parsed.data] : [];
  });
  // Each row is in its owner's shard: one write per shard the batch touches.
  const byShard = new Map<D1Database, string[]>();
  for (const w of webhooks) {
    const db = userDb(env, w.event.data.user_id);
    byShard.set(db, [...(byShard.get(db) ?? []), w.id]);
  }
  const now = Date.now();
  await Promise.all([...byShard].map(([db, ids]) => markOutboxDead(db, ids, now)));
  for (const w of webhooks)
    logError("webhook.dead", {
      webhook_id: w.id,
      message_id: w.event.data.message_id,
      message: "Every attempt failed; the outbox row is marked dead.",
    });
  batch.ackAll();
}
