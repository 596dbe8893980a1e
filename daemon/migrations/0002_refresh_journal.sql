-- When a refresh request was sent whose answer has not been stored yet.
-- Set (and committed) before the request leaves, cleared with the new tokens:
-- a value found after a restart means the daemon stopped mid-refresh, and
-- the provider may already have rotated the refresh token.
ALTER TABLE connections ADD COLUMN refresh_started_at INTEGER;
