//! The HTTP API on 127.0.0.1: `/health`, the token-guarded `/v1/` routes, and
//! the one-time bridge pages. Every request passes [`guard`]: the `Host`
//! header must name the daemon (no DNS rebinding), a browser `Origin` must be
//! the daemon's own (no cross-site requests), and `/v1/` needs the token.

mod bridge;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use std::sync::Arc;

use crate::error::Error;
use crate::names::{ConnectionName, ProfileName};
use crate::secret::constant_time_eq;
use crate::services::Services;
use crate::wire::*;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), "{self}");
        } else {
            tracing::debug!(code = self.code(), "{self}");
        }
        (
            status,
            Json(ErrorBody {
                error: self.code().into(),
                message: self.to_string(),
            }),
        )
            .into_response()
    }
}

/// `Json` whose rejections are JSON errors in our shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "invalid_input",
                };
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!("request body too large (limit {MAX_BODY_BYTES} bytes)")
                } else {
                    rejection.body_text()
                };
                Err((
                    status,
                    Json(ErrorBody {
                        error: code.into(),
                        message,
                    }),
                )
                    .into_response())
            }
        }
    }
}

/// The profile a request is about: the `X-Authsome-Profile` header, else the home's default.
#[derive(Debug)]
pub struct Profile(pub ProfileName);

impl FromRequestParts<Arc<Services>> for Profile {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, daemon: &Arc<Services>) -> Result<Self, Error> {
        match parts.headers.get(PROFILE_HEADER) {
            Some(v) => {
                let s = v
                    .to_str()
                    .map_err(|_| Error::InvalidInput("invalid profile header".into()))?;
                Ok(Profile(ProfileName::parse(s)?))
            }
            None => Ok(Profile(daemon.home().default_profile()?)),
        }
    }
}

fn allowed_authorities(port: u16) -> [String; 3] {
    [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
}

/// Checks Host, Origin and, for `/v1/`, the bearer token.
async fn guard(State(daemon): State<Arc<Services>>, req: Request, next: Next) -> Response {
    let port = daemon.port();
    let allowed = allowed_authorities(port);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !allowed.iter().any(|a| a == host) {
        return Error::Forbidden(format!(
            "Host {:?} is not this daemon",
            host.chars().take(100).collect::<String>()
        ))
        .into_response();
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|rest| allowed.iter().any(|a| a == rest));
        if !ok {
            return Error::Forbidden("cross-origin requests are not allowed".into())
                .into_response();
        }
    }
    if req.uri().path().starts_with("/v1/") && !has_token(req.headers(), daemon.token().expose()) {
        return Error::Unauthorized.into_response();
    }
    next.run(req).await
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given, token))
}

