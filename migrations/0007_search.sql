-- Full-text search over a user's messages and conversation titles (GET /v1/search). See
-- src/store/SCHEMA.md, "Search". Kept by triggers, so the index changes in the same transaction
-- as the rows it indexes, whoever writes them.

-- One row per indexed text: a message's text or a conversation's title. `doc_id` is the rowid
-- of the text in `search_text`: an INTEGER PRIMARY KEY, because VACUUM may renumber the implicit
-- rowids of `messages` and `conversations` (sqlite.org/lang_vacuum.html).
CREATE TABLE search_docs (
  doc_id          INTEGER PRIMARY KEY,
  user_id         TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  message_id      TEXT,                  -- NULL for a title
  ref_id          TEXT NOT NULL UNIQUE,  -- the message's id, or the conversation's for its title
  role            TEXT,                  -- the message's role; NULL for a title
  created_at      INTEGER NOT NULL       -- the message's, or the conversation's for its title
);
-- A user's texts newest first (ids are time-ordered): the scan of queries shorter than 3 characters.
CREATE INDEX search_docs_by_user ON search_docs (user_id, ref_id DESC);
-- A deleted conversation's texts.
CREATE INDEX search_docs_by_conversation ON search_docs (conversation_id);

-- The text itself, indexed by trigrams: every run of 3 characters, so Chinese and Japanese (no
-- spaces between words) are found by any substring of 3 or more characters, case-insensitively.
CREATE VIRTUAL TABLE search_text USING fts5(body, tokenize = 'trigram');

-- What of a message is searched: the text of user and assistant messages, a string or the `text`
-- of each text part (joined by newlines). Not reasoning, tool calls or tool results.
CREATE VIEW search_message_text AS
SELECT id, conversation_id, user_id, role, created_at,
       CASE WHEN json_valid(content_json) THEN
         CASE json_type(content_json)
           WHEN 'text' THEN json_extract(content_json, '$')
           WHEN 'array' THEN (
             SELECT group_concat(json_extract(part.value, '$.text'), char(10))
             FROM json_each(content_json) AS part
             WHERE json_type(part.value, '$.text') = 'text'
               AND coalesce(json_extract(part.value, '$.type'), 'text') = 'text'
           )
         END
       END AS body
FROM messages
WHERE role IN ('user', 'assistant');

CREATE TRIGGER search_messages_insert AFTER INSERT ON messages BEGIN
  INSERT INTO search_docs (user_id, conversation_id, message_id, ref_id, role, created_at)
  SELECT user_id, conversation_id, id, id, role, created_at FROM search_message_text
  WHERE id = NEW.id AND body <> '';
  INSERT INTO search_text (rowid, body)
  SELECT d.doc_id, t.body FROM search_docs d JOIN search_message_text t ON t.id = d.ref_id
  WHERE d.ref_id = NEW.id;
END;

-- An answer is inserted `streaming` without content and written once at its end.
CREATE TRIGGER search_messages_update AFTER UPDATE OF content_json ON messages
WHEN OLD.content_json IS NOT NEW.content_json BEGIN
  DELETE FROM search_text WHERE rowid = (SELECT doc_id FROM search_docs WHERE ref_id = OLD.id);
  DELETE FROM search_docs WHERE ref_id = OLD.id;
  INSERT INTO search_docs (user_id, conversation_id, message_id, ref_id, role, created_at)
  SELECT user_id, conversation_id, id, id, role, created_at FROM search_message_text
  WHERE id = NEW.id AND body <> '';
  INSERT INTO search_text (rowid, body)
  SELECT d.doc_id, t.body FROM search_docs d JOIN search_message_text t ON t.id = d.ref_id
  WHERE d.ref_id = NEW.id;
END;

-- Also fired for each message deleted by the ON DELETE CASCADE of its conversation.
CREATE TRIGGER search_messages_delete AFTER DELETE ON messages BEGIN
  DELETE FROM search_text WHERE rowid = (SELECT doc_id FROM search_docs WHERE ref_id = OLD.id);
  DELETE FROM search_docs WHERE ref_id = OLD.id;
END;

CREATE TRIGGER search_titles_insert AFTER INSERT ON conversations
WHEN NEW.title IS NOT NULL AND NEW.title <> '' BEGIN
  INSERT INTO search_docs (user_id, conversation_id, message_id, ref_id, role, created_at)
  VALUES (NEW.user_id, NEW.id, NULL, NEW.id, NULL, NEW.created_at);
  INSERT INTO search_text (rowid, body)
  SELECT doc_id, NEW.title FROM search_docs WHERE ref_id = NEW.id;
END;

CREATE TRIGGER search_titles_update AFTER UPDATE OF title ON conversations
WHEN OLD.title IS NOT NEW.title BEGIN
  DELETE FROM search_text WHERE rowid = (SELECT doc_id FROM search_docs WHERE ref_id = OLD.id);
  DELETE FROM search_docs WHERE ref_id = OLD.id;
  INSERT INTO search_docs (user_id, conversation_id, message_id, ref_id, role, created_at)
  SELECT NEW.user_id, NEW.id, NULL, NEW.id, NULL, NEW.created_at
  WHERE NEW.title IS NOT NULL AND NEW.title <> '';
  INSERT INTO search_text (rowid, body)
  SELECT doc_id, NEW.title FROM search_docs WHERE ref_id = NEW.id;
END;

-- Everything of the conversation, its title and whatever its messages' own trigger left.
CREATE TRIGGER search_conversations_delete AFTER DELETE ON conversations BEGIN
  DELETE FROM search_text WHERE rowid IN (SELECT doc_id FROM search_docs WHERE conversation_id = OLD.id);
  DELETE FROM search_docs WHERE conversation_id = OLD.id;
END;

-- What is already stored, oldest first. Written to be run again without harm (a text already
-- indexed is left alone), which test/search.test.ts does.
INSERT OR IGNORE INTO search_docs (user_id, conversation_id, message_id, ref_id, role, created_at)
SELECT user_id, id, NULL, id, NULL, created_at FROM conversations
WHERE title IS NOT NULL AND title <> '' ORDER BY id;
INSERT OR IGNORE INTO search_docs (user_id, conversation_id, message_id, ref_id, role, created_at)
SELECT user_id, conversation_id, id, id, role, created_at FROM search_message_text
WHERE body <> '' ORDER BY id;
INSERT INTO search_text (rowid, body)
SELECT d.doc_id, coalesce(t.body, c.title) FROM search_docs d
LEFT JOIN search_message_text t ON t.id = d.message_id
LEFT JOIN conversations c ON d.message_id IS NULL AND c.id = d.conversation_id
WHERE NOT EXISTS (SELECT 1 FROM search_text s WHERE s.rowid = d.doc_id);
