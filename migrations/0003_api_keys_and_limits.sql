-- API keys for server-to-server use, and per-user operator limits. See src/store/SCHEMA.md.

-- Only the SHA-256 of a key is stored; the key itself is shown once, at creation.
CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,         -- UUIDv7
  user_id      TEXT NOT NULL,
  name         TEXT,
  prefix       TEXT NOT NULL,            -- the key's first characters, shown in lists
  key_hash     TEXT NOT NULL UNIQUE,     -- lowercase hex SHA-256 of the whole key
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,                  -- updated at most once an hour per key
  revoked_at   INTEGER
);

-- A user's keys, newest first.
CREATE INDEX api_keys_by_user ON api_keys (user_id, id);

-- NULL means the configured default in each column.
ALTER TABLE users ADD COLUMN daily_token_budget INTEGER;
ALTER TABLE users ADD COLUMN rate_limit_tier TEXT;
ALTER TABLE users ADD COLUMN blocked_at INTEGER;
