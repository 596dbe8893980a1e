//! One profile's store: `profiles/<profile>/store.db`, SQLite in WAL mode with
//! `synchronous=FULL`, so a write acknowledged to a caller survives a crash.
//! Every change is one transaction.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::{Error, Result};
use crate::names::Existing;
use crate::names::{ConnectionName, ProfileName, ProviderName};
use crate::providers::AuthType;
use crate::secret::Secret;
use crate::vault::crypto::MasterKey;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const KEY_CHECK: &[u8] = b"authsome-key-check-v1";

/// A connection's state, as `list` and `get --field status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing stored for the provider.
    Available,
    /// Client credentials stored, no tokens yet.
    Configured,
    /// A usable credential is stored.
    Connected,
    /// The token is out of date and the last refresh failed for a reason that may pass.
    Expired,
    /// The provider rejected the refresh token or the client.
    Invalid,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Configured => "configured",
            Status::Connected => "connected",
            Status::Expired => "expired",
            Status::Invalid => "invalid",
        }
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "available" => Status::Available,
            "configured" => Status::Configured,
            "connected" => Status::Connected,
            "expired" => Status::Expired,
            "invalid" => Status::Invalid,
            other => {
                return Err(Error::Internal(format!(
                    "unknown status {other:?} in store"
                )))
            }
        })
    }
}

/// A connection's metadata: everything but the secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionMeta {
    /// Provider name.
    pub provider: ProviderName,
    /// Connection name.
    pub connection: ConnectionName,
    /// `api_key` or `oauth2`.
    pub auth_type: AuthType,
    /// Current state.
    pub status: Status,
    /// Scopes granted (OAuth).
    pub scopes: Vec<String>,
    /// The `{base_url}` used for this connection.
    pub base_url: Option<String>,
    /// The account the credential belongs to, when known.
    pub account: Option<String>,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the credential was obtained.
    pub obtained_at: Option<DateTime<Utc>>,
    /// When the last refresh happened.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// The last refresh error, if any (never a secret).
    pub last_error: Option<String>,
    /// Set while a refresh request is out; still set after a restart when
    /// the daemon stopped before storing the answer.
    pub refresh_started_at: Option<DateTime<Utc>>,
    /// Row creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The secret fields of a connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionSecrets {
    /// OAuth access token.
    pub access_token: Option<Secret>,
    /// OAuth refresh token.
    pub refresh_token: Option<Secret>,
    /// OpenID Connect ID token.
    pub id_token: Option<Secret>,
    /// API key.
    pub api_key: Option<Secret>,
}

impl ConnectionSecrets {
    /// Field name and value of each secret that is set.
    pub fn fields(&self) -> Vec<(&'static str, &Secret)> {
        [
            ("access_token", &self.access_token),
            ("refresh_token", &self.refresh_token),
            ("id_token", &self.id_token),
            ("api_key", &self.api_key),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
        .collect()
    }

    /// A secret by field name.
    pub fn get(&self, field: &str) -> Option<&Secret> {
        self.fields()
            .into_iter()
            .find(|(n, _)| *n == field)
            .map(|(_, v)| v)
    }
}

/// A connection with its secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    /// Metadata.
    pub meta: ConnectionMeta,
    /// Secrets, opened.
    pub secrets: ConnectionSecrets,
}

/// OAuth client credentials for a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    /// Provider name.
    pub provider: ProviderName,
    /// Client ID (not secret).
    pub client_id: String,
    /// Client secret, for confidential clients.
    pub client_secret: Option<Secret>,
    /// The `{base_url}` the client was created for.
    pub base_url: Option<String>,
    /// True when the client was registered dynamically (RFC 7591).
    pub registered: bool,
}

/// One profile's store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    key: Arc<MasterKey>,
    profile: ProfileName,
    // Bumped by every write, so caches of what was read can tell they are stale.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

