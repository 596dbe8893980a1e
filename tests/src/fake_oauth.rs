//! A fake OAuth 2.0 authorization server for the end-to-end tests: authorize
//! with a PKCE check, token (code, refresh with rotation, device), device
//! authorization, registration, revocation and discovery, with switches for
//! every failure the tests need and counters of what was called.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How a device authorization ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceOutcome {
    /// Approved after the pending polls.
    #[default]
    Approve,
    /// Denied after the pending polls.
    Deny,
    /// Expired after the pending polls.
    Expire,
}

/// Behaviour switches.
#[derive(Debug, Clone)]
pub struct Switches {
    /// `/authorize` answers `error=access_denied`.
    pub deny: bool,
    /// `expires_in` of issued access tokens (`None`: omitted).
    pub expires_in: Option<i64>,
    /// `expires_in` of access tokens issued by a refresh, when it differs
    /// from `expires_in` (so a test sets both before the login and never
    /// races a flip afterwards).
    pub refresh_expires_in: Option<i64>,
    /// Refresh issues a new refresh token and retires the old one.
    pub rotate: bool,
    /// Issue refresh tokens at all.
    pub issue_refresh_token: bool,
    /// Refresh answers this OAuth error (400).
    pub refresh_error: Option<String>,
    /// Refresh answers this HTTP status with no OAuth error (e.g. 503).
    pub refresh_status: Option<u16>,
    /// Refresh waits this long before answering.
    pub refresh_delay_ms: u64,
    /// Refresh waits this long after issuing (and rotating), before the answer
    /// is sent: the moment a client can die holding only the retired token.
    pub refresh_answer_delay_ms: u64,
    /// While true, refresh answers wait (after the grant is done), so a test
    /// can make something happen while a refresh is surely in flight.
    pub hold_refresh_answers: bool,
    /// How long a retired refresh token is still accepted (a reuse interval,
    /// as Auth0 and Okta offer); `None`: retired at once.
    pub reuse_interval: Option<std::time::Duration>,
    /// The code exchange answers this OAuth error (400).
    pub exchange_error: Option<String>,
    /// `authorization_pending` answers before the outcome.
    pub device_pending_polls: u32,
    /// Answer `slow_down` once, on the first poll.
    pub device_slow_down_once: bool,
    /// How the device login ends.
    pub device_outcome: DeviceOutcome,
    /// Polling interval the device endpoint announces.
    pub device_interval: u64,
    /// Client secret the token endpoint requires (`None`: public clients).
    pub client_secret: Option<String>,
    /// The code exchange answers exactly this status and body (hostile responses).
    pub exchange_raw: Option<(u16, String)>,
    /// The server's metadata is found only through the protected resource
    /// document of `{base}/mcp` (RFC 9728), not at the origin.
    pub metadata_only_via_resource: bool,
    /// `iss` added to authorization responses (RFC 9207).
    pub iss: Option<String>,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            deny: false,
            expires_in: Some(3600),
            refresh_expires_in: None,
            rotate: true,
            issue_refresh_token: true,
            refresh_error: None,
            refresh_status: None,
            refresh_delay_ms: 0,
            refresh_answer_delay_ms: 0,
            hold_refresh_answers: false,
            reuse_interval: None,
            exchange_error: None,
            device_pending_polls: 1,
            device_slow_down_once: false,
            device_outcome: DeviceOutcome::Approve,
            device_interval: 1,
            client_secret: Some("fake-client-secret".into()),
            exchange_raw: None,
            metadata_only_via_resource: false,
            iss: None,
        }
    }
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    challenge: String,
    redirect_uri: String,
    scope: String,
}

