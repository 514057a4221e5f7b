-- Usage ledger and daily quotas. See src/store/SCHEMA.md ("Usage and quotas").

-- Exactly one record per answer that reached DashScope (keyed by the answer's message id, or
-- by the completion id on /v1/chat/completions).
CREATE TABLE usage_records (
  id                TEXT PRIMARY KEY,
  user_id           TEXT NOT NULL,
  conversation_id   TEXT,
  model             TEXT NOT NULL,
  status            TEXT NOT NULL,
  day               TEXT NOT NULL,       -- UTC day the answer started, YYYY-MM-DD
  prompt_tokens     INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  total_tokens      INTEGER NOT NULL,
  cached_tokens     INTEGER NOT NULL,
  reasoning_tokens  INTEGER NOT NULL,
  estimated         INTEGER NOT NULL DEFAULT 0,
  cost_usd          REAL NOT NULL,
  settled_by        TEXT NOT NULL,       -- the settlement that wrote it (aggregates count it once)
  created_at        INTEGER NOT NULL
);
CREATE INDEX usage_records_by_user_day ON usage_records (user_id, day);

-- Per user, day and model; upserted in the same batch that writes the record.
CREATE TABLE usage_daily (
  user_id           TEXT NOT NULL,
  day               TEXT NOT NULL,
  model             TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens      INTEGER NOT NULL DEFAULT 0,
  cached_tokens     INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  cost_usd          REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, day, model)
);

-- A turn's worst-case tokens, held from before the upstream call until its usage is settled.
CREATE TABLE quota_reservations (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  day        TEXT NOT NULL,
  tokens     INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX quota_reservations_by_user ON quota_reservations (user_id, day, expires_at);
