//! [`Daemon`]: builds the parts (stores, catalogue, login sessions, refresh,
//! proxy, audit log, events, prompter, notifier), wires them and serves
//! them. What the parts do lives with them: `connections.rs` (list, get,
//! export, revoke, remove), `catalogue.rs` (register, inspect),
//! `flows/start.rs` and `flows/login.rs` (logins), `refresh.rs`,
//! `proxy/` (runs), `instance.rs` (the home's lock, `daemon.json`).
//! The API, the CLI's headless mode and the tray app all start it the same
//! way: [`Daemon::start`], then [`Daemon::serve`] with a listener and a
//! shutdown future.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

use crate::audit::{Audit, AuditEvent};
use crate::error::{Error, Result};
use crate::flows::{Logins, LoginsParts};
use crate::home::Home;
use crate::instance;
use crate::notify::Notifier;
use crate::prompt::{BridgePrompter, Prompter};
use crate::providers::Catalogue;
use crate::proxy::{Runs, RunsParts};
use crate::refresh::{Refresher, RefresherParts};
use crate::secret::{random_token, Secret};
use crate::vault::keys::{InitReport, KeySource, MasterKeyLoader};
use crate::vault::{Store, Stores};
use crate::wire::*;

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The home to serve.
    pub home: Home,
    /// Port; `None` reads `AUTHSOME_PORT`, the config, then 7998. `Some(0)` picks a free port.
    pub port: Option<u16>,
    /// Who asks people for input; the bridge page when `None`.
    pub prompter: Option<Arc<dyn Prompter>>,
    /// Who tells people about connections needing attention; the log when `None`.
    pub notifier: Option<Arc<dyn Notifier>>,
}

impl DaemonOptions {
    /// Options for `home` with every default.
    pub fn new(home: Home) -> Self {
        DaemonOptions {
            home,
            port: None,
            prompter: None,
            notifier: None,
        }
    }
}

/// What start-up decided, for the caller to tell the person.
#[derive(Debug, Clone)]
pub struct StartReport {
    /// The key backend decision (a new home says which backend it took).
    pub init: InitReport,
    /// Where the key in effect came from.
    pub key_source: KeySource,
    /// Custom provider files that were left out.
    pub provider_problems: Vec<String>,
}

struct Inner {
    home: Home,
    port: u16,
    token: Secret,
    key_source: KeySource,
    catalogue: Arc<Catalogue>,
    stores: Arc<Stores>,
    audit: Arc<Audit>,
    logins: Logins,
    shutdown: tokio::sync::watch::Sender<bool>,
    started_at: DateTime<Utc>,
    http: reqwest::Client,
    refresher: Refresher,
    events: crate::events::Events,
    runs: Runs,
    proxy_listener: std::sync::Mutex<Option<std::net::TcpListener>>,
    _lock: std::fs::File,
}

