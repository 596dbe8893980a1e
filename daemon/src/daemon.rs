//! [`Daemon`]: the handle that owns the vault, the catalogue, login sessions,
//! the audit log, the prompter and the notifier. The API, the CLI's headless
//! mode and the tray app all start it the same way: [`Daemon::start`], then
//! [`Daemon::serve`] with a listener and a shutdown future.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

use crate::audit::{Audit, AuditEvent};
use crate::error::{Error, Result};
use crate::flows::{api_key, LoginOptions, LoginRegistry, LoginSession, LoginState, NewLogin};
use crate::home::{write_private_file, Home};
use crate::instance::DaemonInfo;
use crate::names::{ConnectionName, ProfileName, ProviderName};
use crate::notify::Notifier;
use crate::prompt::{BridgePrompter, PromptOutcome, PromptRequest, Prompter};
use crate::providers::{AuthType, Catalogue, Flow, ProviderDef, ProviderOrigin};
use crate::refresh::Refresher;
use crate::secret::{random_token, Secret};
use crate::vault::keys::{InitReport, KeySource, MasterKeyLoader};
use crate::vault::store::{masked_fields, new_record, ConnectionRecord, ConnectionSecrets};
use crate::vault::{MasterKey, Status, Store};
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
    key: Arc<MasterKey>,
    key_source: KeySource,
    catalogue: Catalogue,
    stores: tokio::sync::Mutex<HashMap<ProfileName, Store>>,
    audit: Audit,
    logins: LoginRegistry,
    prompter: Arc<dyn Prompter>,
    notifier: Arc<dyn Notifier>,
    shutdown: tokio::sync::watch::Sender<bool>,
    started_at: DateTime<Utc>,
    http: reqwest::Client,
    refresher: Refresher,
    events: crate::events::Events,
    proxy: crate::proxy::ProxyState,
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

fn bind(port: u16) -> Result<std::net::TcpListener> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::AddrInUse {
                addr: addr.to_string(),
            }
        } else {
            Error::io(format!("cannot listen on {addr}"), e)
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("listener", e))?;
    Ok(listener)
}

/// The OAuth redirect URI of a daemon on `port`.
fn callback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}{}", crate::OAUTH_CALLBACK_PATH)
}

