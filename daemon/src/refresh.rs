//! Keeping OAuth tokens fresh. Every read refreshes a token inside its
//! refresh window first; a scheduler refreshes ahead of expiry so agents
//! rarely wait. One refresh per connection at a time: readers that arrive
//! meanwhile wait for it, and the holder re-checks after taking the lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::audit::{Audit, AuditEvent};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::flows::oauth::{Endpoints, TokenError};
use crate::flows::token::{token_request, Grant};
use crate::home::Home;
use crate::names::{ConnectionName, ProfileName, ProviderName};
use crate::notify::Notifier;
use crate::notify::{Notification, NotificationKind};
use crate::providers::AuthType;
use crate::providers::Catalogue;
use crate::vault::Stores;
use crate::vault::{ConnectionMeta, ConnectionRecord, Status};

/// Refresh this long before expiry (the seeds' default).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// How often the scheduler looks for connections to refresh.
pub const SCHEDULER_TICK: Duration = Duration::from_secs(1);

const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// After a failed attempt, reads wait this long before asking the provider
/// again (the scheduler waits for the full backoff): an agent retrying in a
/// loop against an expired connection costs the provider one call a second.
pub const READ_RETRY_FLOOR: Duration = Duration::from_secs(1);

type Key = (ProfileName, ProviderName, ConnectionName);

/// Per-connection locks and retry backoff.
#[derive(Debug, Default)]
struct RefreshLocks {
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// Next attempt the scheduler may make, the current delay, and when the
    /// last attempt failed.
    backoff: Mutex<HashMap<Key, (Instant, Duration, Instant)>>,
}

/// Above this many refresh locks, the ones nobody holds or waits for are
/// dropped (a removed connection's lock would otherwise stay forever).
const MAX_IDLE_LOCKS: usize = 256;

impl RefreshLocks {
    fn lock_for(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("refresh locks");
        if locks.len() >= MAX_IDLE_LOCKS && !locks.contains_key(key) {
            // Only the map holds such a lock: dropping it loses no waiter,
            // and the next refresh of that connection makes a new one.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key.clone()).or_default().clone()
    }

    fn backing_off(&self, key: &Key) -> bool {
        self.backoff
            .lock()
            .expect("backoff")
            .get(key)
            .is_some_and(|(next, _, _)| Instant::now() < *next)
    }

    fn failed_within(&self, key: &Key, within: Duration) -> bool {
        self.backoff
            .lock()
            .expect("backoff")
            .get(key)
            .is_some_and(|(_, _, at)| at.elapsed() < within)
    }

    fn failed(&self, key: &Key) {
        let mut b = self.backoff.lock().expect("backoff");
        let delay = b
            .get(key)
            .map(|(_, d, _)| (*d * 2).min(MAX_BACKOFF))
            .unwrap_or(FIRST_BACKOFF);
        let now = Instant::now();
        b.insert(key.clone(), (now + delay, delay, now));
    }

    fn succeeded(&self, key: &Key) {
        self.backoff.lock().expect("backoff").remove(key);
    }

    /// True while a refresh of this connection is running.
    fn busy(&self, key: &Key) -> bool {
        self.lock_for(key).try_lock().is_err()
    }
}

/// The refresh window for a token: 300 s, or half its lifetime when it
/// lives under 10 minutes, so a short-lived token is not refreshed on every read.
pub fn window(meta: &ConnectionMeta) -> Duration {
    let issued = meta.last_refresh_at.or(meta.obtained_at);
    let lifetime = match (issued, meta.expires_at) {
        (Some(i), Some(e)) => (e - i).to_std().ok(),
        _ => None,
    };
    match lifetime {
        Some(l) if l < Duration::from_secs(600) => l / 2,
        _ => DEFAULT_WINDOW,
    }
}

/// True when the token is inside its refresh window (or past expiry).
pub fn due(meta: &ConnectionMeta, now: DateTime<Utc>) -> bool {
    match meta.expires_at {
        Some(exp) => match chrono::Duration::from_std(window(meta)) {
            Ok(w) => now >= exp - w,
            Err(_) => true,
        },
        None => false,
    }
}

/// The status a failed refresh leaves: `invalid` when the provider refused
/// the grant or the client for good; otherwise (no answer, a 5xx, an odd
/// answer, another OAuth error) `connected` while the old token is still
/// valid, `expired` after.
fn status_after_failure(e: &TokenError, meta: &ConnectionMeta, now: DateTime<Utc>) -> Status {
    if e.is_rejection() {
        Status::Invalid
    } else if still_valid(meta, now) {
        Status::Connected
    } else {
        Status::Expired
    }
}

/// The notification a move from `old` to `new` raises: one per change,
/// none while the status stays what it was.
fn notice(old: Status, new: Status) -> Option<NotificationKind> {
    match (old, new) {
        (o, n) if o == n => None,
        (_, Status::Connected) => Some(NotificationKind::Recovered),
        (_, Status::Expired | Status::Invalid) => Some(NotificationKind::NeedsAttention),
        _ => None,
    }
}

fn still_valid(meta: &ConnectionMeta, now: DateTime<Utc>) -> bool {
    meta.expires_at.is_none_or(|e| now < e)
}

/// True when a refresh must happen now: inside the window, or an earlier
/// refresh request went out and its answer was never stored (the daemon
/// stopped mid-refresh). In that case the provider may already have rotated
/// the refresh token; retrying at once, inside the provider's reuse interval
/// if it has one, is what can still save the connection.
fn needs_refresh(meta: &ConnectionMeta, now: DateTime<Utc>) -> bool {
    due(meta, now) || meta.refresh_started_at.is_some()
}

/// What a caller of [`Refresher::fresh_record`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A valid credential, or an error.
    Valid,
    /// The record as it is after any refresh, with its state, for display.
    Display,
}

