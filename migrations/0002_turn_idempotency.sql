-- Retry-safe sends compare a retried body with the original; stopped or cut-off answers may
-- carry estimated usage when DashScope reported none.
ALTER TABLE messages ADD COLUMN request_hash TEXT;
ALTER TABLE messages ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