impl Daemon {
    /// Takes the home's lock, loads (or creates) the master key, opens the
    /// default profile's store, binds 127.0.0.1 and writes `daemon.json` and
    /// `daemon.token`. The returned listener is ready for [`Daemon::serve`].
    pub async fn start(opts: DaemonOptions) -> Result<(Daemon, TcpListener, StartReport)> {
        let home = opts.home.clone();
        home.ensure_dirs()?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(home.lock_path())
            .map_err(|e| Error::io(home.lock_path().display().to_string(), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::DaemonRunning {
                    home: home.root().display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("daemon.lock", e)),
        }
        crate::flows::launch::clear_stale(&home.launch_dir());
        let port = match opts.port {
            Some(p) => p,
            None => home.port()?,
        };
        let listener = bind(port)?;
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
        let proxy_listener = bind(config.proxy.port.unwrap_or(0))?;
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
        let audit = Audit::open(&home.audit_log())?;
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let events = crate::events::Events::default();
        let logins = LoginRegistry::default();
        {
            let (events, callback) = (events.clone(), callback_url(port));
            logins.on_change(Arc::new(move |session| {
                events.send(crate::events::Event::Login {
                    login: Box::new(session.view(&callback, None)),
                })
            }));
        }
        let daemon = Daemon {
            inner: Arc::new(Inner {
                home: home.clone(),
                port,
                token: Secret::new(random_token(32)),
                key,
                key_source,
                catalogue,
                stores: tokio::sync::Mutex::new(HashMap::from([(default_profile, default_store)])),
                audit,
                logins,
                prompter: opts.prompter.unwrap_or_else(|| Arc::new(BridgePrompter)),
                notifier: opts
                    .notifier
                    .unwrap_or_else(crate::notify::default_notifier),
                shutdown,
                started_at: Utc::now(),
                http: crate::flows::oauth::http_client(),
                refresher: Refresher::default(),
                events,
                proxy,
                proxy_listener: std::sync::Mutex::new(Some(proxy_listener)),
                _lock: lock,
            }),
        };
        write_private_file(&home.token_path(), daemon.inner.token.expose().as_bytes())?;
        let info = DaemonInfo {
            pid: std::process::id(),
            port,
            version: crate::VERSION.to_string(),
        };
        write_private_file(
            &home.daemon_json(),
            serde_json::to_string(&info)
                .map_err(|e| Error::Internal(e.to_string()))?
                .as_bytes(),
        )?;
        daemon
            .audit(AuditEvent::new("daemon_start").detail(format!("pid {} port {port}", info.pid)));
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
                    d.inner.logins.sweep();
                }
            })
        };
        let scheduler = tokio::spawn(self.clone().run_scheduler());
        let proxy_listener = self
            .inner
            .proxy_listener
            .lock()
            .expect("proxy listener")
            .take();
        let proxy = match proxy_listener.map(TcpListener::from_std) {
            Some(Ok(l)) => Some(tokio::spawn(crate::proxy::serve(self.clone(), l))),
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
        let home = &self.inner.home;
        let ours = std::fs::read(home.daemon_json())
            .ok()
            .and_then(|b| serde_json::from_slice::<DaemonInfo>(&b).ok())
            .is_some_and(|i| i.pid == std::process::id());
        if ours {
            let _ = std::fs::remove_file(home.daemon_json());
            let _ = std::fs::remove_file(home.token_path());
        }
        for store in self.inner.stores.lock().await.values() {
            store.close().await;
        }
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
    /// The notifier in use.
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.inner.notifier
    }
    /// The login sessions.
    pub fn logins(&self) -> &LoginRegistry {
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
    pub(crate) fn proxy_state(&self) -> &crate::proxy::ProxyState {
        &self.inner.proxy
    }

    /// Records an audit event.
    pub fn audit(&self, event: AuditEvent) {
        self.inner.audit.record(event);
    }
    /// The event hub.
    pub fn events(&self) -> &crate::events::Events {
        &self.inner.events
    }
    /// Tells subscribers a connection's status changed (`None`: no connection).
    pub fn connection_changed(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &str,
        old: Option<Status>,
        new: Option<Status>,
    ) {
        if old != new {
            self.events().send(crate::events::Event::ConnectionStatus {
                profile: profile.to_string(),
                provider: provider.to_string(),
                connection: connection.to_string(),
                old,
                new,
            });
        }
    }
    /// Base URL of the API (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }
    /// The OAuth redirect URI.
    pub fn callback_url(&self) -> String {
        callback_url(self.inner.port)
    }

    /// The store of a profile. The default profile is created on first use;
    /// any other must exist (`authsome profile create`).
    pub async fn store(&self, profile: &ProfileName) -> Result<Store> {
        let mut stores = self.inner.stores.lock().await;
        if let Some(s) = stores.get(profile) {
            return Ok(s.clone());
        }
        let path = self.inner.home.store_path(profile);
        let implicit = *profile == ProfileName::default_name()
            || *profile == self.inner.home.default_profile()?;
        if !path.exists() && !implicit {
            return Err(Error::ProfileNotFound {
                name: profile.to_string(),
            });
        }
        let store = Store::open(&path, self.inner.key.clone(), profile.clone()).await?;
        stores.insert(profile.clone(), store.clone());
        Ok(store)
    }

    /// Creates a profile and its store.
    pub async fn create_profile(&self, profile: &ProfileName) -> Result<()> {
        let path = self.inner.home.store_path(profile);
        if path.exists() {
            return Err(Error::ProfileExists {
                name: profile.to_string(),
            });
        }
        let store = Store::open(&path, self.inner.key.clone(), profile.clone()).await?;
        self.inner
            .stores
            .lock()
            .await
            .insert(profile.clone(), store);
        Ok(())
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
            proxy_port: self.inner.proxy.port(),
            ca_fingerprint: self.inner.proxy.ca.fingerprint(),
            runs: self.inner.proxy.runs.len(),
            core_dumps_disabled: crate::process::core_dumps_disabled(),
        })
    }

    fn provider(&self, name: &str) -> Result<(Arc<ProviderDef>, ProviderOrigin)> {
        self.inner.catalogue.get(name)
    }

    /// Every provider with its connections and state; those with a state first.
    pub async fn list(&self, profile: &ProfileName) -> Result<ListResponse> {
        let store = self.store(profile).await?;
        let mut by_provider: BTreeMap<String, Vec<ConnectionSummary>> = BTreeMap::new();
        for m in store.list_connections().await? {
            by_provider
                .entry(m.provider.to_string())
                .or_default()
                .push(ConnectionSummary {
                    connection: m.connection.to_string(),
                    status: m.status,
                    expires_at: m.expires_at,
                });
        }
        let configured = store.configured_providers().await?;
        let mut providers: Vec<ProviderListing> = self
            .inner
            .catalogue
            .list()
            .into_iter()
            .map(|(def, origin)| {
                let connections = by_provider.remove(&def.name).unwrap_or_default();
                let status = overall_status(
                    &connections,
                    configured.iter().any(|p| p.as_str() == def.name),
                );
                ProviderListing {
                    name: def.name.clone(),
                    display_name: def.display_name.clone(),
                    auth_type: def.auth_type,
                    flow: def.flow,
                    origin,
                    status,
                    connections,
                }
            })
            .collect();
        // Connections whose provider definition is gone still show up.
        for (name, connections) in by_provider {
            let status = overall_status(&connections, false);
            providers.push(ProviderListing {
                display_name: name.clone(),
                name,
                auth_type: AuthType::ApiKey,
                flow: Flow::ApiKey,
                origin: ProviderOrigin::Custom,
                status,
                connections,
            });
        }
        providers.sort_by(|a, b| {
            (a.status == Status::Available)
                .cmp(&(b.status == Status::Available))
                .then(a.name.cmp(&b.name))
        });
        Ok(ListResponse {
            profile: profile.to_string(),
            providers,
        })
    }

    fn view(
        &self,
        profile: &ProfileName,
        def: Option<&ProviderDef>,
        rec: &ConnectionRecord,
        show: bool,
    ) -> ConnectionView {
        let m = &rec.meta;
        ConnectionView {
            provider: m.provider.to_string(),
            display_name: def
                .map(|d| d.display_name.clone())
                .unwrap_or_else(|| m.provider.to_string()),
            connection: m.connection.to_string(),
            profile: profile.to_string(),
            status: m.status,
            auth_type: m.auth_type,
            scopes: m.scopes.clone(),
            base_url: m.base_url.clone(),
            account: m.account.clone(),
            expires_at: m.expires_at,
            obtained_at: m.obtained_at,
            last_refresh_at: m.last_refresh_at,
            last_error: m.last_error.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            secrets: masked_fields(&rec.secrets, show),
        }
    }

    async fn record(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
    ) -> Result<ConnectionRecord> {
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        match store.get_connection(&pname, connection).await? {
            Some(rec) => Ok(rec),
            None => {
                // Say "provider not found" for names nobody knows, "connection not found" otherwise.
                self.provider(provider)?;
                Err(Error::ConnectionNotFound {
                    provider: provider.into(),
                    connection: connection.to_string(),
                })
            }
        }
    }

    /// One connection; secrets shown only with `show_secret` (audited).
    pub async fn get(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
        show_secret: bool,
    ) -> Result<ConnectionView> {
        let rec = self.record(profile, provider, connection).await?;
        let rec = self.fresh_record(profile, rec, show_secret).await?;
        let def = self.provider(provider).ok().map(|(d, _)| d);
        if show_secret {
            self.audit(
                AuditEvent::new("get")
                    .about(profile.as_str(), provider, Some(connection.as_str()))
                    .detail("secret shown"),
            );
        }
        Ok(self.view(profile, def.as_deref(), &rec, show_secret))
    }

    /// Environment variables for one provider's connection, or for every
    /// connected provider's default connection with `all`.
    pub async fn export(
        &self,
        profile: &ProfileName,
        provider: Option<&str>,
        connection: &ConnectionName,
    ) -> Result<ExportResponse> {
        let store = self.store(profile).await?;
        let targets: Vec<(String, ConnectionName)> = match provider {
            Some(p) => vec![(p.to_string(), connection.clone())],
            None => store
                .list_connections()
                .await?
                .into_iter()
                .filter(|m| m.connection == *connection && m.status == Status::Connected)
                .map(|m| (m.provider.to_string(), m.connection))
                .collect(),
        };
        let mut vars = Vec::new();
        for (p, c) in targets {
            let rec = self.record(profile, &p, &c).await?;
            let rec = self.fresh_record(profile, rec, true).await?;
            let Ok((def, _)) = self.provider(&p) else {
                continue;
            };
            for (env, field) in &def.export {
                if let Some(value) = rec.secrets.get(field) {
                    vars.push(ExportVar {
                        name: env.clone(),
                        value: value.expose().to_string(),
                        provider: p.clone(),
                        connection: c.to_string(),
                    });
                }
            }
            self.audit(AuditEvent::new("export").about(profile.as_str(), &p, Some(c.as_str())));
        }
        if provider.is_some() && vars.is_empty() {
            let p = provider.unwrap_or_default();
            return Err(Error::CredentialMissing {
                provider: p.into(),
                connection: connection.to_string(),
            });
        }
        Ok(ExportResponse { vars })
    }

    /// Starts a login. Returns the session and, when the input is to come
    /// through a prompter, where it was presented.
    pub async fn begin_login(
        &self,
        profile: &ProfileName,
        req: LoginRequest,
    ) -> Result<LoginResponse> {
        let (def, _) = self.provider(req.provider.as_str())?;
        let connection = req
            .connection
            .clone()
            .unwrap_or_else(ConnectionName::default_name);
        let flow = req.flow.unwrap_or(def.flow);
        if flow.auth_type() != def.auth_type {
            return Err(Error::FlowUnavailable {
                provider: def.name.clone(),
                flow: flow.as_str().into(),
                reason: format!("{} uses {}", def.display_name, def.auth_type.as_str()),
            });
        }
        let store = self.store(profile).await?;
        if !req.force
            && store
                .get_connection(&req.provider, &connection)
                .await?
                .is_some()
        {
            return Err(Error::AlreadyConnected {
                provider: def.name.clone(),
                connection: connection.to_string(),
            });
        }
        let options = LoginOptions {
            scopes: req.scopes.clone().filter(|s| !s.is_empty()),
            base_url: req.base_url.clone(),
            client_id: req.client_id.clone(),
        };
        if let Some(scopes) = &options.scopes {
            if scopes.iter().any(|s| {
                s.is_empty()
                    || s.len() > 200
                    || s.chars().any(|c| c.is_whitespace() || c.is_control())
            }) {
                return Err(Error::InvalidInput(
                    "scopes must be non-empty and contain no spaces".into(),
                ));
            }
        }
        let fields = match flow {
            Flow::ApiKey => api_key::fields(&def),
            Flow::DcrPkce => Vec::new(),
            Flow::Pkce | Flow::DeviceCode => {
                let pname = ProviderName::parse(&def.name)?;
                match (&options.client_id, store.get_client(&pname).await?) {
                    (Some(_), _) => crate::flows::login::client_fields(&def, true),
                    (None, Some(_)) => Vec::new(),
                    (None, None) => crate::flows::login::client_fields(&def, false),
                }
            }
        };
        let with_bridge = req.mode == InputMode::Prompter && !fields.is_empty();
        let session = self.inner.logins.create(NewLogin {
            profile: profile.clone(),
            provider: def.clone(),
            connection: connection.clone(),
            force: req.force,
            flow,
            fields,
            with_bridge,
            options,
        });
        if flow != Flow::ApiKey && (session.fields.is_empty() || !req.inputs.is_empty()) {
            if let Err(e) = self.begin_oauth(&session, &req.inputs).await {
                self.inner.logins.remove(&session.id);
                return Err(e);
            }
            return Ok(self.login_response(&session, None));
        }
        if !req.inputs.is_empty() {
            self.submit_login_input(&session.id, &req.inputs).await?;
            return Ok(self.login_response(&session, None));
        }
        let mut open_url = None;
        if let Some(bridge) = &session.bridge {
            let page = format!("{}/bridge/{}", self.base_url(), bridge.id);
            let request = PromptRequest {
                login_id: session.id.clone(),
                provider: def.name.clone(),
                display_name: def.display_name.clone(),
                connection: connection.to_string(),
                fields: session.fields.clone(),
                docs_url: def.docs_url.clone(),
                callback_url: (def.auth_type == AuthType::OAuth2).then(|| self.callback_url()),
                bridge_url: page.clone(),
            };
            if let PromptOutcome::OpenUrl(url) = self.inner.prompter.present(&request) {
                open_url = Some(self.launch(&session, url, true)?);
            }
        }
        Ok(self.login_response(&session, open_url))
    }

    fn login_response(&self, session: &LoginSession, open_url: Option<String>) -> LoginResponse {
        session.view(&self.callback_url(), open_url)
    }

    /// The state of a login, waiting up to `wait` for it to differ from `after`.
    pub async fn login_status(
        &self,
        id: &str,
        after: &str,
        wait: Duration,
    ) -> Result<LoginResponse> {
        let session = self.inner.logins.get(id)?;
        session.wait(after, wait).await;
        Ok(self.login_response(&session, None))
    }

    /// Cancels a login that is still waiting.
    pub fn cancel_login(&self, id: &str) -> Result<()> {
        let session = self.inner.logins.get(id)?;
        session.finish(LoginState::Failed {
            error: "login_cancelled".into(),
            message: Error::LoginCancelled.to_string(),
        });
        self.inner.logins.remove(id);
        Ok(())
    }

    /// Completes a login with the person's input. A value that fails its
    /// check leaves the session waiting, so the person can try again.
    pub async fn submit_login_input(
        &self,
        id: &str,
        values: &BTreeMap<String, Secret>,
    ) -> Result<LoginState> {
        let session = self.inner.logins.get(id)?;
        let _guard = session.completing.lock().await;
        if session.state() != LoginState::NeedsInput {
            return Err(Error::LoginNotFound);
        }
        if session.flow != Flow::ApiKey {
            if let Err(e) = self.begin_oauth(&session, values).await {
                if !matches!(e, Error::InvalidInput(_)) {
                    session.finish(LoginState::failed(&e));
                }
                return Err(e);
            }
            return Ok(session.state());
        }
        let def = session.provider.clone();
        let audit = || {
            AuditEvent::new("login").about(
                session.profile.as_str(),
                &def.name,
                Some(session.connection.as_str()),
            )
        };
        let key = match api_key::check_key(&def, values) {
            Ok(k) => k,
            Err(e) => {
                self.audit(audit().failed(e.to_string()));
                return Err(e);
            }
        };
        let pname = ProviderName::parse(&def.name)?;
        let record = new_record(
            pname,
            session.connection.clone(),
            AuthType::ApiKey,
            ConnectionSecrets {
                api_key: Some(key),
                ..Default::default()
            },
        );
        let store = self.store(&session.profile).await?;
        let old = store
            .get_connection(&record.meta.provider, &record.meta.connection)
            .await?
            .map(|r| r.meta.status);
        if let Err(e) = store.put_connection(&record, session.force).await {
            self.audit(audit().failed(e.to_string()));
            session.finish(LoginState::Failed {
                error: e.code().into(),
                message: e.to_string(),
            });
            return Err(e);
        }
        self.audit(audit().detail(format!("flow {}", session.flow.as_str())));
        self.connection_changed(
            &session.profile,
            &def.name,
            session.connection.as_str(),
            old,
            Some(record.meta.status),
        );
        session.finish(LoginState::Completed);
        Ok(session.state())
    }

    /// Deletes a connection's credentials and the provider's client
    /// credentials, so the next login collects them again.
    pub async fn revoke(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
    ) -> Result<RevokeResponse> {
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        let mut warnings = Vec::new();
        if let (Ok((def, _)), Some(rec)) = (
            self.provider(provider),
            store.get_connection(&pname, connection).await?,
        ) {
            let client = store.get_client(&pname).await?;
            // RFC 7009 §2: the refresh token first, which also ends its access tokens at most servers.
            let mut tokens = Vec::new();
            if let Some(t) = &rec.secrets.refresh_token {
                tokens.push(("refresh_token", t));
            }
            if let Some(t) = &rec.secrets.access_token {
                tokens.push(("access_token", t));
            }
            let base = rec
                .meta
                .base_url
                .clone()
                .or_else(|| client.as_ref().and_then(|c| c.base_url.clone()));
            warnings = self
                .revoke_at_provider(&def, client.as_ref(), base.as_deref(), &tokens)
                .await;
        }
        let old = store
            .get_connection(&pname, connection)
            .await?
            .map(|r| r.meta.status);
        let (removed_connection, removed_client) = store.revoke_local(&pname, connection).await?;
        if removed_connection {
            self.connection_changed(profile, provider, connection.as_str(), old, None);
        }
        if !removed_connection && !removed_client {
            self.provider(provider)?;
            return Err(Error::ConnectionNotFound {
                provider: provider.into(),
                connection: connection.to_string(),
            });
        }
        self.audit(AuditEvent::new("revoke").about(
            profile.as_str(),
            provider,
            Some(connection.as_str()),
        ));
        Ok(RevokeResponse {
            provider: provider.into(),
            connection: connection.to_string(),
            removed_connection,
            removed_client,
            warnings,
        })
    }

    /// Deletes all of a provider's state in the profile; the definition stays.
    pub async fn remove(&self, profile: &ProfileName, provider: &str) -> Result<RemoveResponse> {
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        let before: Vec<_> = store
            .list_connections()
            .await?
            .into_iter()
            .filter(|m| m.provider == pname)
            .collect();
        let (connections_removed, client_removed) = store.remove_provider_state(&pname).await?;
        for m in before {
            self.connection_changed(
                profile,
                provider,
                m.connection.as_str(),
                Some(m.status),
                None,
            );
        }
        if connections_removed == 0 && !client_removed {
            self.provider(provider)?;
        }
        self.audit(
            AuditEvent::new("remove")
                .about(profile.as_str(), provider, None)
                .detail(format!("{connections_removed} connection(s)")),
        );
        Ok(RemoveResponse {
            provider: provider.into(),
            connections_removed,
            client_removed,
        })
    }

    /// Validates and stores a custom provider definition.
    pub async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse> {
        let size = serde_json::to_vec(&req.definition)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > crate::providers::MAX_DEFINITION_BYTES {
            return Err(Error::InvalidProvider(format!(
                "definition is {size} bytes; the limit is {}",
                crate::providers::MAX_DEFINITION_BYTES
            )));
        }
        let def: ProviderDef = serde_json::from_value(req.definition)
            .map_err(|e| Error::InvalidProvider(format!("not a valid definition: {e}")))?;
        let name = def.name.clone();
        let replaced = self.provider(&name).is_ok();
        let result = self.inner.catalogue.register(def, req.force);
        let event = AuditEvent::new("register").about("-", &name, None);
        match result {
            Ok(warnings) => {
                self.audit(event.detail(if replaced { "replaced" } else { "added" }));
                self.events()
                    .send(crate::events::Event::ProviderRegistered { name: name.clone() });
                Ok(RegisterResponse {
                    name,
                    warnings,
                    replaced,
                })
            }
            Err(e) => {
                self.audit(event.failed(e.to_string()));
                Err(e)
            }
        }
    }

    /// A provider's definition and its connections in a profile.
    pub async fn inspect(&self, profile: &ProfileName, provider: &str) -> Result<InspectResponse> {
        let (def, origin) = self.provider(provider)?;
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        let mut connections = Vec::new();
        for m in store
            .list_connections()
            .await?
            .into_iter()
            .filter(|m| m.provider == pname)
        {
            if let Some(rec) = store.get_connection(&pname, &m.connection).await? {
                connections.push(self.view(profile, Some(&def), &rec, false));
            }
        }
        Ok(InspectResponse {
            definition: def.as_ref().clone(),
            origin,
            client_configured: store.get_client(&pname).await?.is_some(),
            callback_url: (def.auth_type == AuthType::OAuth2).then(|| self.callback_url()),
            connections,
        })
    }
}

fn overall_status(connections: &[ConnectionSummary], configured: bool) -> Status {
    let rank = |s: Status| match s {
        Status::Connected => 4,
        Status::Expired => 3,
        Status::Invalid => 2,
        Status::Configured => 1,
        Status::Available => 0,
    };
    connections
        .iter()
        .map(|c| c.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(if configured {
            Status::Configured
        } else {
            Status::Available
        })
}
