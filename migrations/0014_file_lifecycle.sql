-- File lifecycle: what the cron's sweeps read. See src/store/SCHEMA.md, "File lifecycle".

-- Live files oldest first: the sweep of unattached uploads older than UNATTACHED_FILE_TTL_HOURS
-- walks this range (keyset on (created_at, id)) and skips the ones a message refers to.
CREATE INDEX files_live_by_created ON files (created_at, id) WHERE deleted_at IS NULL;
-- Files whose delete started (deleted_at set) and may have been cut off: the sweep finishes them.
CREATE INDEX files_hidden ON files (deleted_at, id) WHERE deleted_at IS NOT NULL;
