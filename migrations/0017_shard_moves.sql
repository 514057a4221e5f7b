-- Resharding (npm run reshard, src/store/reshard.ts): where a user lives while the shard count
-- grows. A row is kept in the user's OLD shard (the one of the old count) and read only while
-- RESHARD_FROM is set, for users whose shard differs between the old and the new count. See
-- src/store/SCHEMA.md, "Shards".

-- No row: the user lives in the old shard. 'moving': still there (reads are served from it,
-- writes are refused while the copy runs); 'moved': in shard `target_shard`, the rows here are
-- being deleted or gone. Keyed by the routing hash (shards.ts `routingHash`), because an API key
-- routes by the hash alone, before the user is known.
CREATE TABLE shard_moves (
  routing_hash TEXT PRIMARY KEY,          -- 16 lowercase hex digits
  user_id      TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('moving', 'moved')),
  from_count   INTEGER NOT NULL,          -- RESHARD_FROM of the reshard that wrote it
  to_count     INTEGER NOT NULL,          -- the shard count it moves to
  target_shard INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL           -- Unix ms of the last state change
) WITHOUT ROWID;

-- The write guard. Every write the Worker routes to an old shard during a reshard runs in one
-- batch (one transaction) after an insert here, so the check and the write cannot be separated
-- by the mover: a 'moving' user's write fails with `reshard_moving`, a 'moved' user's with
-- `reshard_moved` (the caller then writes to the new shard). RAISE(IGNORE) drops the row itself:
-- the table stays empty.
CREATE TABLE shard_write_checks (routing_hash TEXT NOT NULL);

CREATE TRIGGER shard_write_check BEFORE INSERT ON shard_write_checks BEGIN
  SELECT RAISE(ABORT, 'reshard_moving') FROM shard_moves
  WHERE routing_hash = NEW.routing_hash AND state = 'moving';
  SELECT RAISE(ABORT, 'reshard_moved') FROM shard_moves
  WHERE routing_hash = NEW.routing_hash AND state = 'moved';
  SELECT RAISE(IGNORE);
END;

-- The mover's walk over a shard's user ids (reshard.ts `usersAfter`: each user table's next ids
-- after a cursor) is a range scan of an index led by `user_id`; these two tables had none
-- (account_deletions, one row per deleted account, is read whole).
CREATE INDEX webhook_outbox_by_user ON webhook_outbox (user_id);
CREATE INDEX message_files_by_user ON message_files (user_id);