/// What the server saw and holds.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Behaviour switches.
    pub switches: Switches,
    codes: HashMap<String, CodeGrant>,
    /// Refresh tokens and whether each is still valid.
    pub refresh_tokens: HashMap<String, bool>,
    /// When each rotated refresh token was retired.
    pub retired_at: HashMap<String, std::time::Instant>,
    /// Refresh tokens presented and refused.
    pub rejected_refresh_tokens: Vec<String>,
    /// For each refused token, how long ago it had been retired (`None`:
    /// never a live token of this server, or revoked).
    pub rejected_retired_for: Vec<Option<std::time::Duration>>,
    /// Refreshes accepted with an already retired token inside the reuse interval.
    pub reused_retired_tokens: u32,
    /// Requests for the RFC 9728 protected resource document.
    pub protected_resource_requests: u32,
    device_polls: HashMap<String, u32>,
    /// Calls to the token endpoint, all grants.
    pub token_calls: u32,
    /// Refresh grants received.
    pub refresh_calls: u32,
    /// Refresh answers sent (after any hold or delay).
    pub refresh_answers_sent: u32,
    /// Device-code token polls received.
    pub device_polls_total: u32,
    /// The `Content-Type` of each token request, in order.
    pub token_content_types: Vec<String>,
    /// The RFC 8707 `resource` each access token was issued for.
    pub token_resource: HashMap<String, Option<String>>,
    /// When each access token with a lifetime expires.
    pub token_expiry: HashMap<String, std::time::Instant>,
    /// The remote MCP server at `{base}/mcp`.
    pub mcp: crate::fake_mcp::McpState,
    /// Client authentications seen at the token endpoint ("basic" or "body").
    pub client_auth_seen: Vec<String>,
    /// Revoked tokens: (token_type_hint, token).
    pub revoked: Vec<(String, String)>,
    /// Registration requests.
    pub registrations: Vec<Value>,
    /// Authorization requests' query parameters.
    pub authorize_requests: Vec<HashMap<String, String>>,
    /// Access tokens issued, in order.
    pub issued: Vec<String>,
    /// For every access token, the refresh token that goes with it (the one
    /// issued with it, or the one presented when a refresh did not rotate).
    pub pair_of: HashMap<String, Option<String>>,
    /// For every refresh token issued by a rotating refresh, the one
    /// presented for it.
    pub parent_of: HashMap<String, String>,
    /// Every refresh grant: when its TCP connection was accepted, and the
    /// refresh token presented.
    pub presented: Vec<(std::time::Instant, String)>,
    accepted_at: HashMap<std::net::SocketAddr, std::time::Instant>,
    counter: u32,
}

impl FakeState {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}-{}", self.counter, std::process::id())
    }
}

pub(crate) type Shared = Arc<Mutex<FakeState>>;

/// A running fake server.
#[derive(Debug, Clone)]
pub struct FakeOAuth {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Shared,
}

impl FakeOAuth {
    /// Starts the server on a free port in a background thread.
    pub fn start() -> FakeOAuth {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state: Shared = Arc::default();
        let app = router(state.clone(), base.clone());
        let accepted = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use axum::serve::ListenerExt;
                let listener =
                    tokio::net::TcpListener::from_std(listener)
                        .unwrap()
                        .tap_io(move |tcp| {
                            if let Ok(peer) = tcp.peer_addr() {
                                accepted
                                    .lock()
                                    .unwrap()
                                    .accepted_at
                                    .insert(peer, std::time::Instant::now());
                            }
                        });
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .await
                .unwrap();
            });
        });
        FakeOAuth { base, state }
    }

    /// The server's state, for switches and counters.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    /// A provider definition pointing at this server.
    pub fn provider(&self, name: &str, flow: &str) -> Value {
        let b = &self.base;
        json!({
            "name": name,
            "display_name": format!("Fake {name}"),
            "auth_type": "oauth2",
            "flow": flow,
            "host_url": b.trim_start_matches("http://"),
            "docs_url": format!("{b}/docs"),
            "oauth": {
                "authorization_url": format!("{b}/authorize"),
                "token_url": format!("{b}/token"),
                "revocation_url": format!("{b}/revoke"),
                "device_authorization_url": format!("{b}/device/code"),
                "scopes": ["read", "write"],
                "supports_device_code": true,
                "supports_dcr": flow == "dcr_pkce",
            },
            "export": {"FAKE_TOKEN": "access_token"}
        })
    }
}

