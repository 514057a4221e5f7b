-- Generated titles (API.md §2.3 "Titles"): an untitled conversation gets one title call after its
-- first completed answer. `title_attempted_at` (epoch ms) records that the call was claimed, so a
-- call that failed, or was refused by the user's budget, is never made again; a title the user
-- sets meanwhile wins, because the generated one is written only `WHERE title IS NULL`.
-- See src/store/SCHEMA.md, "Titles".
ALTER TABLE conversations ADD COLUMN title_attempted_at INTEGER;
