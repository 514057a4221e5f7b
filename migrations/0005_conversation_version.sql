-- The conversation version: every change to what a turn's prompt is built from (the
-- conversation's system prompt, model and default parameters, and any of its messages) bumps
-- it, by trigger, whoever makes the change. A conversation's Durable Object keeps that prompt
-- state next to the turn and commits each turn on the condition that the version is still the
-- one its state was read at, so a change made some other way (a script, a restore) is caught by
-- the commit itself (see src/store/SCHEMA.md, "Prompt state and the conversation version").
ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER messages_bump_version_on_insert AFTER INSERT ON messages BEGIN
  UPDATE conversations SET version = version + 1 WHERE id = NEW.conversation_id;
END;

CREATE TRIGGER messages_bump_version_on_update AFTER UPDATE ON messages BEGIN
  UPDATE conversations SET version = version + 1 WHERE id = NEW.conversation_id;
END;

CREATE TRIGGER messages_bump_version_on_delete AFTER DELETE ON messages BEGIN
  UPDATE conversations SET version = version + 1 WHERE id = OLD.conversation_id;
END;

-- SQLite does not fire a trigger from its own UPDATE again (recursive_triggers is off), and the
-- column list leaves `version` itself, `title`, `updated_at` and the rest out.
CREATE TRIGGER conversations_bump_version AFTER UPDATE OF system_prompt, model, params_json ON conversations BEGIN
  UPDATE conversations SET version = version + 1 WHERE id = NEW.id;
END;