/// A running daemon; cheap to clone.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("home", &self.inner.home)
            .field("port", &self.inner.port)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Takes the home's lock, loads (or creates) the master key, opens the
    /// default profile's store, binds 127.0.0.1 and writes `daemon.json` and
    /// `daemon.token`. The returned listener is ready for [`Daemon::serve`].
    pub async fn start(opts: DaemonOptions) -> Result<(Daemon, TcpListener, StartReport)> {
        let home = opts.home.clone();
        home.ensure_dirs()?;
        let lock = instance::lock(&home)?;
        crate::flows::launch::clear_stale(&home.launch_dir());
        let port = match opts.port {
            Some(p) => p,
            None => home.port()?,
        };
        let listener = instance::bind(port)?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("listener", e))?
            .port();

        let loader = MasterKeyLoader::new(home.clone());
        let (init, key, key_source) = tokio::task::spawn_blocking(move || -> Result<_> {
            let init = loader.init(None)?;
            let (key, source) = loader.load()?;
            Ok((init, key, source))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let key = Arc::new(key);
        let config = home.load_config()?;
        // Open the default profile first, so a wrong key fails start-up with
        // the store's clear error, not the first request.
        let default_profile = home.default_profile()?;
        let default_store = Store::open(
            &home.store_path(&default_profile),
            key.clone(),
            default_profile.clone(),
        )
        .await?;
        let proxy_listener = instance::bind(config.proxy.port.unwrap_or(0))?;
        let proxy_port = proxy_listener
            .local_addr()
            .map_err(|e| Error::io("proxy listener", e))?
            .port();
        let proxy = {
            let (home, key, extra) = (
                home.clone(),
                key.clone(),
                config.proxy.extra_ca_file.clone(),
            );
            tokio::task::spawn_blocking(move || {
                crate::proxy::ProxyState::new(&home, &key, extra.as_deref(), proxy_port)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
        };

        let (catalogue, problems) = Catalogue::load(&home)?;
        let provider_problems: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.file, p.problem))
            .collect();
        for p in &provider_problems {
            tracing::warn!("custom provider left out: {p}");
        }
        let audit = Arc::new(Audit::open(&home.audit_log())?);
        let catalogue = Arc::new(catalogue);
        let stores = Arc::new(Stores::new(home.clone(), key, default_store));
        let http = crate::flows::oauth::http_client();
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let events = crate::events::Events::default();
        let notifier = opts
            .notifier
            .unwrap_or_else(crate::notify::default_notifier);
        let refresher = Refresher::new(RefresherParts {
            home: home.clone(),
            stores: stores.clone(),
            catalogue: catalogue.clone(),
            http: http.clone(),
            audit: audit.clone(),
            events: events.clone(),
            notifier,
        });
        let runs = Runs::new(RunsParts {
            state: proxy,
            stores: stores.clone(),
            catalogue: catalogue.clone(),
            refresher: refresher.clone(),
            audit: audit.clone(),
            events: events.clone(),
            api_port: port,
        });
        let logins = Logins::new(LoginsParts {
            stores: stores.clone(),
            catalogue: catalogue.clone(),
            prompter: opts.prompter.unwrap_or_else(|| Arc::new(BridgePrompter)),
            http: http.clone(),
            audit: audit.clone(),
            events: events.clone(),
            home: home.clone(),
            port,
        });
        let daemon = Daemon {
            inner: Arc::new(Inner {
                home: home.clone(),
                port,
                token: Secret::new(random_token(32)),
                key_source,
                catalogue,
                stores,
                audit,
                logins,
                shutdown,
                started_at: Utc::now(),
                http,
                refresher,
                events,
                runs,
                proxy_listener: std::sync::Mutex::new(Some(proxy_listener)),
                _lock: lock,
            }),
        };
        instance::publish(&home, port, &daemon.inner.token)?;
        daemon.audit(
            AuditEvent::new("daemon_start")
                .detail(format!("pid {} port {port}", std::process::id())),
        );
        tracing::info!(port, home = %home.root().display(), key = key_source.as_str(), "daemon started");
        let listener = TcpListener::from_std(listener).map_err(|e| Error::io("listener", e))?;
        Ok((
            daemon,
            listener,
            StartReport {
                init,
                key_source,
                provider_problems,
            },
        ))
    }

    /// Serves the API until `shutdown` resolves or a client asks the daemon to
    /// stop; then removes `daemon.json` and `daemon.token` and closes the stores.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let mut stop = self.inner.shutdown.subscribe();
        let sweeper = {
            let d = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    d.inner.logins.registry().sweep();
                }
            })
        };
        let scheduler = tokio::spawn(self.inner.refresher.clone().run_scheduler());
        let proxy_listener = self
            .inner
            .proxy_listener
            .lock()
            .expect("proxy listener")
            .take();
        let proxy = match proxy_listener.map(TcpListener::from_std) {
            Some(Ok(l)) => Some(tokio::spawn(crate::proxy::serve(self.runs().clone(), l))),
            Some(Err(e)) => return Err(Error::io("proxy listener", e)),
            None => None,
        };
        let app = crate::api::router(self.clone());
        let stopping = self.inner.shutdown.clone();
        let result = crate::api::serve(listener, app, async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            // Long-lived answers (event streams) end with the daemon.
            let _ = stopping.send(true);
        })
        .await;
        sweeper.abort();
        scheduler.abort();
        if let Some(p) = proxy {
            p.abort();
        }
        self.cleanup().await;
        result.map_err(|e| Error::io("serving the API", e))
    }

    async fn cleanup(&self) {
        instance::withdraw(&self.inner.home);
        self.inner.stores.close_all().await;
        self.audit(AuditEvent::new("daemon_stop").detail(format!("pid {}", std::process::id())));
        tracing::info!("daemon stopped");
    }

    /// Asks the daemon to stop serving (what `POST /v1/shutdown` does).
    pub fn request_shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    /// Resolves once the daemon is stopping.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// The home served.
    pub fn home(&self) -> &Home {
        &self.inner.home
    }
    /// The port served.
    pub fn port(&self) -> u16 {
        self.inner.port
    }
    /// The API token.
    pub fn token(&self) -> &Secret {
        &self.inner.token
    }
    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }
    /// The login sessions.
    pub fn logins(&self) -> &Logins {
        &self.inner.logins
    }
    /// The HTTP client for provider calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }
    /// Refresh locks and backoff.
    pub fn refresher(&self) -> &Refresher {
        &self.inner.refresher
    }
    /// The run proxy.
    pub fn runs(&self) -> &Runs {
        &self.inner.runs
    }

    /// Records an audit event.
    pub fn audit(&self, event: AuditEvent) {
        self.inner.audit.record(event);
    }
    /// The profiles' stores.
    pub fn stores(&self) -> &Arc<Stores> {
        &self.inner.stores
    }
    /// The event hub.
    pub fn events(&self) -> &crate::events::Events {
        &self.inner.events
    }
    /// Base URL of the API (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }
    /// The OAuth redirect URI.
    pub fn callback_url(&self) -> String {
        crate::flows::callback_url(self.inner.port)
    }

    /// Daemon facts for `doctor` and the tray.
    pub async fn status(&self) -> Result<StatusResponse> {
        Ok(StatusResponse {
            version: crate::VERSION.to_string(),
            pid: std::process::id(),
            port: self.inner.port,
            home: self.inner.home.root().display().to_string(),
            key_source: self.inner.key_source,
            key_backend: self.inner.home.load_config()?.vault.key_backend,
            started_at: self.inner.started_at,
            providers: self.inner.catalogue.list().len(),
            profiles: self
                .inner
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