fn router(state: Shared, base: String) -> Router {
    let meta = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "registration_endpoint": format!("{base}/register"),
        "revocation_endpoint": format!("{base}/revoke"),
        "device_authorization_endpoint": format!("{base}/device/code"),
        "code_challenge_methods_supported": ["S256"],
    });
    let meta2 = meta.clone();
    // RFC 9728: the MCP endpoint `{base}/mcp` names the authorization server
    // `{base}/as`, whose RFC 8414 document sits at the path-inserted address.
    let mut meta_as = meta.clone();
    meta_as["issuer"] = json!(format!("{base}/as"));
    meta_as["authorization_response_iss_parameter_supported"] = json!(true);
    meta_as["scopes_supported"] = json!(["read", "write", "admin"]);
    let resource = json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [format!("{base}/as")],
        "scopes_supported": ["read", "write"],
    });
    let mcp = Router::new()
        .route(
            "/mcp",
            post(crate::fake_mcp::post)
                .get(crate::fake_mcp::get)
                .delete(crate::fake_mcp::delete),
        )
        .with_state((state.clone(), base.clone()));
    let hidden = |s: &Shared| s.lock().unwrap().switches.metadata_only_via_resource;
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move |State(s): State<Shared>| async move {
                s.lock().unwrap().protected_resource_requests += 1;
                Json(resource.clone())
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server/as",
            get(move || async move { Json(meta_as.clone()) }),
        )
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/device/code", post(device_code))
        .route("/register", post(register))
        .route("/revoke", post(revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            get(move |State(s): State<Shared>| async move {
                if hidden(&s) {
                    StatusCode::NOT_FOUND.into_response()
                } else {
                    Json(meta.clone()).into_response()
                }
            }),
        )
        .route(
            "/.well-known/openid-configuration",
            get(move |State(s): State<Shared>| async move {
                if hidden(&s) {
                    StatusCode::NOT_FOUND.into_response()
                } else {
                    Json(meta2.clone()).into_response()
                }
            }),
        )
        .with_state(state)
        .merge(mcp)
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": format!("fake server says {code}")})),
    )
        .into_response()
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    st.authorize_requests.push(q.clone());
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    let enc = |v: &str| url_encode(v);
    if st.switches.deny {
        return Redirect::to(&format!(
            "{redirect}?error=access_denied&error_description=denied+by+test&state={}",
            enc(&state)
        ))
        .into_response();
    }
    if q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (
            StatusCode::BAD_REQUEST,
            "PKCE S256 and response_type=code are required",
        )
            .into_response();
    }
    let code = st.next("code");
    st.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: q.get("client_id").cloned().unwrap_or_default(),
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            redirect_uri: redirect.clone(),
            scope: q.get("scope").cloned().unwrap_or_default(),
        },
    );
    let iss = st
        .switches
        .iss
        .as_ref()
        .map(|i| format!("&iss={}", enc(i)))
        .unwrap_or_default();
    Redirect::to(&format!(
        "{redirect}?code={}&state={}{iss}",
        enc(&code),
        enc(&state)
    ))
    .into_response()
}

fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Client authentication: Basic header or body; returns (client_id, ok).
fn client_auth(
    st: &mut FakeState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (String, bool) {
    let expected = st.switches.client_secret.clone();
    if let Some(h) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        st.client_auth_seen.push("basic".into());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(h)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded).to_string();
        let (id, secret) = text.split_once(':').unwrap_or((&text, ""));
        return (
            id.to_string(),
            expected.as_deref().is_none_or(|e| e == secret),
        );
    }
    st.client_auth_seen.push("body".into());
    let id = form.get("client_id").cloned().unwrap_or_default();
    let ok = match &expected {
        Some(e) => form.get("client_secret") == Some(e),
        None => true,
    };
    (id, ok)
}

fn issue(
    st: &mut FakeState,
    scope: &str,
    expires_in: Option<i64>,
    resource: Option<&String>,
) -> Value {
    let access = st.next("at");
    st.issued.push(access.clone());
    st.token_resource.insert(access.clone(), resource.cloned());
    if let Some(e) = expires_in {
        st.token_expiry.insert(
            access.clone(),
            std::time::Instant::now() + std::time::Duration::from_secs(e.max(0) as u64),
        );
    }
    let mut body = json!({"access_token": access, "token_type": "Bearer", "scope": scope});
    if let Some(e) = expires_in {
        body["expires_in"] = json!(e);
    }
    let mut pair = None;
    if st.switches.issue_refresh_token {
        let rt = st.next("rt");
        st.refresh_tokens.insert(rt.clone(), true);
        body["refresh_token"] = json!(rt);
        pair = Some(rt);
    }
    st.pair_of.insert(access, pair);
    body
}

