//! [`Services`]: the parts of a running daemon, built and wired by
//! [`crate::daemon::Daemon::start`]. The API serves them; each part owns its
//! behaviour: [`Connections`], [`Providers`], [`Logins`], [`Refresher`],
//! [`Runs`], with the stores, the catalogue, the audit log and the events
//! they share.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::audit::{Audit, AuditEvent};
use crate::catalogue::Providers;
use crate::connections::Connections;
use crate::error::Result;
use crate::events::Events;
use crate::flows::Logins;
use crate::home::Home;
use crate::providers::Catalogue;
use crate::proxy::Runs;
use crate::refresh::Refresher;
use crate::secret::Secret;
use crate::vault::keys::KeySource;
use crate::vault::Stores;
use crate::wire::StatusResponse;

/// Everything a running daemon serves.
pub struct Services {
    pub(crate) home: Home,
    pub(crate) port: u16,
    pub(crate) token: Secret,
    pub(crate) key_source: KeySource,
    pub(crate) catalogue: Arc<Catalogue>,
    pub(crate) stores: Arc<Stores>,
    pub(crate) audit: Arc<Audit>,
    pub(crate) logins: Logins,
    pub(crate) connections: Connections,
    pub(crate) providers: Providers,
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) started_at: DateTime<Utc>,
    /// Hosted by the tray app (it supplied a prompter), not headless.
    pub(crate) in_tray: bool,
    pub(crate) http: reqwest::Client,
    pub(crate) refresher: Refresher,
    pub(crate) events: Events,
    pub(crate) runs: Runs,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("home", &self.home)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Asks the daemon to stop serving (what `POST /v1/shutdown` does).
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Resolves once the daemon is stopping.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// The home served.
    pub fn home(&self) -> &Home {
        &self.home
    }
    /// The port served.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The API token.
    pub fn token(&self) -> &Secret {
        &self.token
    }
    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }
    /// Connections: list, get, export, revoke, remove, inspect, profiles.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }
    /// Providers: register.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }
    /// Logins.
    pub fn logins(&self) -> &Logins {
        &self.logins
    }
    /// The HTTP client for provider calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
    /// Refresh locks and backoff.
    pub fn refresher(&self) -> &Refresher {
        &self.refresher
    }
    /// The run proxy.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Records an audit event.
    pub fn audit(&self, event: AuditEvent) {
        self.audit.record(event);
    }
    /// The profiles' stores.
    pub fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }
    /// The event hub.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }
    /// Base URL of the API (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// The OAuth redirect URI.
    pub fn callback_url(&self) -> String {
        crate::flows::callback_url(self.port)
    }

    /// Daemon facts for `doctor` and the tray.
    pub async fn status(&self) -> Result<StatusResponse> {
        Ok(StatusResponse {
            version: crate::VERSION.to_string(),
            pid: std::process::id(),
            port: self.port,
            home: self.home.root().display().to_string(),
            key_source: self.key_source,
            key_backend: self.home.load_config()?.vault.key_backend,
            started_at: self.started_at,
            tray: self.in_tray,
            providers: self.catalogue.list().len(),
            profiles: self
                .home
                .list_profiles()?
                .iter()
                .map(|p| p.to_string())
                .collect(),
            proxy_port: self.runs().state().port(),
            ca_fingerprint: self.runs().state().ca.fingerprint(),
            runs: self.runs().state().runs.len(),
            core_dumps_disabled: crate::process::core_dumps_disabled(),
        })
    }
}