/// The API's router over a daemon.
pub fn router(services: Arc<Services>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/connections", get(list))
        .route(
            "/v1/connections/{provider}/{connection}",
            get(get_connection),
        )
        .route(
            "/v1/connections/{provider}/{connection}/refresh",
            post(refresh_rejected),
        )
        .route(
            "/v1/connections/{provider}/{connection}/revoke",
            post(revoke),
        )
        .route("/v1/export", get(export))
        .route("/v1/providers", get(providers).post(register))
        .route("/v1/providers/{provider}", get(inspect))
        .route("/v1/providers/{provider}/remove", post(remove))
        .route("/v1/logins", post(begin_login))
        .route("/v1/logins/{id}", get(login_status).delete(cancel_login))
        .route("/v1/logins/{id}/input", post(login_input))
        .route("/v1/profiles", get(profiles).post(create_profile))
        .route("/v1/events", get(events))
        .route("/v1/runs", post(begin_run).get(list_runs))
        .route("/v1/runs/{id}/pid", post(watch_run))
        .route("/v1/runs/{id}/end", post(end_run))
        .route("/v1/runs/{id}/approve", post(approve))
        .route("/v1/runs/{id}/deny", post(deny))
        .route("/v1/grants", get(list_grants))
        .route("/v1/mcp/servers", post(add_mcp_server))
        .route("/v1/grants/{id}", delete(revoke_grant))
        .route("/bridge/{id}", get(bridge::page).post(bridge::submit))
        .route("/bridge/launch/{token}", get(bridge::launch))
        .route(crate::OAUTH_CALLBACK_PATH, get(bridge::oauth_callback))
        .fallback(|| async { Error::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(services.clone(), guard))
        .with_state(services)
}

/// `GET /v1/events`: the daemon's events as Server-Sent Events, each a JSON
/// object named by its `type`, until the client or the daemon goes.
async fn events(State(d): State<Arc<Services>>) -> impl IntoResponse {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    let sub = d.events().subscribe();
    let stopping = Box::pin(d.stopping());
    let stream =
        futures_util::stream::unfold((sub, stopping), |(mut sub, mut stopping)| async move {
            let event = tokio::select! {
                e = sub.next() => e?,
                _ = &mut stopping => return None,
            };
            let sse = SseEvent::default()
                .event(event.kind())
                .json_data(&event)
                .ok()?;
            Some((Ok::<_, std::convert::Infallible>(sse), (sub, stopping)))
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
}

async fn list_runs(State(d): State<Arc<Services>>) -> Json<Vec<RunInfo>> {
    Json(d.runs().list())
}

async fn health(
    State(d): State<Arc<Services>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Json<HealthResponse> {
    let challenge = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == crate::identity::CHALLENGE_PARAM)
            .map(|(_, v)| v.into_owned())
    });
    let proof = challenge
        .filter(|c| crate::identity::valid_challenge(c))
        .map(|c| crate::identity::proof(d.token().expose(), d.port(), &c));
    Json(HealthResponse {
        status: "ok".into(),
        version: crate::VERSION.into(),
        proof,
    })
}

async fn status(State(d): State<Arc<Services>>) -> Result<Json<StatusResponse>, Error> {
    d.status().await.map(Json)
}

async fn shutdown(State(d): State<Arc<Services>>) -> StatusCode {
    d.request_shutdown();
    StatusCode::ACCEPTED
}

async fn list(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
) -> Result<Json<ListResponse>, Error> {
    d.connections().list(&p).await.map(Json)
}

#[derive(Debug, Deserialize)]
struct GetQuery {
    #[serde(default)]
    show_secret: bool,
}

async fn get_connection(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path((provider, connection)): Path<(String, String)>,
    Query(q): Query<GetQuery>,
) -> Result<Json<ConnectionView>, Error> {
    let connection = ConnectionName::parse(&connection)?;
    d.connections()
        .get(
            &p,
            &provider,
            &connection,
            crate::vault::store::Reveal::when(q.show_secret),
        )
        .await
        .map(Json)
}

async fn refresh_rejected(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path((provider, connection)): Path<(String, String)>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<ConnectionView>, Error> {
    let connection = ConnectionName::parse(&connection)?;
    d.connections()
        .after_rejection(&p, &provider, &connection, &req.rejected_sha256)
        .await
        .map(Json)
}

async fn revoke(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path((provider, connection)): Path<(String, String)>,
) -> Result<Json<RevokeResponse>, Error> {
    let connection = ConnectionName::parse(&connection)?;
    d.connections()
        .revoke(&p, &provider, &connection)
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    provider: Option<String>,
    connection: Option<String>,
}

async fn export(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Query(q): Query<ExportQuery>,
) -> Result<Json<ExportResponse>, Error> {
    let connection = match &q.connection {
        Some(c) => ConnectionName::parse(c)?,
        None => ConnectionName::default_name(),
    };
    d.connections()
        .export(&p, q.provider.as_deref(), &connection)
        .await
        .map(Json)
}

async fn providers(State(d): State<Arc<Services>>) -> Json<Vec<crate::providers::ProviderDef>> {
    Json(
        d.catalogue()
            .list()
            .into_iter()
            .map(|(def, _)| def.as_ref().clone())
            .collect(),
    )
}

async fn register(
    State(d): State<Arc<Services>>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, Error> {
    d.providers().register(req).await.map(Json)
}

async fn inspect(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path(provider): Path<String>,
) -> Result<Json<InspectResponse>, Error> {
    d.connections().inspect(&p, &provider).await.map(Json)
}

async fn remove(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path(provider): Path<String>,
) -> Result<Json<RemoveResponse>, Error> {
    d.connections().remove(&p, &provider).await.map(Json)
}

async fn begin_login(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    d.logins().begin_login(&p, req).await.map(Json)
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    #[serde(default)]
    wait: u64,
    #[serde(default)]
    after: Option<String>,
}

async fn login_status(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<LoginResponse>, Error> {
    let after = q.after.as_deref().unwrap_or("needs_input");
    d.logins()
        .login_status(&id, after, Duration::from_secs(q.wait.min(60)))
        .await
        .map(Json)
}

async fn cancel_login(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    d.logins().cancel_login(&id).map(|_| StatusCode::NO_CONTENT)
}

async fn login_input(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Json<LoginResponse>, Error> {
    d.logins().submit_login_input(&id, &input.values).await?;
    d.logins()
        .login_status(&id, "", Duration::ZERO)
        .await
        .map(Json)
}

async fn profiles(State(d): State<Arc<Services>>) -> Result<Json<Vec<String>>, Error> {
    Ok(Json(
        d.home()
            .list_profiles()?
            .iter()
            .map(|p| p.to_string())
            .collect(),
    ))
}

async fn create_profile(
    State(d): State<Arc<Services>>,
    ApiJson(req): ApiJson<CreateProfile>,
) -> Result<StatusCode, Error> {
    d.connections()
        .create_profile(&req.name)
        .await
        .map(|_| StatusCode::CREATED)
}

async fn begin_run(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<RunRequest>,
) -> Result<Json<RunResponse>, Error> {
    d.runs().begin_run(&p, req).await.map(Json)
}

async fn approve(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApprovalRequest>,
) -> Result<Response, Error> {
    let grant = d
        .runs()
        .decide(&id, &req.provider, true, req.scope, req.seconds)
        .await?;
    Ok(match grant {
        Some(g) => (StatusCode::OK, Json(g)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn deny(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApprovalRequest>,
) -> Result<StatusCode, Error> {
    d.runs()
        .decide(&id, &req.provider, false, req.scope, None)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

async fn add_mcp_server(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<McpAddRequest>,
) -> Result<Json<McpAddResponse>, Error> {
    crate::mcp::add_server(&d, &p, req).await.map(Json)
}

async fn list_grants(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
) -> Result<Json<Vec<GrantView>>, Error> {
    d.runs().grants(&p).await.map(Json)
}

async fn revoke_grant(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, Error> {
    d.runs().revoke_grant(&p, &id).await.map(Json)
}

async fn end_run(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RunEnd>,
) -> Result<Json<RunSummary>, Error> {
    d.runs().end_run(&id, req.exit_code).map(Json)
}

async fn watch_run(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RunPid>,
) -> Result<StatusCode, Error> {
    d.runs()
        .watch_run(&id, req.pid)
        .map(|_| StatusCode::NO_CONTENT)
}

/// A request's headers must arrive within this long, and a keep-alive
/// connection that sends nothing is closed after it too (slowloris).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections the API serves at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;

/// Serves `app` on `listener` until `shutdown`, then lets open requests
/// finish (10 s at most). Unlike `axum::serve`, every connection gets the
/// header timeout, and at most [`MAX_CONNECTIONS`] are served at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("API accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                tracing::debug!("API connection ended: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
    }
    Ok(())
}
