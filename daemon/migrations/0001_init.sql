-- Connections: one row per (provider, connection name) in this profile.
-- Secret columns hold AES-256-GCM sealed blobs, never plaintext.
CREATE TABLE connections (
    provider        TEXT NOT NULL,
    name            TEXT NOT NULL,
    auth_type       TEXT NOT NULL,
    status          TEXT NOT NULL,
    scopes          TEXT NOT NULL DEFAULT '[]',
    base_url        TEXT,
    account         TEXT,
    expires_at      INTEGER,
    obtained_at     INTEGER,
    last_refresh_at INTEGER,
    last_error      TEXT,
    access_token    BLOB,
    refresh_token   BLOB,
    id_token        BLOB,
    api_key         BLOB,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (provider, name)
) STRICT;

-- OAuth client credentials per provider (entered by the user or registered by DCR).
CREATE TABLE clients (
    provider      TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    client_secret BLOB,
    base_url      TEXT,
    registered    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Small facts about the store, such as the sealed key check.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
