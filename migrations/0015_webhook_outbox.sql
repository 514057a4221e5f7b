-- Webhooks when an answer ends (README "Webhooks"): the outbox. A row is written, when
-- WEBHOOK_URL is set, in the same batch that stores the answer's final state (finishAnswer), so
-- an answer that is stored is announced even if its Durable Object dies before the webhook is put
-- on the queue: the cron feeds rows not sent within a minute. See src/store/SCHEMA.md,
-- "webhook_outbox".
CREATE TABLE webhook_outbox (
  -- The Standard Webhooks `webhook-id` (UUIDv7): the same on every attempt of this webhook.
  id           TEXT PRIMARY KEY,
  -- One webhook per answer: a second finisher of the same answer writes nothing.
  message_id   TEXT NOT NULL UNIQUE,
  user_id      TEXT NOT NULL,
  type         TEXT NOT NULL CHECK (type IN ('message.completed', 'message.failed')),
  -- The payload's `data` without `delivered` (JSON object); `timestamp` is `created_at`.
  data_json    TEXT NOT NULL,
  -- 1 once the terminal event was written to an open client stream (set before the queue send).
  delivered    INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1)),
  created_at   INTEGER NOT NULL,
  -- When it was put on the queue (by the object, or by the cron); NULL: not yet.
  sent_at      INTEGER,
  -- When the dead-letter queue got it (every attempt failed), and the last attempt's failure.
  dead_at      INTEGER,
  last_error   TEXT
);
-- The cron's scan for rows the object did not send.
CREATE INDEX webhook_outbox_unsent ON webhook_outbox (created_at) WHERE sent_at IS NULL;
-- The cron's pruning of old rows (sent ones after 7 days, dead ones after 30).
CREATE INDEX webhook_outbox_by_time ON webhook_outbox (created_at);