/// Rewrites a store and empties its WAL, so old ciphertexts do not linger
/// in free pages. Best effort: the data is already safe without it.
async fn compact(pool: &SqlitePool) {
    for sql in ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
        if let Err(e) = sqlx::query(sql).execute(pool).await {
            tracing::warn!("{sql} after re-sealing: {e}");
        }
    }
}

/// The associated data of a sealed field: the table, row and field it belongs to.
fn aad(profile: &ProfileName, table: &str, provider: &str, name: &str, field: &str) -> String {
    format!("{table}:{profile}/{provider}/{name}:{field}")
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ts(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

impl Store {
    /// Opens (creating if needed) the store at `path`, runs migrations and
    /// checks that `key` is the key this store was created with.
    pub async fn open(path: &Path, key: Arc<MasterKey>, profile: ProfileName) -> Result<Store> {
        if let Some(dir) = path.parent() {
            crate::home::ensure_private_dir(dir)?;
        }
        // Create the file 0600 before SQLite does: its -wal and -shm files copy these permissions.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = Store {
            pool,
            key,
            profile,
            generation: Arc::default(),
        };
        store.check_key().await?;
        Ok(store)
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock first,
    /// waiting up to the busy timeout for another writer: a deferred `BEGIN`
    /// that reads and then writes is refused at once ("database is locked")
    /// when another connection holds the lock, because SQLite never waits to
    /// upgrade a read transaction.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A counter that changes whenever this store is written.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The profile this store belongs to.
    pub fn profile(&self) -> &ProfileName {
        &self.profile
    }

    async fn check_key(&self) -> Result<()> {
        let aad = format!("meta:{}:key_check", self.profile);
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'key_check'")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                let sealed: Vec<u8> = row.get(0);
                let opened = self.key.open(&aad, &sealed).map_err(|_| {
                    Error::MasterKey(format!(
                        "the master key in effect does not open the store of profile {}; \
                         check AUTHSOME_MASTER_KEY and the key backend (`authsome doctor`)",
                        self.profile
                    ))
                })?;
                if opened.as_slice() != KEY_CHECK {
                    return Err(Error::MasterKey(
                        "the store's key check holds an unexpected value".into(),
                    ));
                }
            }
            None => {
                sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)")
                    .bind(self.key.seal(&aad, KEY_CHECK))
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    fn aad(&self, table: &str, provider: &str, name: &str, field: &str) -> String {
        aad(&self.profile, table, provider, name, field)
    }

    /// Re-seals every sealed field of the store at `path` (and its key
    /// check) from `old` to `new`, in one transaction: the store opens with
    /// one key or the other, never half and half. `None` when it already
    /// opens with `new`; else the number of fields re-sealed.
    pub async fn reseal(
        path: &Path,
        profile: &ProfileName,
        old: &MasterKey,
        new: &MasterKey,
    ) -> Result<Option<usize>> {
        Self::reseal_or_check(path, profile, old, Some(new)).await
    }

    /// Opens every sealed field of the store at `path` with `key`, changing
    /// nothing: the number of fields, or the first that does not open.
    pub async fn check_sealed(
        path: &Path,
        profile: &ProfileName,
        key: &MasterKey,
    ) -> Result<usize> {
        Ok(Self::reseal_or_check(path, profile, key, None)
            .await?
            .unwrap_or_default())
    }

    async fn reseal_or_check(
        path: &Path,
        profile: &ProfileName,
        old: &MasterKey,
        new: Option<&MasterKey>,
    ) -> Result<Option<usize>> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let check_aad = format!("meta:{profile}:key_check");
        let check: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(sealed) = &check {
            if new.is_some_and(|k| k.open(&check_aad, sealed).is_ok()) {
                // Re-sealed already; a kill may have come before the rewrite.
                drop(tx);
                compact(&pool).await;
                pool.close().await;
                return Ok(None);
            }
            old.open(&check_aad, sealed).map_err(|_| {
                Error::MasterKey(format!(
                    "the master key does not open the store of profile {profile}"
                ))
            })?;
        }
        let mut fields = 0;
        let rows = sqlx::query(
            "SELECT provider, name, access_token, refresh_token, id_token, api_key FROM connections",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let (provider, name): (String, String) = (row.get("provider"), row.get("name"));
            for field in ["access_token", "refresh_token", "id_token", "api_key"] {
                let Some(blob) = row.get::<Option<Vec<u8>>, _>(field) else {
                    continue;
                };
                let aad = aad(profile, "connections", &provider, &name, field);
                let plain = old.open(&aad, &blob)?;
                fields += 1;
                let Some(new) = new else { continue };
                sqlx::query(&format!(
                    "UPDATE connections SET {field} = ? WHERE provider = ? AND name = ?"
                ))
                .bind(new.seal(&aad, &plain))
                .bind(&provider)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            }
        }
        let rows = sqlx::query("SELECT provider, client_secret FROM clients")
            .fetch_all(&mut *tx)
            .await?;
        for row in rows {
            let provider: String = row.get("provider");
            let Some(blob) = row.get::<Option<Vec<u8>>, _>("client_secret") else {
                continue;
            };
            let aad = aad(profile, "clients", &provider, "-", "client_secret");
            let plain = old.open(&aad, &blob)?;
            fields += 1;
            let Some(new) = new else { continue };
            sqlx::query("UPDATE clients SET client_secret = ? WHERE provider = ?")
                .bind(new.seal(&aad, &plain))
                .bind(&provider)
                .execute(&mut *tx)
                .await?;
        }
        let Some(new) = new else {
            drop(tx);
            pool.close().await;
            return Ok(Some(fields));
        };
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('key_check', ?)")
            .bind(new.seal(&check_aad, KEY_CHECK))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        compact(&pool).await;
        pool.close().await;
        Ok(Some(fields))
    }

    fn seal(
        &self,
        table: &str,
        provider: &str,
        name: &str,
        field: &str,
        value: &Option<Secret>,
    ) -> Option<Vec<u8>> {
        value.as_ref().map(|v| {
            self.key.seal(
                &self.aad(table, provider, name, field),
                v.expose().as_bytes(),
            )
        })
    }

    fn open_field(
        &self,
        table: &str,
        provider: &str,
        name: &str,
        field: &str,
        blob: Option<Vec<u8>>,
    ) -> Result<Option<Secret>> {
        let Some(blob) = blob else { return Ok(None) };
        let plain = self
            .key
            .open(&self.aad(table, provider, name, field), &blob)?;
        let text =
            String::from_utf8(plain.to_vec()).map_err(|_| Error::Decrypt { what: field.into() })?;
        Ok(Some(Secret::new(text)))
    }

    fn meta_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ConnectionMeta> {
        let scopes: String = row.get("scopes");
        Ok(ConnectionMeta {
            provider: ProviderName::parse(row.get("provider"))?,
            connection: ConnectionName::parse(row.get("name"))?,
            auth_type: AuthType::from_str(row.get("auth_type"))?,
            status: Status::from_str(row.get("status"))?,
            scopes: serde_json::from_str(&scopes).unwrap_or_default(),
            base_url: row.get("base_url"),
            account: row.get("account"),
            expires_at: from_ts(row.get("expires_at")),
            obtained_at: from_ts(row.get("obtained_at")),
            last_refresh_at: from_ts(row.get("last_refresh_at")),
            last_error: row.get("last_error"),
            refresh_started_at: from_ts(row.get("refresh_started_at")),
            created_at: from_ts(Some(row.get("created_at"))).unwrap_or_default(),
            updated_at: from_ts(Some(row.get("updated_at"))).unwrap_or_default(),
        })
    }

    /// Every connection's metadata; no secret is opened.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionMeta>> {
        let rows = sqlx::query(
            "SELECT provider, name, auth_type, status, scopes, base_url, account, expires_at, obtained_at, \
             last_refresh_at, last_error, refresh_started_at, created_at, updated_at FROM connections \
             ORDER BY provider, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::meta_from_row).collect()
    }

    /// One connection with its secrets opened, if it exists.
    pub async fn get_connection(
        &self,
        provider: &ProviderName,
        name: &ConnectionName,
    ) -> Result<Option<ConnectionRecord>> {
        let row = sqlx::query("SELECT * FROM connections WHERE provider = ? AND name = ?")
            .bind(provider.as_str())
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let (p, n) = (provider.as_str(), name.as_str());
        let secrets = ConnectionSecrets {
            access_token: self.open_field(
                "connections",
                p,
                n,
                "access_token",
                row.get("access_token"),
            )?,
            refresh_token: self.open_field(
                "connections",
                p,
                n,
                "refresh_token",
                row.get("refresh_token"),
            )?,
            id_token: self.open_field("connections", p, n, "id_token", row.get("id_token"))?,
            api_key: self.open_field("connections", p, n, "api_key", row.get("api_key"))?,
        };
        Ok(Some(ConnectionRecord {
            meta: Self::meta_from_row(&row)?,
            secrets,
        }))
    }

    /// Writes a connection. With [`Existing::Keep`], an existing connection
    /// is kept and the call fails with [`Error::AlreadyConnected`]; the check
    /// and the write are one transaction.
    pub async fn put_connection(
        &self,
        record: &ConnectionRecord,
        existing: Existing,
    ) -> Result<()> {
        let m = &record.meta;
        let (p, n) = (m.provider.as_str(), m.connection.as_str());
        let mut tx = self.write_tx().await?;
        if existing == Existing::Keep {
            let exists = sqlx::query("SELECT 1 FROM connections WHERE provider = ? AND name = ?")
                .bind(p)
                .bind(n)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if exists {
                return Err(Error::AlreadyConnected {
                    provider: p.into(),
                    connection: n.into(),
                });
            }
        }
        self.write_connection(&mut tx, record).await?;
        tx.commit().await?;
        self.bump();
        Ok(())
    }

    async fn write_connection(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        record: &ConnectionRecord,
    ) -> Result<()> {
        let m = &record.meta;
        let (p, n) = (m.provider.as_str(), m.connection.as_str());
        let s = &record.secrets;
        sqlx::query(
            "INSERT OR REPLACE INTO connections (provider, name, auth_type, status, scopes, base_url, account, \
             expires_at, obtained_at, last_refresh_at, last_error, refresh_started_at, access_token, refresh_token, \
             id_token, api_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p)
        .bind(n)
        .bind(m.auth_type.as_str())
        .bind(m.status.as_str())
        .bind(serde_json::to_string(&m.scopes).unwrap_or_else(|_| "[]".into()))
        .bind(&m.base_url)
        .bind(&m.account)
        .bind(m.expires_at.map(ts))
        .bind(m.obtained_at.map(ts))
        .bind(m.last_refresh_at.map(ts))
        .bind(&m.last_error)
        .bind(m.refresh_started_at.map(ts))
        .bind(self.seal("connections", p, n, "access_token", &s.access_token))
        .bind(self.seal("connections", p, n, "refresh_token", &s.refresh_token))
        .bind(self.seal("connections", p, n, "id_token", &s.id_token))
        .bind(self.seal("connections", p, n, "api_key", &s.api_key))
        .bind(ts(m.created_at))
        .bind(ts(m.updated_at))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records, durably, that a refresh request for this connection is about
    /// to be sent, provided the row is still the one read (same `updated_at`
    /// and the same journal entry as `seen`). False when a login, revoke or
    /// remove changed it meanwhile. Credentials are unchanged, so cached
    /// headers stay valid.
    pub async fn mark_refresh_started(
        &self,
        seen: &ConnectionMeta,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE connections SET refresh_started_at = ? WHERE provider = ? AND name = ? \
             AND updated_at = ? AND refresh_started_at IS ?",
        )
        .bind(ts(at))
        .bind(seen.provider.as_str())
        .bind(seen.connection.as_str())
        .bind(ts(seen.updated_at))
        .bind(seen.refresh_started_at.map(ts))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the outcome of a refresh, provided the row still carries the
    /// journal entry `started` that refresh wrote; false (and nothing
    /// written) when a login, revoke or remove replaced it meanwhile.
    pub async fn finish_refresh(
        &self,
        record: &ConnectionRecord,
        started: DateTime<Utc>,
    ) -> Result<bool> {
        let m = &record.meta;
        let mut tx = self.write_tx().await?;
        let current: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT refresh_started_at FROM connections WHERE provider = ? AND name = ?",
        )
        .bind(m.provider.as_str())
        .bind(m.connection.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if current != Some(Some(ts(started))) {
            return Ok(false);
        }
        self.write_connection(&mut tx, record).await?;
        tx.commit().await?;
        self.bump();
        Ok(true)
    }

    /// Deletes one connection; true when it existed.
    pub async fn delete_connection(
        &self,
        provider: &ProviderName,
        name: &ConnectionName,
    ) -> Result<bool> {
        let done = sqlx::query("DELETE FROM connections WHERE provider = ? AND name = ?")
            .bind(provider.as_str())
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        self.bump();
        Ok(done.rows_affected() > 0)
    }

    /// Deletes one connection and the provider's client credentials in one
    /// transaction (what `revoke` does locally). Returns what was removed.
    pub async fn revoke_local(
        &self,
        provider: &ProviderName,
        name: &ConnectionName,
    ) -> Result<(bool, bool)> {
        let mut tx = self.write_tx().await?;
        let conn = sqlx::query("DELETE FROM connections WHERE provider = ? AND name = ?")
            .bind(provider.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let client = sqlx::query("DELETE FROM clients WHERE provider = ?")
            .bind(provider.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM grants WHERE provider = ? AND connection = ?")
            .bind(provider.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.bump();
        Ok((conn > 0, client > 0))
    }

    /// Deletes all of a provider's state (connections and client) in one
    /// transaction. Returns the number of connections removed and whether a
    /// client was removed.
    pub async fn remove_provider_state(&self, provider: &ProviderName) -> Result<(u64, bool)> {
        let mut tx = self.write_tx().await?;
        let conns = sqlx::query("DELETE FROM connections WHERE provider = ?")
            .bind(provider.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let client = sqlx::query("DELETE FROM clients WHERE provider = ?")
            .bind(provider.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM grants WHERE provider = ?")
            .bind(provider.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.bump();
        Ok((conns, client > 0))
    }

    /// The provider's client credentials, if stored.
    pub async fn get_client(&self, provider: &ProviderName) -> Result<Option<ClientRecord>> {
        let row = sqlx::query("SELECT * FROM clients WHERE provider = ?")
            .bind(provider.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let p = provider.as_str();
        Ok(Some(ClientRecord {
            provider: provider.clone(),
            client_id: row.get("client_id"),
            client_secret: self.open_field(
                "clients",
                p,
                "-",
                "client_secret",
                row.get("client_secret"),
            )?,
            base_url: row.get("base_url"),
            registered: row.get::<i64, _>("registered") != 0,
        }))
    }

    /// Stores the provider's client credentials (replacing any).
    pub async fn put_client(&self, client: &ClientRecord) -> Result<()> {
        let p = client.provider.as_str();
        let now = ts(Utc::now());
        sqlx::query(
            "INSERT INTO clients (provider, client_id, client_secret, base_url, registered, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE SET client_id = excluded.client_id, \
             client_secret = excluded.client_secret, base_url = excluded.base_url, registered = excluded.registered, \
             updated_at = excluded.updated_at",
        )
        .bind(p)
        .bind(&client.client_id)
        .bind(self.seal("clients", p, "-", "client_secret", &client.client_secret))
        .bind(&client.base_url)
        .bind(client.registered as i64)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.bump();
        Ok(())
    }

    /// Providers that have client credentials stored.
    pub async fn configured_providers(&self) -> Result<Vec<ProviderName>> {
        let rows = sqlx::query("SELECT provider FROM clients ORDER BY provider")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| ProviderName::parse(r.get(0))).collect()
    }

    /// Stores a lease: until `expires_at`, runs of `command` are not asked
    /// before using this connection.
    pub async fn add_grant(&self, grant: &Grant) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // Expired leases go as new ones come; they are never consulted.
        sqlx::query("DELETE FROM grants WHERE expires_at <= ?")
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO grants (id, provider, connection, command, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&grant.id)
        .bind(&grant.provider)
        .bind(&grant.connection)
        .bind(&grant.command)
        .bind(ts(grant.created_at))
        .bind(ts(grant.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Live leases, soonest to expire first.
    pub async fn list_grants(&self) -> Result<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT id, provider, connection, command, created_at, expires_at FROM grants \
             WHERE expires_at > ? ORDER BY expires_at, id",
        )
        .bind(ts(Utc::now()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(grant_from_row).collect())
    }

    /// The live lease for this use, if there is one.
    pub async fn live_grant(
        &self,
        provider: &str,
        connection: &str,
        command: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM grants WHERE provider = ? AND connection = ? AND command = ? \
             AND expires_at > ? ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(provider)
        .bind(connection)
        .bind(command)
        .bind(ts(Utc::now()))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Ends a lease; the lease as it was, if it existed.
    pub async fn delete_grant(&self, id: &str) -> Result<Option<Grant>> {
        let row = sqlx::query(
            "DELETE FROM grants WHERE id = ? \
             RETURNING id, provider, connection, command, created_at, expires_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(grant_from_row))
    }

    /// `PRAGMA integrity_check`: `ok` or the problems SQLite found.
    pub async fn integrity_check(&self) -> Result<String> {
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A lease: runs of `command` use this connection without being asked
/// until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Grant {
    /// Its id (`authsome grants revoke ID`).
    pub id: String,
    /// Provider.
    pub provider: String,
    /// Connection.
    pub connection: String,
    /// The command's name.
    pub command: String,
    /// When it was given.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

fn grant_from_row(r: &sqlx::sqlite::SqliteRow) -> Grant {
    Grant {
        id: r.get(0),
        provider: r.get(1),
        connection: r.get(2),
        command: r.get(3),
        created_at: from_ts(Some(r.get(4))).unwrap_or_default(),
        expires_at: from_ts(Some(r.get(5))).unwrap_or_default(),
    }
}

/// Builds a new connection record stamped now.
pub fn new_record(
    provider: ProviderName,
    connection: ConnectionName,
    auth_type: AuthType,
    secrets: ConnectionSecrets,
) -> ConnectionRecord {
    let now = Utc::now();
    ConnectionRecord {
        meta: ConnectionMeta {
            provider,
            connection,
            auth_type,
            status: Status::Connected,
            scopes: Vec::new(),
            base_url: None,
            account: None,
            expires_at: None,
            obtained_at: Some(now),
            last_refresh_at: None,
            refresh_started_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        },
        secrets,
    }
}

/// Whether a view shows secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// Every secret as `***`.
    Masked,
    /// The secrets themselves (asked for, and audited).
    Secrets,
}

impl Reveal {
    /// From the API's `show_secret`.
    pub fn when(show_secret: bool) -> Reveal {
        if show_secret {
            Reveal::Secrets
        } else {
            Reveal::Masked
        }
    }
}

/// Metadata map helper for views: field → shown value.
pub fn masked_fields(secrets: &ConnectionSecrets, reveal: Reveal) -> BTreeMap<String, String> {
    secrets
        .fields()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                if reveal == Reveal::Secrets {
                    v.expose().to_string()
                } else {
                    "***".to_string()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open(dir: &Path, key: Arc<MasterKey>) -> Result<Store> {
        Store::open(&dir.join("p/store.db"), key, ProfileName::default_name()).await
    }

    fn api_key_record(provider: &str, conn: &str, key: &str) -> ConnectionRecord {
        new_record(
            ProviderName::parse(provider).unwrap(),
            ConnectionName::parse(conn).unwrap(),
            AuthType::ApiKey,
            ConnectionSecrets {
                api_key: Some(Secret::new(key.into())),
                ..Default::default()
            },
        )
    }

    #[tokio::test]
    async fn reseal_moves_every_sealed_field_to_the_new_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (MasterKey::generate(), MasterKey::generate());
        let store = open(dir.path(), Arc::new(k1.clone())).await.unwrap();
        let mut oauth = api_key_record("fake", "work", "unused");
        oauth.meta.auth_type = AuthType::OAuth2;
        oauth.secrets = ConnectionSecrets {
            access_token: Some(Secret::new("at-reseal".into())),
            refresh_token: Some(Secret::new("rt-reseal".into())),
            id_token: Some(Secret::new("id-reseal".into())),
            api_key: None,
        };
        store.put_connection(&oauth, Existing::Keep).await.unwrap();
        store
            .put_connection(
                &api_key_record("openai", "default", "sk-reseal"),
                Existing::Keep,
            )
            .await
            .unwrap();
        let provider = ProviderName::parse("fake").unwrap();
        store
            .put_client(&ClientRecord {
                provider: provider.clone(),
                client_id: "cid".into(),
                client_secret: Some(Secret::new("cs-reseal".into())),
                base_url: None,
                registered: false,
            })
            .await
            .unwrap();
        store.close().await;
        let path = dir.path().join("p/store.db");
        let profile = ProfileName::default_name();
        // Three OAuth tokens, one API key, one client secret.
        assert_eq!(
            Store::reseal(&path, &profile, &k1, &k2).await.unwrap(),
            Some(5)
        );
        // Done once: again it is a no-op, and the old key no longer opens it.
        assert_eq!(
            Store::reseal(&path, &profile, &k1, &k2).await.unwrap(),
            None
        );
        let err = open(dir.path(), Arc::new(k1.clone())).await.unwrap_err();
        assert!(matches!(err, Error::MasterKey(_)), "{err}");
        let store = open(dir.path(), Arc::new(k2.clone())).await.unwrap();
        let got = store
            .get_connection(&oauth.meta.provider, &oauth.meta.connection)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.secrets.access_token.unwrap().expose(), "at-reseal");
        assert_eq!(got.secrets.refresh_token.unwrap().expose(), "rt-reseal");
        assert_eq!(got.secrets.id_token.unwrap().expose(), "id-reseal");
        let key = store
            .get_connection(
                &ProviderName::parse("openai").unwrap(),
                &ConnectionName::default_name(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key.secrets.api_key.unwrap().expose(), "sk-reseal");
        let client = store.get_client(&provider).await.unwrap().unwrap();
        assert_eq!(client.client_secret.unwrap().expose(), "cs-reseal");
        store.close().await;
        // A third key opens neither: refused, nothing changed.
        let k3 = MasterKey::generate();
        assert!(Store::reseal(&path, &profile, &k3, &MasterKey::generate())
            .await
            .is_err());
        assert!(open(dir.path(), Arc::new(k2)).await.is_ok());
    }

    #[tokio::test]
    async fn connection_round_trip_keeps_secrets_sealed_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(MasterKey::generate());
        let store = open(dir.path(), key.clone()).await.unwrap();
        let rec = api_key_record("openai", "default", "sk-plaintext-marker-123456");
        store.put_connection(&rec, Existing::Keep).await.unwrap();
        let got = store
            .get_connection(&rec.meta.provider, &rec.meta.connection)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got.secrets.api_key.unwrap().expose(),
            "sk-plaintext-marker-123456"
        );
        store.close().await;
        for f in ["store.db", "store.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.path().join("p").join(f)) {
                assert!(
                    !bytes.windows(12).any(|w| w == b"sk-plaintext"),
                    "{f} holds plaintext"
                );
            }
        }
        assert_eq!(
            crate::home::mode_of(&dir.path().join("p/store.db")),
            Some(0o600)
        );
    }

    #[tokio::test]
    async fn a_write_waits_for_another_writer_instead_of_failing() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Arc::new(MasterKey::generate()))
            .await
            .unwrap();
        let path = dir.path().join("p/store.db");
        let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        // put_connection reads (does the connection exist?) and then writes.
        let write = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_connection(&api_key_record("openai", "default", "k1"), Existing::Keep)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!write.is_finished(), "the write waits for the lock");
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        write.await.unwrap().unwrap();
        let pname = ProviderName::parse("openai").unwrap();
        assert!(store
            .get_connection(&pname, &ConnectionName::default_name())
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn existing_connection_is_kept_without_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Arc::new(MasterKey::generate()))
            .await
            .unwrap();
        store
            .put_connection(&api_key_record("openai", "default", "k1"), Existing::Keep)
            .await
            .unwrap();
        let err = store
            .put_connection(&api_key_record("openai", "default", "k2"), Existing::Keep)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyConnected { .. }));
        store
            .put_connection(
                &api_key_record("openai", "default", "k3"),
                Existing::Replace,
            )
            .await
            .unwrap();
        let p = ProviderName::parse("openai").unwrap();
        let got = store
            .get_connection(&p, &ConnectionName::default_name())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.secrets.api_key.unwrap().expose(), "k3");
    }

    #[tokio::test]
    async fn wrong_master_key_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), Arc::new(MasterKey::generate()))
            .await
            .unwrap()
            .close()
            .await;
        let err = open(dir.path(), Arc::new(MasterKey::generate()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not open the store"), "{err}");
    }

    #[tokio::test]
    async fn ciphertext_copied_to_another_row_fails_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Arc::new(MasterKey::generate()))
            .await
            .unwrap();
        store
            .put_connection(
                &api_key_record("openai", "default", "victim-key"),
                Existing::Keep,
            )
            .await
            .unwrap();
        store
            .put_connection(
                &api_key_record("anthropic", "default", "other"),
                Existing::Keep,
            )
            .await
            .unwrap();
        sqlx::query(
            "UPDATE connections SET api_key = (SELECT api_key FROM connections WHERE provider = 'openai') \
             WHERE provider = 'anthropic'",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let p = ProviderName::parse("anthropic").unwrap();
        let err = store
            .get_connection(&p, &ConnectionName::default_name())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{err}");
    }

    #[tokio::test]
    async fn client_credentials_round_trip_and_revoke_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Arc::new(MasterKey::generate()))
            .await
            .unwrap();
        let p = ProviderName::parse("github").unwrap();
        store
            .put_client(&ClientRecord {
                provider: p.clone(),
                client_id: "id".into(),
                client_secret: Some(Secret::new("shh".into())),
                base_url: None,
                registered: false,
            })
            .await
            .unwrap();
        assert_eq!(
            store
                .get_client(&p)
                .await
                .unwrap()
                .unwrap()
                .client_secret
                .unwrap()
                .expose(),
            "shh"
        );
        assert_eq!(
            store
                .revoke_local(&p, &ConnectionName::default_name())
                .await
                .unwrap(),
            (false, true)
        );
        assert!(store.get_client(&p).await.unwrap().is_none());
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
    }
}
