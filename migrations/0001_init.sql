-- edge-chat schema v1: users, conversations, messages. See src/store/SCHEMA.md.
-- Times are Unix epoch milliseconds (INTEGER); ids are UUIDv7 strings, so ordering by id is ordering by creation.

CREATE TABLE users (
  id         TEXT PRIMARY KEY,          -- the identity provider's `sub`
  created_at INTEGER NOT NULL
);

CREATE TABLE conversations (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title           TEXT,
  system_prompt   TEXT,
  model           TEXT,
  params_json     TEXT NOT NULL DEFAULT '{}',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  last_message_at INTEGER,
  archived_at     INTEGER
);

-- Keyset pagination of a user's conversations, newest updated first.
CREATE INDEX conversations_by_user_updated ON conversations (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
  id                TEXT PRIMARY KEY,
  conversation_id   TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id           TEXT NOT NULL,
  parent_id         TEXT,
  role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content_json      TEXT,                -- JSON: a string or an array of content parts
  reasoning_content TEXT,
  tool_calls_json   TEXT,                -- JSON array of complete tool calls
  tool_call_id      TEXT,
  status            TEXT NOT NULL CHECK (status IN ('streaming', 'completed', 'cancelled', 'interrupted', 'failed')),
  finish_reason     TEXT,
  model             TEXT,
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  total_tokens      INTEGER,
  cached_tokens     INTEGER,
  reasoning_tokens  INTEGER,
  error_json        TEXT,
  client_message_id TEXT,
  ttft_ms           INTEGER,             -- time to first token of an answer
  duration_ms       INTEGER,             -- upstream call start to stream end
  created_at        INTEGER NOT NULL,
  completed_at      INTEGER
);

-- History reads and message pages: newest first within a conversation (ids are time-ordered).
CREATE INDEX messages_by_conversation ON messages (conversation_id, id DESC);
-- Retry-safe sends.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL;
-- Answers left streaming by a dead owner are found and closed.
CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';
