//! The credential-injecting proxy behind `authsome run`. It listens on its
//! own loopback port. CONNECT to a host some connected provider's
//! `host_url` names is intercepted (TLS terminated with a leaf certificate
//! from the home's CA, the credential header added, the request sent on
//! over verified TLS); every other CONNECT is tunnelled byte for byte. Plain
//! HTTP gets credentials only when the target is a loopback address.

pub mod ca;
pub mod matcher;
pub mod rules;
pub mod runs;
pub mod session;

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::audit::{Audit, AuditEvent};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::names::{ProfileName, ProviderName};
use crate::providers::Catalogue;
use crate::providers::{AuthType, HostPattern};
use crate::refresh::Refresher;
use crate::vault::Status;
use crate::vault::Stores;
use crate::wire::PendingApproval;
use ca::CertificateAuthority;
use matcher::{Candidate, Decision};
use runs::{Run, RunCandidates, RunTable};

/// The value SDKs see in their API-key variables during a run.
pub const PLACEHOLDER: &str = "authsome-proxy-managed";

/// The header a provider's credential goes in, spelt as the provider
/// spells it: its API-key header, or `Authorization` for OAuth tokens.
pub fn credential_header_name(def: &crate::providers::ProviderDef) -> String {
    match (&def.api_key, def.auth_type) {
        (Some(spec), AuthType::ApiKey) => spec.header_name.clone(),
        _ => "Authorization".to_string(),
    }
}

/// The proxy variables `authsome run` gives its command.
pub const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The CA-bundle variables `authsome run` gives its command, each read by
/// some runtime or tool.
pub const CA_VARS: [&str; 6] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
];

type Body = BoxBody<Bytes, hyper::Error>;
type CredKey = (ProfileName, String, crate::names::ConnectionName);

/// A credential header kept briefly so each proxied request does not read
/// and decrypt the store; stale as soon as the store changes or the token
/// enters its refresh window.
#[derive(Clone)]
struct CachedCred {
    name: HeaderName,
    value: HeaderValue,
    generation: u64,
    valid_until: Instant,
}

/// Longest a credential header is reused without reading the store.
const CRED_CACHE_TTL: Duration = Duration::from_secs(5);
type Client = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// The run proxy as a service: the runs, the credentials they may use and
/// what they did. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runs {
    state: Arc<ProxyState>,
    stores: Arc<Stores>,
    catalogue: Arc<Catalogue>,
    refresher: Refresher,
    audit: Arc<Audit>,
    events: Events,
    api_port: u16,
    activity: bool,
    rules_path: std::path::PathBuf,
    ask_timeout: Duration,
}

/// What [`Runs`] works with.
#[derive(Debug)]
pub struct RunsParts {
    /// The proxy's own state (CA, runs, upstream client).
    pub state: ProxyState,
    /// The stores.
    pub stores: Arc<Stores>,
    /// The providers.
    pub catalogue: Arc<Catalogue>,
    /// Where fresh credentials come from.
    pub refresher: Refresher,
    /// The audit log.
    pub audit: Arc<Audit>,
    /// The event hub.
    pub events: Events,
    /// The daemon's API port (runs may not reach it).
    pub api_port: u16,
    /// Record one audit event per proxied request.
    pub activity: bool,
    /// The standing rules file, read when a run starts.
    pub rules_path: std::path::PathBuf,
    /// How long a held request waits for the person.
    pub ask_timeout: Duration,
}

impl Runs {
    /// The run proxy over `parts`.
    pub fn new(parts: RunsParts) -> Runs {
        Runs {
            state: Arc::new(parts.state),
            stores: parts.stores,
            catalogue: parts.catalogue,
            refresher: parts.refresher,
            audit: parts.audit,
            events: parts.events,
            api_port: parts.api_port,
            activity: parts.activity,
            rules_path: parts.rules_path,
            ask_timeout: parts.ask_timeout,
        }
    }

    /// The proxy's state (CA, runs, port).
    pub fn state(&self) -> &ProxyState {
        &self.state
    }
}

/// The proxy's state, owned by [`Runs`].
pub struct ProxyState {
    /// The CA.
    pub ca: CertificateAuthority,
    creds: std::sync::Mutex<std::collections::HashMap<CredKey, CachedCred>>,
    /// Live runs.
    pub runs: RunTable,
    /// The bundle handed to children: system roots plus the CA.
    pub bundle_path: std::path::PathBuf,
    client: Client,
    port: u16,
}

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyState")
            .field("port", &self.port)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(format!("{}\n", msg.into())))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn proxy_auth_required() -> Response<Body> {
    let mut resp = text(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "Authsome proxy: this proxy only serves commands started with `authsome run`",
    );
    resp.headers_mut().insert(
        "proxy-authenticate",
        HeaderValue::from_static("Basic realm=\"authsome\""),
    );
    resp
}