/// A credential ready to use: the connection, refreshed first when it was
/// due, and until when it may be reused without asking again.
#[derive(Debug)]
pub struct FreshCredential {
    /// The connection.
    pub record: ConnectionRecord,
    /// The start of its refresh window (`None`: it never expires).
    pub reuse_until: Option<DateTime<Utc>>,
}

/// Keeps OAuth connections fresh: on read (single flight per connection)
/// and on a schedule. It owns its locks and backoff, and shares the stores,
/// the catalogue, the audit log, the events and the notifier. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Refresher {
    locks: Arc<RefreshLocks>,
    home: Home,
    stores: Arc<Stores>,
    catalogue: Arc<Catalogue>,
    http: reqwest::Client,
    audit: Arc<Audit>,
    events: Events,
    notifier: Arc<dyn Notifier>,
}

/// What a [`Refresher`] works with.
#[derive(Debug)]
pub struct RefresherParts {
    /// The home (for its profiles).
    pub home: Home,
    /// The stores.
    pub stores: Arc<Stores>,
    /// The providers.
    pub catalogue: Arc<Catalogue>,
    /// The HTTP client for token endpoints.
    pub http: reqwest::Client,
    /// The audit log.
    pub audit: Arc<Audit>,
    /// The event hub.
    pub events: Events,
    /// Who tells people about connections needing attention.
    pub notifier: Arc<dyn Notifier>,
}

impl Refresher {
    /// A refresher over `parts`.
    pub fn new(parts: RefresherParts) -> Refresher {
        Refresher {
            locks: Arc::default(),
            home: parts.home,
            stores: parts.stores,
            catalogue: parts.catalogue,
            http: parts.http,
            audit: parts.audit,
            events: parts.events,
            notifier: parts.notifier,
        }
    }
}

impl Refresher {
    /// The one way the proxy gets a credential: the connection, refreshed
    /// first when due; an error when it cannot give a valid one.
    pub async fn fresh_credential(
        &self,
        profile: &ProfileName,
        provider: &ProviderName,
        connection: &ConnectionName,
    ) -> Result<FreshCredential> {
        let rec = self
            .stores
            .get(profile)
            .await?
            .get_connection(provider, connection)
            .await?
            .ok_or_else(|| Error::ConnectionNotFound {
                provider: provider.to_string(),
                connection: connection.to_string(),
            })?;
        let record = self.fresh_record(profile, rec, Need::Valid).await?;
        let reuse_until = record
            .meta
            .expires_at
            .map(|exp| exp - chrono::Duration::from_std(window(&record.meta)).unwrap_or_default());
        Ok(FreshCredential {
            record,
            reuse_until,
        })
    }