async fn token(
    State(s): State<Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    // A form (RFC 6749), or a JSON object as some device-code endpoints take.
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let form: HashMap<String, String> = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<HashMap<String, Value>>(&body) {
            Ok(m) => m
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        }
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let delay = {
        let mut st = s.lock().unwrap();
        st.token_calls += 1;
        st.token_content_types.push(content_type);
        if grant == "refresh_token" {
            st.refresh_calls += 1;
            st.switches.refresh_delay_ms
        } else {
            0
        }
    };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let (answer, answer_delay) = {
        let mut st = s.lock().unwrap();
        let answer_delay = match grant.as_str() {
            "refresh_token" => st.switches.refresh_answer_delay_ms,
            _ => 0,
        };
        (
            token_answer(&mut st, &grant, &headers, &form, peer),
            answer_delay,
        )
    };
    if answer_delay > 0 {
        // The grant is done (a rotated token already retired); only the answer waits.
        tokio::time::sleep(std::time::Duration::from_millis(answer_delay)).await;
    }
    if grant == "refresh_token" {
        while s.lock().unwrap().switches.hold_refresh_answers {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        s.lock().unwrap().refresh_answers_sent += 1;
    }
    answer
}

fn token_answer(
    st: &mut FakeState,
    grant: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    peer: std::net::SocketAddr,
) -> Response {
    let (client_id, client_ok) = client_auth(st, headers, form);
    match grant {
        "authorization_code" => {
            if let Some((status, body)) = st.switches.exchange_raw.clone() {
                return (StatusCode::from_u16(status).unwrap(), body).into_response();
            }
            if let Some(e) = st.switches.exchange_error.clone() {
                return oauth_error(StatusCode::BAD_REQUEST, &e);
            }
            if !client_ok {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(grant) = st.codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if challenge != grant.challenge
                || grant.client_id != client_id
                || form.get("redirect_uri") != Some(&grant.redirect_uri)
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let lifetime = st.switches.expires_in;
            Json(issue(st, &grant.scope, lifetime, form.get("resource"))).into_response()
        }
        "refresh_token" => {
            if let Some(status) = st.switches.refresh_status {
                return (StatusCode::from_u16(status).unwrap(), "upstream trouble").into_response();
            }
            if let Some(e) = st.switches.refresh_error.clone() {
                return oauth_error(StatusCode::BAD_REQUEST, &e);
            }
            if !client_ok {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            let accepted = st
                .accepted_at
                .get(&peer)
                .copied()
                .unwrap_or_else(std::time::Instant::now);
            st.presented.push((accepted, rt.clone()));
            let live = st.refresh_tokens.get(&rt) == Some(&true);
            let reusable = match (st.retired_at.get(&rt), st.switches.reuse_interval) {
                (Some(at), Some(interval)) => at.elapsed() < interval,
                _ => false,
            };
            if !live && !reusable {
                let retired_for = st.retired_at.get(&rt).map(|at| at.elapsed());
                st.rejected_refresh_tokens.push(rt);
                st.rejected_retired_for.push(retired_for);
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if !live {
                st.reused_retired_tokens += 1;
            }
            let lifetime = st.switches.refresh_expires_in.or(st.switches.expires_in);
            let mut body = issue(st, "read write", lifetime, form.get("resource"));
            if st.switches.rotate {
                if let Some(new_rt) = body.get("refresh_token").and_then(|v| v.as_str()) {
                    st.parent_of.insert(new_rt.to_string(), rt.clone());
                }
                st.refresh_tokens.insert(rt.clone(), false);
                st.retired_at
                    .entry(rt)
                    .or_insert_with(std::time::Instant::now);
            } else if let Some(new_rt) = body
                .get("refresh_token")
                .and_then(|v| v.as_str())
                .map(str::to_string)
            {
                st.refresh_tokens.remove(&new_rt);
                body.as_object_mut().unwrap().remove("refresh_token");
                let access = body["access_token"].as_str().unwrap().to_string();
                st.pair_of.insert(access, Some(rt.clone()));
            }
            Json(body).into_response()
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            st.device_polls_total += 1;
            let dc = form.get("device_code").cloned().unwrap_or_default();
            let Some(polls) = st.device_polls.get(&dc).copied() else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            st.device_polls.insert(dc.clone(), polls + 1);
            if polls == 0 && st.switches.device_slow_down_once {
                return oauth_error(StatusCode::BAD_REQUEST, "slow_down");
            }
            if polls < st.switches.device_pending_polls {
                return oauth_error(StatusCode::BAD_REQUEST, "authorization_pending");
            }
            match st.switches.device_outcome {
                DeviceOutcome::Approve => {
                    st.device_polls.remove(&dc);
                    let lifetime = st.switches.expires_in;
                    Json(issue(st, "read write", lifetime, form.get("resource"))).into_response()
                }
                DeviceOutcome::Deny => oauth_error(StatusCode::BAD_REQUEST, "access_denied"),
                DeviceOutcome::Expire => oauth_error(StatusCode::BAD_REQUEST, "expired_token"),
            }
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn device_code(
    State(s): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    if form.get("client_id").is_none_or(|c| c.is_empty()) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client");
    }
    let dc = st.next("dc");
    st.device_polls.insert(dc.clone(), 0);
    let interval = st.switches.device_interval;
    Json(json!({
        "device_code": dc,
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://fake.example/device",
        "verification_uri_complete": "https://fake.example/device?user_code=WDJB-MJHT",
        "expires_in": 600,
        "interval": interval,
    }))
    .into_response()
}

async fn register(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut st = s.lock().unwrap();
    st.registrations.push(body.clone());
    if body["redirect_uris"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    }
    let id = st.next("dcr-client");
    (
        StatusCode::CREATED,
        Json(json!({"client_id": id, "redirect_uris": body["redirect_uris"]})),
    )
        .into_response()
}

async fn revoke(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> StatusCode {
    let mut st = s.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    st.refresh_tokens.insert(token.clone(), false);
    st.revoked.push((
        form.get("token_type_hint").cloned().unwrap_or_default(),
        token,
    ));
    StatusCode::OK
}
