-- Uploaded files (POST /v1/files): metadata only. The bytes live in R2 (binding FILES) under
-- `files/<id>`, never in D1. See src/store/SCHEMA.md, "files".
CREATE TABLE files (
  id         TEXT PRIMARY KEY,           -- UUIDv7
  user_id    TEXT NOT NULL,
  name       TEXT NOT NULL,              -- the client's file name (shown back, never trusted for the type)
  media_type TEXT NOT NULL,              -- decided by the leading bytes (image/jpeg, image/png, ...)
  bytes      INTEGER NOT NULL,
  sha256     TEXT NOT NULL,              -- lowercase hex of the stored bytes
  created_at INTEGER NOT NULL,           -- Unix ms
  deleted_at INTEGER                     -- set when a delete starts; the row goes once the R2 object is gone
);
-- Owner lookups and a user's files (account deletion counts them).
CREATE INDEX files_by_user ON files (user_id, id);
