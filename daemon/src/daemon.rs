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

use chrono::Utc;
use tokio::net::TcpListener;

use crate::audit::{Audit, AuditEvent};
use crate::catalogue::Providers;
use crate::connections::{Connections, ConnectionsParts};
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
use crate::services::Services;
use crate::vault::keys::{InitReport, KeySource, MasterKeyLoader};
use crate::vault::{Store, Stores};

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

/// A running daemon: its [`Services`], the proxy's listener until served,
/// and the home's lock. Cheap to clone; derefs to its services.
#[derive(Clone)]
pub struct Daemon {
    services: Arc<Services>,
    lifecycle: Arc<Lifecycle>,
}

struct Lifecycle {
    proxy_listener: std::sync::Mutex<Option<std::net::TcpListener>>,
    _lock: std::fs::File,
}

impl std::ops::Deref for Daemon {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("services", &self.services)
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

        // A key rotation a crash interrupted ends before the key is loaded.
        crate::vault::rekey::finish(&home, &mut |step| tracing::warn!("key rotation: {step}"))
            .await?;
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
            activity: config.proxy.activity.unwrap_or(true),
            rules_path: home.rules_path(),
            ask_timeout: config
                .proxy
                .ask_timeout
                .map_or(crate::proxy::ASK_TIMEOUT, |s| {
                    std::time::Duration::from_secs(s.clamp(1, 24 * 3600))
                }),
        });
        let in_tray = opts.prompter.is_some();
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
        let connections = Connections::new(ConnectionsParts {
            stores: stores.clone(),
            catalogue: catalogue.clone(),
            refresher: refresher.clone(),
            http: http.clone(),
            audit: audit.clone(),
            events: events.clone(),
            port,
        });
        let providers = Providers::new(catalogue.clone(), audit.clone(), events.clone());
        let daemon = Daemon {
            services: Arc::new(Services {
                home: home.clone(),
                port,
                token: Secret::new(random_token(32)),
                key_source,
                catalogue,
                stores,
                audit,
                logins,
                connections,
                providers,
                shutdown,
                started_at: Utc::now(),
                in_tray,
                http,
                refresher,
                events,
                runs,
            }),
            lifecycle: Arc::new(Lifecycle {
                proxy_listener: std::sync::Mutex::new(Some(proxy_listener)),
                _lock: lock,
            }),
        };
        instance::publish(&home, port, &daemon.token)?;
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
        let mut stop = self.shutdown.subscribe();
        let sweeper = {
            let d = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    d.logins().registry().sweep();
                }
            })
        };
        let scheduler = tokio::spawn(self.refresher.clone().run_scheduler());
        let proxy_listener = self
            .lifecycle
            .proxy_listener
            .lock()
            .expect("proxy listener")
            .take();
        let proxy = match proxy_listener.map(TcpListener::from_std) {
            Some(Ok(l)) => Some(tokio::spawn(crate::proxy::serve(self.runs().clone(), l))),
            Some(Err(e)) => return Err(Error::io("proxy listener", e)),
            None => None,
        };
        let app = crate::api::router(self.services.clone());
        let stopping = self.shutdown.clone();
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

    /// The parts the daemon serves.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    async fn cleanup(&self) {
        instance::withdraw(&self.home);
        self.stores.close_all().await;
        self.audit.flush();
        self.audit(AuditEvent::new("daemon_stop").detail(format!("pid {}", std::process::id())));
        tracing::info!("daemon stopped");
    }
}
