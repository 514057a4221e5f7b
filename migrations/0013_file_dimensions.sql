-- The pixel size of an uploaded image, read from its header when it is uploaded (JPEG SOF, PNG IHDR,
-- WebP VP8/VP8L/VP8X, HEIF `ispe`): a turn's prompt estimate counts an image's tokens from it.
-- NULL for files uploaded before this migration, or whose header gave no size: such an image
-- counts as the most tokens an image can take. See src/store/SCHEMA.md, "files".
ALTER TABLE files ADD COLUMN width INTEGER;
ALTER TABLE files ADD COLUMN height INTEGER;
