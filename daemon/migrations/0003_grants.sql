-- Leases: "allow for an hour for this command". While one is live, a run of
-- that command is not asked before its requests to the provider get the
-- connection's credential. Nothing secret is kept here.
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    connection  TEXT NOT NULL,
    command     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX grants_by_use ON grants (provider, connection, command);
