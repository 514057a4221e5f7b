-- Account deletion (DELETE /v1/account): what a deletion still has to purge, so a purge cut off
-- halfway is completed by the next run (a retried DELETE, or the cron). See src/store/SCHEMA.md,
-- "Account deletion".

-- One row per DELETE /v1/account. The counts are what it found (the 202's body). `keep_from_day`
-- is the UTC day of the request: the usage ledger of that day and later is kept (today's budget
-- consumption still counts), earlier days are purged. `hidden_at`: the user's conversations,
-- messages and API keys are gone from D1 and the sync epoch is new. `lease_until`: a run is
-- purging it until then (others leave it alone). `finished_at`: nothing is left to purge.
CREATE TABLE account_deletions (
  id            TEXT PRIMARY KEY,         -- UUIDv7
  user_id       TEXT NOT NULL,
  requested_at  INTEGER NOT NULL,
  keep_from_day TEXT NOT NULL,            -- YYYY-MM-DD (UTC)
  conversations INTEGER NOT NULL,
  messages      INTEGER NOT NULL,
  files         INTEGER NOT NULL DEFAULT 0,
  api_keys      INTEGER NOT NULL,
  hidden_at     INTEGER,
  lease_until   INTEGER,
  finished_at   INTEGER
);
-- The cron's scan: unfinished deletions, oldest first.
CREATE INDEX account_deletions_unfinished ON account_deletions (requested_at) WHERE finished_at IS NULL;
-- A retried DELETE resumes the user's unfinished ones.
CREATE INDEX account_deletions_by_user ON account_deletions (user_id) WHERE finished_at IS NULL;

-- What is left to purge outside D1, one row each, deleted once done: `conversation` (its Durable
-- Object's storage; `ref` is the conversation id) and `api_key` (its cached lookup in KV; `ref` is
-- the key's SHA-256 hex).
CREATE TABLE account_deletion_items (
  deletion_id TEXT NOT NULL REFERENCES account_deletions(id) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('conversation', 'api_key')),
  ref         TEXT NOT NULL,
  PRIMARY KEY (deletion_id, kind, ref)
) WITHOUT ROWID;