/// The upstream client: pooled, TCP_NODELAY, TLS verified against the
/// system roots plus an optional extra CA file.
fn upstream_client(extra_ca_file: Option<&std::path::Path>) -> Result<Client> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca_file {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| {
            Error::InvalidInput(format!("proxy.extra_ca_file {}: {e:?}", path.display()))
        })?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                Error::InvalidInput(format!("proxy.extra_ca_file {}: {e:?}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                Error::InvalidInput(format!("proxy.extra_ca_file {}: {e}", path.display()))
            })?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Internal(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    // Without TCP_NODELAY, TLS 1.3 session tickets can stall a fresh tunnel's first response.
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https),
    )
}

impl ProxyState {
    /// Loads the CA, writes the bundle, builds the upstream client.
    pub fn new(
        home: &crate::home::Home,
        key: &crate::vault::MasterKey,
        extra_ca_file: Option<&std::path::Path>,
        port: u16,
    ) -> Result<ProxyState> {
        let ca = CertificateAuthority::load_or_create(home, key)?;
        let bundle_path = home.ca_dir().join("bundle.pem");
        let mut bundle = ca::system_roots_pem();
        if !bundle.ends_with('\n') && !bundle.is_empty() {
            bundle.push('\n');
        }
        bundle.push_str(ca.cert_pem());
        crate::home::write_private_file(&bundle_path, bundle.as_bytes())?;
        Ok(ProxyState {
            ca,
            creds: std::sync::Mutex::default(),
            runs: RunTable::default(),
            bundle_path,
            client: upstream_client(extra_ca_file)?,
            port,
        })
    }

    /// The proxy port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A request's headers must arrive within this long; a keep-alive
/// connection that sends nothing is closed after it too (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections (tunnels included) the proxy serves at once; more wait.
pub const MAX_CONNECTIONS: usize = 1024;

/// Held for as long as a connection or a tunnel born from it lives.
type ConnectionPermit = Arc<tokio::sync::OwnedSemaphorePermit>;

/// An HTTP/1 server builder with the header timeout.
fn http1_server() -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    b
}

/// Accepts proxy connections until the task is aborted.
pub async fn serve(runs: Runs, listener: TcpListener) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let permit: ConnectionPermit = Arc::new(permit);
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("proxy accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let d = runs.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(permit.clone());
                let d = d.clone();
                async move { Ok::<_, Infallible>(handle(d, req).await) }
            });
            if let Err(e) = http1_server()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await
            {
                tracing::debug!("proxy connection ended: {e}");
            }
        });
    }
}

async fn handle(d: Runs, req: Request<Incoming>) -> Response<Body> {
    let auth = req
        .headers()
        .get("proxy-authorization")
        .and_then(|v| v.to_str().ok());
    let Some(run) = d.state.runs.authenticate(auth) else {
        return proxy_auth_required();
    };
    if req.method() == Method::CONNECT {
        connect(d, run, req).await
    } else {
        plain(d, run, req).await
    }
}

fn split_authority(authority: &hyper::http::uri::Authority, default_port: u16) -> (String, u16) {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    (host, authority.port_u16().unwrap_or(default_port))
}

async fn connect(d: Runs, run: Arc<Run>, req: Request<Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "Authsome proxy: CONNECT needs host:port",
        );
    };
    let (host, port) = split_authority(&authority, 443);
    if let Some(refusal) = daemon_target(&d, &host, port).await {
        return refusal;
    }
    let candidates = d.run_candidates(&run).await;
    if matcher::intercepts(&candidates.allowed, &host, port) {
        let config = match d.state.ca.server_config(&host) {
            Ok(c) => c,
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("Authsome proxy: no certificate for {host}: {e}"),
                )
            }
        };
        let permit = req.extensions().get::<ConnectionPermit>().cloned();
        tokio::spawn(async move {
            let _permit = permit;
            let upgraded = match hyper::upgrade::on(req).await {
                Ok(u) => u,
                Err(e) => return tracing::debug!("CONNECT upgrade failed: {e}"),
            };
            let tls = match tokio_rustls::TlsAcceptor::from(config)
                .accept(TokioIo::new(upgraded))
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    return tracing::debug!(%host, "client TLS handshake failed (does it trust the Authsome CA?): {e}")
                }
            };
            let svc = service_fn(move |inner: Request<Incoming>| {
                let (d, run, host) = (d.clone(), run.clone(), host.clone());
                async move {
                    Ok::<_, Infallible>(forward(&d, &run, "https", &host, port, inner, true).await)
                }
            });
            if let Err(e) = http1_server()
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!("intercepted connection ended: {e}");
            }
        });
        return Response::new(empty());
    }
    d.note_not_allowed(&run, &candidates, &host, port);
    if run.policy.only_providers {
        return d.refuse_non_provider(&run, &host, port);
    }
    tracing::debug!(%host, port, "tunnelled without interception");
    let upstream = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("Authsome proxy: cannot connect to {host}:{port}: {e}"),
            )
        }
    };
    // The name was checked before it was resolved again here: check where
    // the connection really went (a rebinding name may now point home).
    if upstream
        .peer_addr()
        .is_ok_and(|a| reaches_daemon(&d, a.ip(), a.port()))
    {
        return daemon_ports_refused();
    }
    let _ = upstream.set_nodelay(true);
    let permit = req.extensions().get::<ConnectionPermit>().cloned();
    tokio::spawn(async move {
        let _permit = permit;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => tracing::debug!("CONNECT upgrade failed: {e}"),
        }
    });
    Response::new(empty())
}

