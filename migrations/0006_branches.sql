-- Branches: messages form a tree through `parent_id` (an edit starts a sibling of the edited
-- message; a regenerated answer is a sibling of the first). The conversation's active path is
-- the path from the root to `active_leaf_id` (NULL for conversations from before branches: their
-- newest message). See src/store/SCHEMA.md, "Branches".
ALTER TABLE conversations ADD COLUMN active_leaf_id TEXT;

-- Siblings (sibling_index, sibling_count, GET /v1/messages/{id}/siblings) and a path's walk up.
CREATE INDEX messages_by_parent ON messages (conversation_id, parent_id, id);

-- The active path is part of what a turn's prompt is built from: moving it bumps the version.
DROP TRIGGER conversations_bump_version;
CREATE TRIGGER conversations_bump_version
AFTER UPDATE OF system_prompt, model, params_json, active_leaf_id ON conversations BEGIN
  UPDATE conversations SET version = version + 1 WHERE id = NEW.id;
END;