    /// A connection ready to be used: refreshed first when inside its window.
    /// With [`Need::Valid`], a connection that cannot give a valid credential
    /// (`invalid`, or expired and not refreshable) is an error; with
    /// [`Need::Display`] the record comes back with its state.
    pub async fn fresh_record(
        &self,
        profile: &ProfileName,
        rec: ConnectionRecord,
        need: Need,
    ) -> Result<ConnectionRecord> {
        let strict = need == Need::Valid;
        if rec.meta.auth_type != AuthType::OAuth2 {
            return Ok(rec);
        }
        let now = Utc::now();
        let refresh_failed = |m: &ConnectionMeta| Error::RefreshFailed {
            provider: m.provider.to_string(),
            connection: m.connection.to_string(),
            reason: m
                .last_error
                .clone()
                .unwrap_or_else(|| "the token has expired".into()),
        };
        if rec.meta.status == Status::Invalid {
            return if strict {
                Err(refresh_failed(&rec.meta))
            } else {
                Ok(rec)
            };
        }
        if rec.meta.status != Status::Expired && !needs_refresh(&rec.meta, now) {
            return Ok(rec);
        }
        match self
            .refresh_connection(profile, &rec.meta.provider, &rec.meta.connection)
            .await
        {
            Ok(r) => Ok(r),
            Err(e) if strict => Err(e),
            Err(_) => Ok(self
                .stores
                .get(profile)
                .await?
                .get_connection(&rec.meta.provider, &rec.meta.connection)
                .await?
                .unwrap_or(rec)),
        }
    }

    /// Refreshes one connection (single flight). Returns the record in
    /// effect afterwards; an error when no valid token remains.
    ///
    /// The refresh runs as its own task: a caller that goes away (a proxied
    /// client or a CLI that disconnects) cannot cancel it between the
    /// provider rotating the refresh token and the store keeping the new one.
    pub async fn refresh_connection(
        &self,
        profile: &ProfileName,
        provider: &ProviderName,
        connection: &ConnectionName,
    ) -> Result<ConnectionRecord> {
        self.refresh_spawned(profile, provider, connection, None)
            .await
    }

    /// Refreshes a connection whose access token a server refused (`401`),
    /// named by its [`crate::secret::fingerprint`]: when that is still the
    /// stored token it is refreshed whatever its expiry says; when another
    /// caller has replaced it already, the stored one is the answer (one
    /// flight for every caller that met the same refusal).
    pub async fn refresh_rejected(
        &self,
        profile: &ProfileName,
        provider: &ProviderName,
        connection: &ConnectionName,
        rejected: &str,
    ) -> Result<ConnectionRecord> {
        self.refresh_spawned(profile, provider, connection, Some(rejected.to_string()))
            .await
    }

    async fn refresh_spawned(
        &self,
        profile: &ProfileName,
        provider: &ProviderName,
        connection: &ConnectionName,
        rejected: Option<String>,
    ) -> Result<ConnectionRecord> {
        let this = self.clone();
        let (profile, provider, connection) =
            (profile.clone(), provider.clone(), connection.clone());
        tokio::spawn(async move {
            this.refresh_in_task(&profile, &provider, &connection, rejected.as_deref())
                .await
        })
        .await
        .map_err(|e| Error::Internal(format!("the refresh task failed: {e}")))?
    }