/// A 403 for a request aimed at one of the daemon's own ports on this
/// machine: a run's command must not reach the API (or the proxy itself)
/// through the proxy, whatever spelling of the address it uses.
async fn daemon_target(d: &Runs, host: &str, port: u16) -> Option<Response<Body>> {
    if port != d.api_port && port != d.state.port() {
        return None;
    }
    let reaches_us = match host.parse::<IpAddr>() {
        Ok(ip) => reaches_daemon(d, ip, port),
        Err(_) => match tokio::net::lookup_host((host, port)).await {
            Ok(mut addrs) => addrs.any(|a| reaches_daemon(d, a.ip(), port)),
            // Unresolvable here means unreachable for the forward too.
            Err(_) => false,
        },
    };
    reaches_us.then(daemon_ports_refused)
}

/// True when `ip:port` is one of the daemon's own listening sockets.
fn reaches_daemon(d: &Runs, ip: IpAddr, port: u16) -> bool {
    if port != d.api_port && port != d.state.port() {
        return false;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    ip.is_loopback() || ip.is_unspecified()
}

fn daemon_ports_refused() -> Response<Body> {
    text(
        StatusCode::FORBIDDEN,
        "Authsome proxy: the daemon's own ports cannot be reached through the proxy",
    )
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn plain(d: Runs, run: Arc<Run>, req: Request<Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "Authsome proxy: expected an absolute URL (proxy request)",
        );
    };
    if req.uri().scheme_str() != Some("http") {
        return text(
            StatusCode::BAD_REQUEST,
            "Authsome proxy: only http:// URLs can be sent without CONNECT",
        );
    }
    let (host, port) = split_authority(&authority, 80);
    if let Some(refusal) = daemon_target(&d, &host, port).await {
        return refusal;
    }
    if run.policy.only_providers || run.policy.allow.is_some() {
        let candidates = d.run_candidates(&run).await;
        if !matcher::intercepts(&candidates.allowed, &host, port) {
            d.note_not_allowed(&run, &candidates, &host, port);
            if run.policy.only_providers {
                return d.refuse_non_provider(&run, &host, port);
            }
        }
    }
    // Credentials never travel in clear text except to this machine.
    let inject = is_loopback(&host);
    forward(&d, &run, "http", &host, port, req, inject).await
}

/// Policy events (`not_allowed`, `denied_by_policy`) recorded per run at
/// most: a command trying host after host cannot fill the audit log or
/// the daemon's memory.
const MAX_RECORDED: usize = 256;

/// How long a `--ask` request waits for the person.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(120);

/// A `request` audit event waiting for the end of its answer: written
/// (batched) when the answer's body is dropped, with the bytes that went
/// through and the time taken.
struct Activity {
    audit: Arc<Audit>,
    events: Events,
    event: Option<AuditEvent>,
    started: Instant,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Activity {
    fn set_status(&mut self, status: u16) {
        if let Some(r) = self.event.as_mut().and_then(|e| e.request.as_mut()) {
            r.http_status = status;
        }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        if let Some(r) = event.request.as_mut() {
            r.bytes = self.bytes.load(std::sync::atomic::Ordering::Relaxed);
            r.ms = self.started.elapsed().as_millis() as u64;
        }
        if let (true, Some(run), Some(request)) =
            (self.events.has_subscribers(), &event.run, &event.request)
        {
            self.events.send(crate::events::Event::Request {
                run: run.clone(),
                provider: event.provider.clone(),
                connection: event.connection.clone(),
                request: request.clone(),
            });
        }
        self.audit.record_batched(event);
    }
}

/// A held request's place in its provider's queue. Dropped when the
/// request stops waiting, answered or not; if it was still in the queue
/// (no answer in time, or its client went away), it leaves it, and the
/// watchers learn what the queue shows now.
struct Waiting<'a> {
    runs: &'a Runs,
    run: &'a Run,
    provider: &'a str,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let change = {
            let mut approvals = self.run.approvals.lock().expect("approvals");
            let Some(a) = approvals.get_mut(self.provider) else {
                return;
            };
            let was_shown = a.waiting.keys().next() == Some(&self.ticket);
            if a.waiting.remove(&self.ticket).is_none() || !was_shown {
                return;
            }
            let shown = a.shown().cloned();
            if shown.is_none() && a.decided.is_none() {
                approvals.remove(self.provider);
            }
            shown
        };
        self.runs.announce_queue(self.run, self.provider, change);
    }
}

