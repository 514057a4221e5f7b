-- Delta sync (GET /v1/sync): a per-user change log, written by triggers, so every change is
-- logged in the same transaction as the write it records, whoever makes it. See
-- src/store/SCHEMA.md, "The change log".

-- `seq` is numbered per user (the user's highest + 1, found through the primary key), not by a
-- table-wide counter, so a user's log can move to another database intact. `created_at` (epoch
-- ms) is when the change committed; retention (SYNC_RETENTION_DAYS) is measured on it. The row
-- names what changed; the sync reads its current state at sync time.
CREATE TABLE changes (
  user_id         TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  type            TEXT NOT NULL CHECK (type IN ('conversation', 'message')),
  op              TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
  id              TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;

-- A sync token carries the user's epoch; a new epoch (account deletion: resetSyncEpoch) makes
-- every older token 410 sync_expired. Random rather than a counter, so a users row deleted and
-- made again cannot come back to an epoch an old token names.
ALTER TABLE users ADD COLUMN sync_epoch TEXT;
UPDATE users SET sync_epoch = lower(hex(randomblob(8)));
CREATE TRIGGER users_sync_epoch AFTER INSERT ON users WHEN NEW.sync_epoch IS NULL BEGIN
  UPDATE users SET sync_epoch = lower(hex(randomblob(8))) WHERE id = NEW.id;
END;

-- The snapshot and the account export walk a user's conversations by id, each followed by its
-- messages by id.
CREATE INDEX conversations_by_user_id ON conversations (user_id, id);
CREATE INDEX messages_by_user_conversation ON messages (user_id, conversation_id, id);

-- julianday('now') is the statement's time with millisecond precision; epoch ms is
-- (julianday - 2440587.5) * 86400000 (2440587.5 is the Julian day of 1970-01-01T00:00Z).

-- A conversation: on insert, on every update, and a tombstone on delete. Its messages'
-- deletion is not logged: a client drops a deleted conversation's messages with it. An update
-- that only bumps `version` (the triggers of migration 0005/0006, fired by message writes)
-- changes nothing a client sees and is not logged.
CREATE TRIGGER conversations_log_insert AFTER INSERT ON conversations BEGIN
  INSERT INTO changes (user_id, seq, type, op, id, conversation_id, created_at)
  VALUES (NEW.user_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE user_id = NEW.user_id),
          'conversation', 'upsert', NEW.id, NEW.id,
          CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER conversations_log_update AFTER UPDATE ON conversations
WHEN NEW.version = OLD.version BEGIN
  INSERT INTO changes (user_id, seq, type, op, id, conversation_id, created_at)
  VALUES (NEW.user_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE user_id = NEW.user_id),
          'conversation', 'upsert', NEW.id, NEW.id,
          CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER conversations_log_delete AFTER DELETE ON conversations BEGIN
  INSERT INTO changes (user_id, seq, type, op, id, conversation_id, created_at)
  VALUES (OLD.user_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE user_id = OLD.user_id),
          'conversation', 'delete', OLD.id, OLD.id,
          CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

-- A message: when created, with every earlier message at the same point of the tree (same
-- conversation and parent; their sibling_count has just grown), the new one first.
CREATE TRIGGER messages_log_insert AFTER INSERT ON messages BEGIN
  INSERT INTO changes (user_id, seq, type, op, id, conversation_id, created_at)
  SELECT NEW.user_id,
         (SELECT COALESCE(MAX(seq), 0) FROM changes WHERE user_id = NEW.user_id)
           + ROW_NUMBER() OVER (ORDER BY s.id = NEW.id DESC, s.id),
         'message', 'upsert', s.id, s.conversation_id,
         CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
  FROM messages AS s
  WHERE s.conversation_id = NEW.conversation_id AND s.parent_id IS NEW.parent_id;
END;

-- And again when it reaches its final status; no other update of a message is logged.
CREATE TRIGGER messages_log_final AFTER UPDATE OF status ON messages
WHEN OLD.status = 'streaming' AND NEW.status <> 'streaming' BEGIN
  INSERT INTO changes (user_id, seq, type, op, id, conversation_id, created_at)
  VALUES (NEW.user_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE user_id = NEW.user_id),
          'message', 'upsert', NEW.id, NEW.conversation_id,
          CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