    async fn refresh_in_task(
        &self,
        profile: &ProfileName,
        provider: &ProviderName,
        connection: &ConnectionName,
        rejected: Option<&str>,
    ) -> Result<ConnectionRecord> {
        let key = (profile.clone(), provider.clone(), connection.clone());
        let lock = self.locks.lock_for(&key);
        let _guard = lock.lock().await;
        let store = self.stores.get(profile).await?;
        let missing = || Error::ConnectionNotFound {
            provider: provider.to_string(),
            connection: connection.to_string(),
        };
        // Re-read under the lock: another reader may have refreshed already.
        let rec = store
            .get_connection(provider, connection)
            .await?
            .ok_or_else(missing)?;
        let now = Utc::now();
        let failed = |reason: String| Error::RefreshFailed {
            provider: provider.to_string(),
            connection: connection.to_string(),
            reason,
        };
        if rec.meta.status == Status::Invalid {
            return Err(failed(
                rec.meta
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "invalid".into()),
            ));
        }
        // The token a server refused, if it is still the stored one.
        let refused = rejected.is_some_and(|r| {
            rec.secrets.access_token.as_ref().is_some_and(|t| {
                crate::secret::constant_time_eq(&crate::secret::fingerprint(t.expose()), r)
            })
        });
        // A forced refresh at most every 30 s per connection: a server that
        // refuses even fresh tokens (another audience) cannot turn each of
        // its refusals into a call to the provider.
        let refused = refused
            && rec
                .meta
                .last_refresh_at
                .is_none_or(|at| now - at >= chrono::Duration::seconds(30));
        if rec.meta.status == Status::Connected
            && !refused
            && (!needs_refresh(&rec.meta, now)
                || (self.locks.backing_off(&key) && still_valid(&rec.meta, now)))
        {
            // Fresh enough, or a recent attempt failed and the old token still works.
            return Ok(rec);
        }
        if self.locks.failed_within(&key, READ_RETRY_FLOOR) {
            // The provider failed us a moment ago: answer from what is stored.
            if rec.meta.status == Status::Connected && still_valid(&rec.meta, now) {
                return Ok(rec);
            }
            return Err(failed(
                rec.meta
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the token has expired".into()),
            ));
        }
        let Some(refresh_token) = rec.secrets.refresh_token.clone() else {
            if still_valid(&rec.meta, now) {
                return Ok(rec);
            }
            return Err(failed(
                "the access token expired and no refresh token was issued; log in again".into(),
            ));
        };
        let (def, _) = self.catalogue.get(provider.as_str())?;
        let spec = crate::flows::oauth::spec(&def)?;
        let client = store
            .get_client(provider)
            .await?
            .ok_or_else(|| failed("no client credentials stored; log in again".into()))?;
        let endpoints = Endpoints::from_spec(
            spec,
            rec.meta.base_url.as_deref().or(client.base_url.as_deref()),
        )?;
        let mut extra = Vec::new();
        if let Some(r) = &spec.resource {
            extra.push(("resource", r.clone()));
        }
        let interrupted = rec.meta.refresh_started_at.is_some();
        if interrupted {
            tracing::warn!(
                %provider, %connection,
                "an earlier refresh got no stored answer; retrying with the stored refresh token"
            );
        }
        // Journal first: once the request is out the provider may rotate the
        // refresh token, and a crash before the answer is stored must be
        // visible after the restart.
        let started = now;
        if !store.mark_refresh_started(&rec.meta, started).await? {
            // A login, revoke or remove changed the connection since it was read.
            return store
                .get_connection(provider, connection)
                .await?
                .ok_or_else(missing);
        }
        let result = token_request(
            &self.http,
            &endpoints.token_url,
            &client,
            spec.client_auth,
            Grant::Refresh(&refresh_token),
            &extra,
        )
        .await;
        let old_status = rec.meta.status;
        let event = || {
            AuditEvent::new("refresh").about(
                profile.as_str(),
                provider.as_str(),
                Some(connection.as_str()),
            )
        };
        match result {
            Ok(tokens) => {
                let mut updated = rec.clone();
                updated.secrets.access_token = Some(tokens.access_token.clone());
                // RFC 6749 §6: a new refresh token replaces the old one; without one, keep the old.
                if let Some(rt) = tokens.refresh_token.clone() {
                    updated.secrets.refresh_token = Some(rt);
                }
                if let Some(id) = tokens.id_token.clone() {
                    updated.secrets.id_token = Some(id);
                }
                if let Some(scope) = &tokens.scope {
                    updated.meta.scopes = crate::flows::oauth::split_scopes(scope);
                }
                updated.meta.expires_at = tokens.expires_at(now);
                updated.meta.last_refresh_at = Some(now);
                updated.meta.status = Status::Connected;
                updated.meta.last_error = None;
                updated.meta.refresh_started_at = None;
                updated.meta.updated_at = now;
                // The rotated refresh token and the new access token land in one
                // transaction before anyone is handed the new access token.
                if !store.finish_refresh(&updated, started).await? {
                    tracing::info!(
                        %provider,
                        %connection,
                        "refresh answer dropped: a login, revoke or remove changed the connection during the refresh"
                    );
                    return store
                        .get_connection(provider, connection)
                        .await?
                        .ok_or_else(missing);
                }
                self.locks.succeeded(&key);
                self.audit.record(event());
                if notice(old_status, Status::Connected).is_some() {
                    self.notify_transition(&updated.meta, Status::Connected, None);
                }
                self.events.connection_status(
                    store.profile(),
                    provider.as_str(),
                    connection.as_str(),
                    Some(old_status),
                    Some(updated.meta.status),
                );
                Ok(updated)
            }
            Err(e) => {
                self.locks.failed(&key);
                let mut reason = e.reason();
                if interrupted && e.is_rejection() {
                    reason.push_str(
                        "; an earlier refresh got no answer (the daemon stopped or the network failed) \
                         after the provider may have rotated the refresh token; log in again",
                    );
                }
                self.audit.record(
                    AuditEvent {
                        event: "refresh_failed".into(),
                        ..event()
                    }
                    .failed(reason.clone()),
                );
                tracing::warn!(%provider, %connection, "refresh failed: {reason}");
                let new_status = status_after_failure(&e, &rec.meta, now);
                let mut updated = rec.clone();
                updated.meta.status = new_status;
                updated.meta.last_error = Some(reason.clone());
                // Unless the provider refused the token for good, the outcome
                // may be unknown (no answer, a 5xx, garbage): the journal entry
                // stays, so the next attempt is made as soon as the backoff allows.
                updated.meta.refresh_started_at = if e.is_rejection() {
                    None
                } else {
                    Some(started)
                };
                updated.meta.updated_at = now;
                if !store.finish_refresh(&updated, started).await? {
                    return Err(failed(
                        "the connection was replaced or removed during the refresh".into(),
                    ));
                }
                if notice(old_status, new_status).is_some() {
                    self.notify_transition(&updated.meta, new_status, Some(&reason));
                }
                self.events.connection_status(
                    store.profile(),
                    provider.as_str(),
                    connection.as_str(),
                    Some(old_status),
                    Some(new_status),
                );
                if new_status == Status::Connected {
                    // A transient failure while the old token is valid: keep serving it.
                    Ok(updated)
                } else {
                    Err(failed(reason))
                }
            }
        }
    }

    fn notify_transition(&self, meta: &ConnectionMeta, to: Status, reason: Option<&str>) {
        let display = self
            .catalogue
            .get(meta.provider.as_str())
            .map(|(d, _)| d.display_name.clone())
            .unwrap_or_else(|_| meta.provider.to_string());
        let (kind, title, body) = match to {
            Status::Connected => (
                NotificationKind::Recovered,
                format!("{display} ({}) is connected again", meta.connection),
                "The token was refreshed.".to_string(),
            ),
            Status::Invalid => (
                NotificationKind::NeedsAttention,
                format!("{display} ({}) needs a new login", meta.connection),
                format!(
                    "The provider rejected the refresh ({}). Run `authsome login {} --force`.",
                    reason.unwrap_or("rejected"),
                    meta.provider
                ),
            ),
            _ => (
                NotificationKind::NeedsAttention,
                format!("{display} ({}) could not be refreshed", meta.connection),
                format!(
                    "{}. Authsome keeps retrying; check the network.",
                    reason.unwrap_or("refresh failed")
                ),
            ),
        };
        self.notifier.notify(&Notification {
            kind,
            provider: meta.provider.to_string(),
            connection: meta.connection.to_string(),
            title,
            body,
        });
    }

    /// One pass of the scheduler: refresh every OAuth connection that is due,
    /// or expired and out of backoff, in every profile of the home.
    pub async fn refresh_due(&self) {
        let Ok(profiles) = &self.home.list_profiles() else {
            return;
        };
        let now = Utc::now();
        for profile in profiles {
            if !self.home.store_path(profile).exists() {
                continue;
            }
            let Ok(store) = self.stores.get(profile).await else {
                continue;
            };
            let Ok(conns) = store.list_connections().await else {
                continue;
            };
            for m in conns {
                if m.auth_type != AuthType::OAuth2 || m.status == Status::Invalid {
                    continue;
                }
                let key = (profile.clone(), m.provider.clone(), m.connection.clone());
                if !(needs_refresh(&m, now) || m.status == Status::Expired)
                    || self.locks.backing_off(&key)
                    || self.locks.busy(&key)
                {
                    continue;
                }
                let this = self.clone();
                let profile = profile.clone();
                tokio::spawn(async move {
                    let _ = this
                        .refresh_connection(&profile, &m.provider, &m.connection)
                        .await;
                });
            }
        }
    }

    /// Runs the scheduler until the task is aborted.
    pub async fn run_scheduler(self) {
        let mut tick = tokio::time::interval(SCHEDULER_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh_due().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        (
            ProfileName::default_name(),
            ProviderName::parse("github").unwrap(),
            ConnectionName::default_name(),
        )
    }

    #[test]
    fn failures_back_off_doubling_up_to_fifteen_minutes_and_a_success_clears_it() {
        let r = RefreshLocks::default();
        assert!(!r.backing_off(&key()) && !r.failed_within(&key(), READ_RETRY_FLOOR));
        let delay = |r: &RefreshLocks| r.backoff.lock().unwrap()[&key()].1;
        r.failed(&key());
        assert_eq!(delay(&r), FIRST_BACKOFF);
        assert!(r.backing_off(&key()) && r.failed_within(&key(), READ_RETRY_FLOOR));
        for _ in 0..20 {
            r.failed(&key());
        }
        assert_eq!(delay(&r), MAX_BACKOFF);
        r.succeeded(&key());
        assert!(!r.backing_off(&key()));
        r.failed(&key());
        assert_eq!(
            delay(&r),
            FIRST_BACKOFF,
            "a success starts the backoff over"
        );
    }

    #[test]
    fn a_rejection_is_invalid_and_anything_else_waits_while_the_token_is_valid() {
        let now = Utc::now();
        let valid = meta(3600, 3500);
        let past = meta(3600, 3700);
        let oauth = |code: &str| TokenError::Oauth {
            code: code.into(),
            description: None,
            status: 400,
        };
        for e in [oauth("invalid_grant"), oauth("invalid_client")] {
            assert_eq!(status_after_failure(&e, &valid, now), Status::Invalid);
            assert_eq!(status_after_failure(&e, &past, now), Status::Invalid);
        }
        for e in [
            TokenError::Transient("timed out".into()),
            TokenError::Malformed("not JSON".into()),
            oauth("temporarily_unavailable"),
        ] {
            assert_eq!(status_after_failure(&e, &valid, now), Status::Connected);
            assert_eq!(status_after_failure(&e, &past, now), Status::Expired);
        }
    }

    #[test]
    fn each_change_of_status_is_noticed_once() {
        use NotificationKind::{NeedsAttention, Recovered};
        // An outage that outlives the token, then recovery; then a rejection.
        let path = [
            Status::Connected,
            Status::Connected,
            Status::Expired,
            Status::Expired,
            Status::Connected,
            Status::Invalid,
            Status::Invalid,
        ];
        let notices: Vec<_> = path.windows(2).filter_map(|w| notice(w[0], w[1])).collect();
        assert_eq!(notices, vec![NeedsAttention, Recovered, NeedsAttention]);
    }

    #[test]
    fn idle_refresh_locks_are_dropped_and_held_ones_kept() {
        let r = RefreshLocks::default();
        let key = |i: usize| {
            (
                ProfileName::default_name(),
                ProviderName::parse("github").unwrap(),
                ConnectionName::parse(&format!("c{i}")).unwrap(),
            )
        };
        let held = r.lock_for(&key(0));
        for i in 1..1000 {
            drop(r.lock_for(&key(i)));
        }
        let len = r.locks.lock().unwrap().len();
        assert!(len <= MAX_IDLE_LOCKS, "{len} locks kept");
        assert!(
            Arc::ptr_eq(&held, &r.lock_for(&key(0))),
            "a held lock is never replaced: single flight holds"
        );
    }
    use crate::vault::store::{new_record, ConnectionSecrets};

    fn meta(lifetime_s: i64, elapsed_s: i64) -> ConnectionMeta {
        let mut r = new_record(
            ProviderName::parse("p").unwrap(),
            ConnectionName::default_name(),
            AuthType::OAuth2,
            ConnectionSecrets::default(),
        );
        let issued = Utc::now() - chrono::Duration::seconds(elapsed_s);
        r.meta.obtained_at = Some(issued);
        r.meta.expires_at = Some(issued + chrono::Duration::seconds(lifetime_s));
        r.meta
    }

    #[test]
    fn long_lived_tokens_refresh_300_seconds_before_expiry() {
        assert_eq!(window(&meta(3600, 0)), DEFAULT_WINDOW);
        assert!(!due(&meta(3600, 3000), Utc::now()));
        assert!(due(&meta(3600, 3310), Utc::now()));
    }

    #[test]
    fn short_lived_tokens_refresh_at_half_their_lifetime() {
        assert_eq!(window(&meta(120, 0)), Duration::from_secs(60));
        assert!(!due(&meta(120, 30), Utc::now()));
        assert!(due(&meta(120, 61), Utc::now()));
    }
}