/// Headers some servers obey instead of the request's method.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The methods a request's override headers name (upper case), so a
/// policy on methods holds for what the server will do.
fn method_overrides(headers: &HeaderMap) -> Vec<String> {
    METHOD_OVERRIDES
        .iter()
        .flat_map(|h| headers.get_all(*h))
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_uppercase())
        .filter(|v| !v.is_empty())
        .take(8)
        .collect()
}

/// A path for a refusal's body: resolved, without the query, at most 200
/// characters.
fn rule_path_shown(path: &str) -> String {
    matcher::normalize_path(path).chars().take(200).collect()
}

/// The proxy's answer to a request its run's policy refuses: 403 with
/// `{"error":"denied_by_policy","provider":..,"connection":..,"reason":..}`.
fn denied_by_policy(provider: &str, connection: &str, reason: &str) -> Response<Body> {
    let body = serde_json::json!({
        "error": "denied_by_policy",
        "provider": provider,
        "connection": connection,
        "reason": reason,
    });
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The answer to a request for a host no allowed connection matches, in a
/// run started with `--only-providers`.
fn only_providers_refused(host: &str, port: u16) -> Response<Body> {
    text(
        StatusCode::FORBIDDEN,
        format!("Authsome proxy: this run may reach only its providers (--only-providers); {host}:{port} is not one"),
    )
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for h in HOP_BY_HOP.iter().map(|s| s.to_string()).chain(named) {
        if h != "transfer-encoding" {
            headers.remove(h.as_str());
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

async fn forward(
    d: &Runs,
    run: &Run,
    scheme: &str,
    host: &str,
    port: u16,
    mut req: Request<Incoming>,
    inject: bool,
) -> Response<Body> {
    // A connection opened while the run was live (a tunnel, a keep-alive)
    // carries no credential once it has ended.
    if !run.is_live() {
        return proxy_auth_required();
    }
    if let Some(refusal) = refuse(scheme, host, port, &req) {
        return refusal;
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let path = req.uri().path().to_string();
    let host_in_uri = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let uri = match format!("{scheme}://{host_in_uri}:{port}{path_and_query}").parse() {
        Ok(u) => u,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Authsome proxy: bad request target: {e}"),
            )
        }
    };
    strip_hop_by_hop(req.headers_mut());
    let overrides = method_overrides(req.headers());
    if let Some(refusal) = d
        .refuse_method(run, req.method(), &overrides, host, port)
        .await
    {
        return refusal;
    }
    let started = Instant::now();
    let method = req.method().to_string();
    let mut decided = None;
    if inject {
        let method = req.method().to_string();
        match d
            .inject(run, host, port, &method, &path, req.headers_mut())
            .await
        {
            Ok(p) => decided = p,
            Err(resp) => return resp,
        }
    } else {
        tracing::debug!(%host, "plain http to a non-loopback host: no credential added");
    }
    *req.uri_mut() = uri;
    if !req.headers().contains_key("host") {
        if let Ok(v) = HeaderValue::from_str(&format!("{host_in_uri}:{port}")) {
            req.headers_mut().insert("host", v);
        }
    }
    // Every request to a provider's host (or through an intercepted
    // tunnel) leaves one `request` event when its answer has been read.
    let activity = (d.activity && (scheme == "https" || decided.is_some())).then(|| {
        let mut event = AuditEvent::new("request");
        event.profile = Some(run.profile.to_string());
        event.run = Some(run.id.clone());
        if let Some((provider, connection)) = &decided {
            event.provider = Some(provider.clone());
            event.connection = Some(connection.to_string());
        }
        event.request = Some(crate::audit::RequestActivity {
            method,
            host: host.to_string(),
            path: path.chars().take(512).collect(),
            http_status: 0,
            bytes: 0,
            ms: 0,
        });
        Activity {
            audit: d.audit.clone(),
            events: d.events.clone(),
            event: Some(event),
            started,
            bytes: Arc::default(),
        }
    });
    let req = req.map(|b| b.boxed());
    match d.state.client.request(req).await {
        Ok(resp) => match activity {
            Some(mut a) => {
                a.set_status(resp.status().as_u16());
                let counter = a.bytes.clone();
                resp.map(move |b| {
                    b.map_frame(move |frame| {
                        let _record_on_drop = &a;
                        if let Some(data) = frame.data_ref() {
                            counter
                                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                        frame
                    })
                    .boxed()
                })
            }
            None => resp.map(|b| b.boxed()),
        },
        Err(e) => {
            let chain = error_chain(&e);
            let why = if chain.contains("certificate")
                || chain.contains("UnknownIssuer")
                || chain.contains("invalid peer")
            {
                format!(
                    "Authsome proxy: the TLS certificate of {host} could not be verified ({chain}). \
                     If a corporate proxy inspects TLS, set proxy.extra_ca_file in config.toml."
                )
            } else {
                format!("Authsome proxy: the request to {host}:{port} failed: {chain}")
            };
            tracing::debug!("{why}");
            text(StatusCode::BAD_GATEWAY, why)
        }
    }
}

/// Requests the proxy answers itself: `TRACE` and `TRACK` (405: they echo
/// the request, credential included), and a request whose `Host` header or
/// absolute-form authority names another host than the one it goes to
/// (421: a credential must never travel under a foreign `Host`).
fn refuse(scheme: &str, host: &str, port: u16, req: &Request<Incoming>) -> Option<Response<Body>> {
    let method = req.method().as_str();
    if method.eq_ignore_ascii_case("TRACE") || method.eq_ignore_ascii_case("TRACK") {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Authsome proxy: {method} is not forwarded"),
        );
        resp.headers_mut().insert(
            "allow",
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        return Some(resp);
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let named: Vec<String> = req
        .headers()
        .get_all("host")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .chain(req.uri().authority().map(|a| a.as_str().to_string()))
        .collect();
    for authority in named {
        let same = authority
            .parse::<hyper::http::uri::Authority>()
            .ok()
            .filter(|a| !a.as_str().contains('@'))
            .map(|a| split_authority(&a, default_port))
            .is_some_and(|(h, p)| h == host && p == port);
        if !same {
            return Some(text(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Authsome proxy: the request names {authority:?} but goes to {host}:{port}; \
                     it is not forwarded"
                ),
            ));
        }
    }
    None
}

/// A credential as a header value. `HeaderValue` refuses CR, LF and NUL,
/// so a stored value can never split the request it is added to. The value
/// lives in hyper's reference-counted bytes, which are freed without zeroing
/// (see docs/SECURITY.md).
fn header_value(provider: &str, value: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        Error::InvalidInput(format!(
            "the {provider} credential contains characters a header cannot carry"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn is_placeholder(v: &HeaderValue) -> bool {
    let s = v.to_str().unwrap_or("");
    s.trim().is_empty() || s.contains(PLACEHOLDER) || s.trim().eq_ignore_ascii_case("bearer")
}

impl Runs {
    /// The connections a run may inject, cached for a second.
    pub(crate) async fn run_candidates(&self, run: &Run) -> Arc<RunCandidates> {
        let generation = match self.stores.get(&run.profile).await {
            Ok(s) => s.generation(),
            Err(_) => u64::MAX,
        };
        if let Some((at, g, c)) = run.candidates.lock().expect("candidates").as_ref() {
            if *g == generation && at.elapsed() < Duration::from_secs(1) {
                return c.clone();
            }
        }
        let all = self.build_candidates(run).await.unwrap_or_else(|e| {
            tracing::warn!("proxy: cannot list connections: {e}");
            Vec::new()
        });
        let allowed = all
            .iter()
            .filter(|c| run.policy.allows(&c.provider))
            .cloned()
            .collect();
        let built = Arc::new(RunCandidates { all, allowed });
        *run.candidates.lock().expect("candidates") =
            Some((Instant::now(), generation, built.clone()));
        built
    }

    /// What the run's rules and flags say about a request that would get
    /// `provider`'s credential. Flags only narrow: `--ask` turns an allow
    /// into an ask, never a deny into anything else.
    fn verdict(
        run: &Run,
        provider: &str,
        connection: &str,
        method: &str,
        overrides: &[String],
        path: &str,
    ) -> (rules::Action, String) {
        let v = run.policy.rules.verdict(&rules::Request {
            provider,
            connection,
            command: &run.command,
            method,
            overrides,
            path,
        });
        match v.action {
            rules::Action::Allow if run.policy.ask => (rules::Action::Ask, "--ask".into()),
            a => (a, v.source()),
        }
    }

    /// Holds a request to `provider` until the person decides (`authsome
    /// approve` / `deny`, or the tray's window), at most the ask timeout;
    /// then it goes on, or gets 403. A run-wide answer answers at once, and
    /// so does a live lease for the run's command (except under `--ask`,
    /// which always asks).
    #[allow(clippy::too_many_arguments)]
    async fn await_approval(
        &self,
        run: &Run,
        provider: &str,
        connection: &crate::names::ConnectionName,
        method: &str,
        host: &str,
        path: &str,
        asked_by: &str,
    ) -> std::result::Result<(), Response<Body>> {
        let denied = |why: &str| denied_by_policy(provider, connection.as_str(), why);
        let decided = run
            .approvals
            .lock()
            .expect("approvals")
            .get(provider)
            .and_then(|a| a.decided);
        match decided {
            Some(runs::Approval::Allowed) => return Ok(()),
            Some(runs::Approval::Denied) => return Err(denied("denied by the person")),
            None => {}
        }
        if !run.policy.ask {
            if let Some(id) = self.live_lease(run, provider, connection).await {
                self.record_once(
                    run,
                    "approval",
                    provider,
                    connection.as_str(),
                    &format!("allowed by lease {id}"),
                );
                return Ok(());
            }
        }
        let pending = crate::wire::PendingApproval {
            provider: provider.to_string(),
            connection: connection.to_string(),
            method: method.to_string(),
            host: host.to_string(),
            path: matcher::normalize_path(path).chars().take(512).collect(),
            since: chrono::Utc::now(),
            command: run.command.clone(),
            cwd: run.cwd.clone(),
            asked_by: asked_by.to_string(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ticket, shown) = {
            let mut approvals = run.approvals.lock().expect("approvals");
            let a = approvals.entry(provider.to_string()).or_default();
            // Answered while the lease was looked up.
            match a.decided {
                Some(runs::Approval::Allowed) => return Ok(()),
                Some(runs::Approval::Denied) => return Err(denied("denied by the person")),
                None => {}
            }
            let ticket = a.next_ticket;
            a.next_ticket += 1;
            let shown = a.waiting.is_empty().then(|| pending.clone());
            a.waiting.insert(
                ticket,
                runs::Held {
                    pending,
                    answer: tx,
                },
            );
            (ticket, shown)
        };
        // From here on, a request that stops waiting (no answer in time, or
        // its client gave up) takes itself out of the queue.
        let _waiting = Waiting {
            runs: self,
            run,
            provider,
            ticket,
        };
        if let Some(pending) = shown {
            tracing::info!(run = %run.id, %provider, "a request waits for approval");
            self.events.send(crate::events::Event::ApprovalPending {
                run: run.id.clone(),
                pending,
            });
        }
        match tokio::time::timeout(self.ask_timeout, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(_) => Err(denied("denied by the person")),
            Err(_) => {
                self.record_once(
                    run,
                    "approval",
                    provider,
                    connection.as_str(),
                    "denied: no answer in time",
                );
                Err(denied(&format!(
                    "no answer within {} s",
                    self.ask_timeout.as_secs()
                )))
            }
        }
    }

    /// The id of a live lease for this run's command and connection.
    async fn live_lease(
        &self,
        run: &Run,
        provider: &str,
        connection: &crate::names::ConnectionName,
    ) -> Option<String> {
        let store = self.stores.get(&run.profile).await.ok()?;
        store
            .live_grant(provider, connection.as_str(), &run.command)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read leases: {e}");
                None
            })
    }

    /// Tells the watchers what a provider's queue of held requests shows
    /// now: the oldest held request, or that none waits any more.
    pub(crate) fn announce_queue(&self, run: &Run, provider: &str, shown: Option<PendingApproval>) {
        self.events.send(match shown {
            Some(pending) => crate::events::Event::ApprovalPending {
                run: run.id.clone(),
                pending,
            },
            None => crate::events::Event::ApprovalWithdrawn {
                run: run.id.clone(),
                provider: provider.to_string(),
            },
        });
    }

    /// Records, once per run and provider, a request to a connected
    /// provider's host that the run may not use (`--allow` left it out).
    fn note_not_allowed(&self, run: &Run, candidates: &RunCandidates, host: &str, port: u16) {
        let Some(c) = candidates.all.iter().find(|c| {
            !run.policy.allows(&c.provider)
                && matcher::intercepts(std::slice::from_ref(c), host, port)
        }) else {
            return;
        };
        self.record_once(
            run,
            "not_allowed",
            &c.provider,
            c.connection.as_str(),
            &format!("{host}:{port}: passed without credentials"),
        );
    }

    /// Writes an audit event for a run, once per event, provider and
    /// detail (a command in a loop cannot fill the log).
    fn record_once(&self, run: &Run, event: &str, provider: &str, connection: &str, detail: &str) {
        let key = format!("{event} {provider} {detail}");
        {
            let mut recorded = run.recorded.lock().expect("recorded");
            if recorded.len() > MAX_RECORDED || !recorded.insert(key) {
                return;
            }
            if recorded.len() > MAX_RECORDED {
                // A command trying host after host: say so once, then stop.
                drop(recorded);
                let mut e = AuditEvent::new(event)
                    .about(run.profile.as_str(), provider, Some(connection))
                    .detail(format!(
                        "run {}, more than {MAX_RECORDED} policy events; the rest of this run's are not recorded",
                        run.id
                    ));
                e.profile = Some(run.profile.to_string());
                e.run = Some(run.id.clone());
                self.audit.record(e);
                return;
            }
        }
        tracing::info!(run = %run.id, %provider, "{event}: {detail}");
        let mut e = AuditEvent::new(event)
            .about(run.profile.as_str(), provider, Some(connection))
            .detail(format!("run {}, {detail}", run.id));
        e.profile = Some(run.profile.to_string());
        e.run = Some(run.id.clone());
        self.audit.record(e);
    }

    /// The refusal, audited, of a request to a host that is none of an
    /// `--only-providers` run's providers.
    fn refuse_non_provider(&self, run: &Run, host: &str, port: u16) -> Response<Body> {
        self.record_once(
            run,
            "denied_by_policy",
            "-",
            "-",
            &format!("{host}:{port}: not a provider (--only-providers)"),
        );
        only_providers_refused(host, port)
    }

    /// The refusal of a request whose method a `--read-only` run may not
    /// send to `host` (any host an allowed connection's provider serves,
    /// whether or not the path matched), if it is one.
    async fn refuse_method(
        &self,
        run: &Run,
        method: &hyper::Method,
        overrides: &[String],
        host: &str,
        port: u16,
    ) -> Option<Response<Body>> {
        let method = std::iter::once(method.as_str())
            .chain(overrides.iter().map(String::as_str))
            .find(|m| !run.policy.allows_method(m))?;
        let candidates = self.run_candidates(run).await;
        let c = candidates
            .allowed
            .iter()
            .find(|c| matcher::intercepts(std::slice::from_ref(c), host, port))?;
        let reason = format!("this run is read-only: {method} is not allowed");
        self.record_once(
            run,
            "denied_by_policy",
            &c.provider,
            c.connection.as_str(),
            &format!("{method} to {host}:{port}"),
        );
        Some(denied_by_policy(
            &c.provider,
            c.connection.as_str(),
            &reason,
        ))
    }

    async fn build_candidates(&self, run: &Run) -> Result<Vec<Candidate>> {
        let store = self.stores.get(&run.profile).await?;
        let mut out = Vec::new();
        for m in store.list_connections().await? {
            if m.status == Status::Invalid
                || m.connection != run.connection_for(m.provider.as_str())
            {
                continue;
            }
            let Ok((def, _)) = self.catalogue.get(m.provider.as_str()) else {
                continue;
            };
            let patterns = def
                .host_url
                .patterns()
                .into_iter()
                .filter_map(|p| HostPattern::parse(p).ok())
                .collect();
            let excluded = matcher::oauth_exclusions(&def, m.base_url.as_deref());
            out.push(Candidate {
                provider: m.provider.to_string(),
                connection: m.connection.clone(),
                patterns,
                excluded,
            });
        }
        Ok(out)
    }

    /// Adds the matching provider's credential to a request, or nothing on
    /// a miss or a tie. A credential that cannot be had is an error response.
    async fn inject(
        &self,
        run: &Run,
        host: &str,
        port: u16,
        method: &str,
        path: &str,
        headers: &mut HeaderMap,
    ) -> std::result::Result<Option<(String, crate::names::ConnectionName)>, Response<Body>> {
        let candidates = self.run_candidates(run).await;
        match matcher::decide(&candidates.all, host, port, path) {
            Decision::Miss => {
                tracing::debug!(run = %run.id, %host, path, "proxy miss: no provider matches");
                Ok(None)
            }
            Decision::Ambiguous(providers) => {
                tracing::debug!(run = %run.id, %host, path, ?providers, "ambiguous: several providers match equally; nothing injected");
                Ok(None)
            }
            Decision::Inject {
                provider,
                connection,
            } => {
                if !run.policy.allows(&provider) {
                    self.record_once(
                        run,
                        "not_allowed",
                        &provider,
                        connection.as_str(),
                        &format!("{host}:{port}: passed without credentials"),
                    );
                    return Ok(Some((provider, connection)));
                }
                let overrides = method_overrides(headers);
                let (action, source) = Self::verdict(
                    run,
                    &provider,
                    connection.as_str(),
                    method,
                    &overrides,
                    path,
                );
                match action {
                    rules::Action::Allow => {}
                    rules::Action::Ask => {
                        self.await_approval(
                            run,
                            &provider,
                            &connection,
                            method,
                            host,
                            path,
                            &source,
                        )
                        .await?
                    }
                    rules::Action::Deny => {
                        self.record_once(
                            run,
                            "denied_by_policy",
                            &provider,
                            connection.as_str(),
                            &format!("{method} to {host}:{port} ({source})"),
                        );
                        return Err(denied_by_policy(
                            &provider,
                            connection.as_str(),
                            &format!("{source} denies {method} {}", rule_path_shown(path)),
                        ));
                    }
                }
                if let Some(max) = run.policy.max_requests {
                    if !run.take_within(&provider, max) {
                        self.record_once(
                            run,
                            "denied_by_policy",
                            &provider,
                            connection.as_str(),
                            &format!("budget of {max} requests spent"),
                        );
                        let mut resp = denied_by_policy(
                            &provider,
                            connection.as_str(),
                            &format!("this run's budget of {max} requests to {provider} is spent (--max-requests)"),
                        );
                        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                        return Err(resp);
                    }
                }
                let (name, value) = self
                    .credential_header(&run.profile, &provider, &connection)
                    .await
                    .map_err(|e| {
                        text(
                            StatusCode::BAD_GATEWAY,
                            format!(
                                "Authsome proxy: no credential for {provider} ({connection}): {e}"
                            ),
                        )
                    })?;
                match headers.get(&name) {
                    Some(existing) if !is_placeholder(existing) => {
                        tracing::debug!(%provider, "the request carries its own {name} header; left as is");
                    }
                    _ => {
                        headers.insert(name, value);
                        if run.policy.max_requests.is_none() {
                            // With a budget, the request was counted when it took its share.
                            run.count(&provider);
                        }
                    }
                }
                Ok(Some((provider, connection)))
            }
        }
    }

    /// The header a provider's credential goes in, refreshed first when due.
    pub async fn credential_header(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &crate::names::ConnectionName,
    ) -> Result<(HeaderName, HeaderValue)> {
        let pname = ProviderName::parse(provider)?;
        let store = self.stores.get(profile).await?;
        let generation = store.generation();
        let key: CredKey = (profile.clone(), provider.to_string(), connection.clone());
        if let Some(c) = self.state.creds.lock().expect("credential cache").get(&key) {
            if c.generation == generation && Instant::now() < c.valid_until {
                return Ok((c.name.clone(), c.value.clone()));
            }
        }
        let fresh = self
            .refresher
            .fresh_credential(profile, &pname, connection)
            .await?;
        let rec = fresh.record;
        let (def, _) = self.catalogue.get(provider)?;
        let missing = || Error::CredentialMissing {
            provider: provider.into(),
            connection: connection.to_string(),
        };
        let (name, value) = match def.auth_type {
            AuthType::ApiKey => {
                let spec = def.api_key.as_ref().ok_or_else(missing)?;
                let key = rec.secrets.api_key.as_ref().ok_or_else(missing)?;
                let value = if spec.header_prefix.is_empty() {
                    key.expose().to_string()
                } else {
                    format!("{} {}", spec.header_prefix, key.expose())
                };
                (credential_header_name(&def), zeroize::Zeroizing::new(value))
            }
            AuthType::OAuth2 => {
                let token = rec.secrets.access_token.as_ref().ok_or_else(missing)?;
                (
                    credential_header_name(&def),
                    zeroize::Zeroizing::new(format!("Bearer {}", token.expose())),
                )
            }
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidProvider(format!("{provider}: bad header name")))?;
        let value = header_value(provider, &value)?;
        // Reuse until the store changes, for a few seconds at most, and never
        // into the token's refresh window (the next read refreshes it).
        let now = chrono::Utc::now();
        let mut ttl = CRED_CACHE_TTL;
        if let Some(due) = fresh.reuse_until {
            ttl = ttl.min((due - now).to_std().unwrap_or(Duration::ZERO));
        }
        if !ttl.is_zero() {
            self.state.creds.lock().expect("credential cache").insert(
                key,
                CachedCred {
                    name: name.clone(),
                    value: value.clone(),
                    generation: store.generation(),
                    valid_until: Instant::now() + ttl,
                },
            );
        }
        Ok((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_with_cr_or_lf_never_becomes_a_header() {
        for bad in ["Bearer a\r\nX-Injected: 1", "key\nmore", "key\0"] {
            let err = header_value("acme", bad).unwrap_err().to_string();
            assert_eq!(
                err,
                "the acme credential contains characters a header cannot carry"
            );
            assert!(!err.contains("X-Injected"));
        }
        let ok = header_value("acme", "Bearer abc").unwrap();
        assert!(ok.is_sensitive());
    }
}
