-- Retention (RETENTION_DAYS, src/generation/retention.ts): the daily run finds every user's
-- conversations whose last activity is older than the cutoff, oldest first, a bounded page at a
-- time. `updated_at` is the last activity (a finished answer, a PATCH and a title all move it);
-- the index by user (conversations_by_user_updated) cannot serve a scan across users, so without
-- this one each page would read the whole table. See src/store/SCHEMA.md, "Retention".
CREATE INDEX conversations_by_updated ON conversations (updated_at, id);
