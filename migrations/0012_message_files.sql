-- Which messages refer to which uploaded files (a `{"type":"file","file":{"file_id"}}` part).
-- Written in the same batch that stores the message; a file with no row here is unattached
-- (uploaded, or used only on /v1/chat/completions, which stores nothing) and is deleted after
-- UNATTACHED_FILE_TTL_HOURS. Deleting a conversation deletes the files no other conversation
-- refers to. See src/store/SCHEMA.md, "message_files".
CREATE TABLE message_files (
  message_id      TEXT NOT NULL,
  file_id         TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  user_id         TEXT NOT NULL,
  PRIMARY KEY (message_id, file_id)
) WITHOUT ROWID;
-- Is a file still referred to (by any conversation), and by which.
CREATE INDEX message_files_by_file ON message_files (file_id, conversation_id);
-- A conversation's files (its delete, its export).
CREATE INDEX message_files_by_conversation ON message_files (conversation_id, file_id);
