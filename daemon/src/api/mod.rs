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
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The API's router over a daemon: `/health`, the bridge pages and the
/// OAuth callback, and the token-guarded `/v1` routes of [`openapi`].
pub fn router(services: Arc<Services>) -> Router {
    let (v1, _) = v1().split_for_parts();
    Router::new()
        .route("/health", get(health))
        .merge(v1)
        .route("/bridge/{id}", get(bridge::page).post(bridge::submit))
        .route("/bridge/launch/{token}", get(bridge::launch))
        .route(crate::OAUTH_CALLBACK_PATH, get(bridge::oauth_callback))
        .fallback(|| async { Error::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(services.clone(), guard))
        .with_state(services)
}

/// Every `/v1` route, registered with its description: the router and the
/// OpenAPI document come from the same list, so neither has a route the
/// other lacks.
fn v1() -> OpenApiRouter<Arc<Services>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .routes(routes!(status))
        .routes(routes!(shutdown))
        .routes(routes!(list))
        .routes(routes!(get_connection))
        .routes(routes!(credential_headers))
        .routes(routes!(refresh_rejected))
        .routes(routes!(revoke))
        .routes(routes!(export))
        .routes(routes!(providers, register))
        .routes(routes!(inspect))
        .routes(routes!(remove))
        .routes(routes!(begin_login))
        .routes(routes!(login_status, cancel_login))
        .routes(routes!(login_input))
        .routes(routes!(profiles, create_profile))
        .routes(routes!(events))
        .routes(routes!(begin_run, list_runs))
        .routes(routes!(watch_run))
        .routes(routes!(end_run))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(list_grants))
        .routes(routes!(revoke_grant))
        .routes(routes!(add_mcp_server))
        .routes(routes!(import_keys))
        .routes(routes!(backup))
        .routes(routes!(restore))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Authsome daemon API",
        description = "The local API of the Authsome daemon, on 127.0.0.1 only. Every /v1 route \
                       needs `Authorization: Bearer <token>` with the token from `daemon.token` in \
                       the Authsome home; `X-Authsome-Profile` picks a profile other than the \
                       default. Before sending the token, check the daemon with \
                       `GET /health?challenge=<nonce>`: its `proof` is hex HMAC-SHA256, keyed with \
                       the token, over `authsome-daemon-proof\\n<port>\\n<nonce>`.",
        license(name = "MIT")
    ),
    modifiers(&TokenScheme)
)]
struct ApiDoc;

/// The bearer token every `/v1` route needs.
struct TokenScheme;

impl utoipa::Modify for TokenScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The OpenAPI 3.1 document of every `/v1` route, generated from the
/// handlers and the wire types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = v1().into_openapi();
    doc.info.version = crate::VERSION.into();
    doc
}

#[utoipa::path(get, path = "/v1/openapi.json", summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document of the /v1 routes", content_type = "application/json")),
    security(("token" = [])))]
async fn openapi_json() -> Response {
    static DOC: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        openapi()
            .to_json()
            .expect("the OpenAPI document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], DOC.as_str()).into_response()
}

/// `GET /v1/events`: the daemon's events as Server-Sent Events, each a JSON
/// object named by its `type`, until the client or the daemon goes.
#[utoipa::path(get, path = "/v1/events", summary = "The daemon's events as Server-Sent Events, each named by its type", responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = crate::events::Event)), security(("token" = [])))]
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

#[utoipa::path(get, path = "/v1/runs", summary = "The live runs", responses((status = 200, body = Vec<RunInfo>)), security(("token" = [])))]
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

#[utoipa::path(get, path = "/v1/status", summary = "The daemon, key backend, connections by state, runs", responses((status = 200, body = StatusResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn status(State(d): State<Arc<Services>>) -> Result<Json<StatusResponse>, Error> {
    d.status().await.map(Json)
}

#[utoipa::path(post, path = "/v1/shutdown", summary = "Stop the daemon", responses((status = 202, description = "Stopping")), security(("token" = [])))]
async fn shutdown(State(d): State<Arc<Services>>) -> StatusCode {
    d.request_shutdown();
    StatusCode::ACCEPTED
}

#[utoipa::path(get, path = "/v1/connections", summary = "Every provider and its connections in the profile", responses((status = 200, body = ListResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn list(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
) -> Result<Json<ListResponse>, Error> {
    d.connections().list(&p).await.map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GetQuery {
    /// Include the secret values (audited as `get`); else they are `***`.
    #[serde(default)]
    show_secret: bool,
    /// With `show_secret`, only these fields (comma-separated, such as
    /// `access_token,api_key`); the others stay `***`.
    #[serde(default)]
    fields: Option<String>,
}

#[utoipa::path(get, path = "/v1/connections/{provider}/{connection}", summary = "One connection, refreshed first when due; secrets only with show_secret", params(("provider" = String, Path, description = "Provider name"), ("connection" = String, Path, description = "Connection name"), GetQuery), responses((status = 200, body = ConnectionView), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn get_connection(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path((provider, connection)): Path<(String, String)>,
    Query(q): Query<GetQuery>,
) -> Result<Json<ConnectionView>, Error> {
    let connection = ConnectionName::parse(&connection)?;
    let mut view = d
        .connections()
        .get(
            &p,
            &provider,
            &connection,
            crate::vault::store::Reveal::when(q.show_secret),
        )
        .await?;
    if let Some(fields) = &q.fields {
        let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
        reveal_only(&mut view, &wanted);
    }
    Ok(Json(view))
}

/// Masks every secret of `view` but the `wanted` fields.
fn reveal_only(view: &mut ConnectionView, wanted: &[&str]) {
    for (name, value) in view.secrets.iter_mut() {
        if !wanted.contains(&name.as_str()) {
            *value = "***".into();
        }
    }
}

#[utoipa::path(get, path = "/v1/connections/{provider}/{connection}/headers",
    summary = "The header the proxy would add for this connection (refreshed first when due)",
    params(("provider" = String, Path, description = "Provider name"), ("connection" = String, Path, description = "Connection name")),
    responses((status = 200, body = HeadersResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)),
    security(("token" = [])))]
async fn credential_headers(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path((provider, connection)): Path<(String, String)>,
) -> Result<Json<HeadersResponse>, Error> {
    let connection = ConnectionName::parse(&connection)?;
    let (def, _) = d.catalogue().get(&provider)?;
    let (_, value) = d
        .runs()
        .credential_header(&p, &provider, &connection)
        .await?;
    // The name as the provider spells it (the proxy's is lower case).
    let name = crate::proxy::credential_header_name(&def);
    let value = value
        .to_str()
        .map_err(|_| {
            Error::InvalidProvider(format!("{provider}: the credential is not a header value"))
        })?
        .to_string();
    d.audit(
        crate::audit::AuditEvent::new("get")
            .about(p.as_str(), &provider, Some(connection.as_str()))
            .detail("auth headers shown"),
    );
    Ok(Json(HeadersResponse {
        headers: std::collections::BTreeMap::from([(name, value)]),
    }))
}

#[utoipa::path(post, path = "/v1/connections/{provider}/{connection}/refresh", summary = "A server refused this token: refresh it once for every caller that met it", params(("provider" = String, Path, description = "Provider name"), ("connection" = String, Path, description = "Connection name")), request_body = RefreshRequest, responses((status = 200, body = ConnectionView), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn refresh_rejected(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path((provider, connection)): Path<(String, String)>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<ConnectionView>, Error> {
    let connection = ConnectionName::parse(&connection)?;
    let mut view = d
        .connections()
        .after_rejection(&p, &provider, &connection, &req.rejected_sha256)
        .await?;
    // The caller sends the credential again; the refresh token stays here.
    reveal_only(&mut view, &["access_token", "api_key"]);
    Ok(Json(view))
}

#[utoipa::path(post, path = "/v1/connections/{provider}/{connection}/revoke", summary = "Delete a connection's credentials", params(("provider" = String, Path, description = "Provider name"), ("connection" = String, Path, description = "Connection name")), responses((status = 200, body = RevokeResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// One provider; without it, every connected provider.
    provider: Option<String>,
    /// The connection (default `default`).
    connection: Option<String>,
}

#[utoipa::path(get, path = "/v1/export", summary = "A connection's (or every connected provider's) credentials as environment variables", params(ExportQuery), responses((status = 200, body = ExportResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[utoipa::path(get, path = "/v1/providers", summary = "Every provider definition", responses((status = 200, body = Vec<crate::providers::ProviderDef>)), security(("token" = [])))]
async fn providers(State(d): State<Arc<Services>>) -> Json<Vec<crate::providers::ProviderDef>> {
    Json(
        d.catalogue()
            .list()
            .into_iter()
            .map(|(def, _)| def.as_ref().clone())
            .collect(),
    )
}

#[utoipa::path(post, path = "/v1/providers", summary = "Add a custom provider definition", request_body = RegisterRequest, responses((status = 200, body = RegisterResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn register(
    State(d): State<Arc<Services>>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, Error> {
    d.providers().register(req).await.map(Json)
}

#[utoipa::path(get, path = "/v1/providers/{provider}", summary = "A provider's definition and its connections", params(("provider" = String, Path, description = "Provider name")), responses((status = 200, body = InspectResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn inspect(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path(provider): Path<String>,
) -> Result<Json<InspectResponse>, Error> {
    d.connections().inspect(&p, &provider).await.map(Json)
}

#[utoipa::path(post, path = "/v1/providers/{provider}/remove", summary = "Delete all of a provider's state in the profile", params(("provider" = String, Path, description = "Provider name")), responses((status = 200, body = RemoveResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn remove(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path(provider): Path<String>,
) -> Result<Json<RemoveResponse>, Error> {
    d.connections().remove(&p, &provider).await.map(Json)
}

#[utoipa::path(post, path = "/v1/logins", summary = "Start a login", request_body = LoginRequest, responses((status = 200, body = LoginResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn begin_login(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    d.logins().begin_login(&p, req).await.map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Seconds to wait for the state to change (at most 60).
    #[serde(default)]
    wait: u64,
    /// The state the caller saw last (default `needs_input`).
    #[serde(default)]
    after: Option<String>,
}

#[utoipa::path(get, path = "/v1/logins/{id}", summary = "A login's state, waiting up to `wait` seconds for a change", params(("id" = String, Path, description = "Id"), WaitQuery), responses((status = 200, body = LoginResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[utoipa::path(delete, path = "/v1/logins/{id}", summary = "Cancel a login", params(("id" = String, Path, description = "Id")), responses((status = 204, description = "Cancelled"), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn cancel_login(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    d.logins().cancel_login(&id).map(|_| StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/logins/{id}/input", summary = "Supply a login's input (client credentials, API key)", params(("id" = String, Path, description = "Id")), request_body = LoginInput, responses((status = 200, body = LoginResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[utoipa::path(get, path = "/v1/profiles", summary = "The profiles", responses((status = 200, body = Vec<String>), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn profiles(State(d): State<Arc<Services>>) -> Result<Json<Vec<String>>, Error> {
    Ok(Json(
        d.home()
            .list_profiles()?
            .iter()
            .map(|p| p.to_string())
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/profiles", summary = "Create a profile", request_body = CreateProfile, responses((status = 201, description = "Created"), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn create_profile(
    State(d): State<Arc<Services>>,
    ApiJson(req): ApiJson<CreateProfile>,
) -> Result<StatusCode, Error> {
    d.connections()
        .create_profile(&req.name)
        .await
        .map(|_| StatusCode::CREATED)
}

#[utoipa::path(post, path = "/v1/runs", summary = "Start a run: its proxy credentials and environment", request_body = RunRequest, responses((status = 200, body = RunResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn begin_run(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<RunRequest>,
) -> Result<Json<RunResponse>, Error> {
    d.runs().begin_run(&p, req).await.map(Json)
}

#[utoipa::path(post, path = "/v1/runs/{id}/approve", summary = "Let a run's held requests to a provider go on", params(("id" = String, Path, description = "Id")), request_body = ApprovalRequest, responses((status = 200, description = "A lease was given", body = GrantView), (status = 204, description = "Approved"), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[utoipa::path(post, path = "/v1/runs/{id}/deny", summary = "Refuse a run's held requests to a provider", params(("id" = String, Path, description = "Id")), request_body = ApprovalRequest, responses((status = 204, description = "Denied"), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[utoipa::path(post, path = "/v1/backup",
    summary = "Write every profile's connections, client credentials, custom providers and settings to an age file encrypted with a passphrase",
    request_body = BackupRequest,
    responses((status = 200, body = BackupSummary), (status = "4XX", description = "An error with a stable code", body = ErrorBody)),
    security(("token" = [])))]
async fn backup(
    State(d): State<Arc<Services>>,
    ApiJson(req): ApiJson<BackupRequest>,
) -> Result<Json<BackupSummary>, Error> {
    crate::backup::backup(
        &d,
        std::path::Path::new(&req.path),
        &req.passphrase,
        req.force,
    )
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/v1/restore",
    summary = "Read a backup into this home (what it lacks; with force, also what it has)",
    request_body = RestoreRequest,
    responses((status = 200, body = RestoreSummary), (status = "4XX", description = "An error with a stable code", body = ErrorBody)),
    security(("token" = [])))]
async fn restore(
    State(d): State<Arc<Services>>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> Result<Json<RestoreSummary>, Error> {
    crate::backup::restore(
        &d,
        std::path::Path::new(&req.path),
        &req.passphrase,
        req.force,
    )
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/v1/import",
    summary = "Store API keys found in .env files or the environment (or, with dry_run, say what would happen)",
    request_body = ImportRequest,
    responses((status = 200, body = ImportResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)),
    security(("token" = [])))]
async fn import_keys(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<Json<ImportResponse>, Error> {
    crate::import::import(&d, &p, req).await.map(Json)
}

#[utoipa::path(post, path = "/v1/mcp/servers", summary = "Add a remote MCP server as a provider", request_body = McpAddRequest, responses((status = 200, body = McpAddResponse), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn add_mcp_server(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    ApiJson(req): ApiJson<McpAddRequest>,
) -> Result<Json<McpAddResponse>, Error> {
    crate::mcp::add_server(&d, &p, req).await.map(Json)
}

#[utoipa::path(get, path = "/v1/grants", summary = "The leases given with approve --for", responses((status = 200, body = Vec<GrantView>), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn list_grants(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
) -> Result<Json<Vec<GrantView>>, Error> {
    d.runs().grants(&p).await.map(Json)
}

#[utoipa::path(delete, path = "/v1/grants/{id}", summary = "End a lease", params(("id" = String, Path, description = "Id")), responses((status = 200, body = GrantView), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn revoke_grant(
    State(d): State<Arc<Services>>,
    Profile(p): Profile,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, Error> {
    d.runs().revoke_grant(&p, &id).await.map(Json)
}

#[utoipa::path(post, path = "/v1/runs/{id}/end", summary = "End a run", params(("id" = String, Path, description = "Id")), request_body = RunEnd, responses((status = 200, body = RunSummary), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
async fn end_run(
    State(d): State<Arc<Services>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RunEnd>,
) -> Result<Json<RunSummary>, Error> {
    d.runs().end_run(&id, req.exit_code).map(Json)
}

#[utoipa::path(post, path = "/v1/runs/{id}/pid", summary = "The process a run watches", params(("id" = String, Path, description = "Id")), request_body = RunPid, responses((status = 204, description = "Watching"), (status = "4XX", description = "An error with a stable code", body = ErrorBody)), security(("token" = [])))]
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

#[cfg(test)]
mod openapi_tests {
    use super::*;

    /// Every `/v1` route goes through [`v1`], where its description is
    /// registered with it: none is added to the router by hand.
    #[test]
    fn no_v1_route_is_added_without_its_description() {
        let source = include_str!("mod.rs");
        let by_hand = format!(".route({}/v1", '"');
        assert!(
            !source.contains(&by_hand),
            "a /v1 route added with .route()"
        );
        let doc = openapi();
        assert!(doc.paths.paths.len() >= 25, "{:?}", doc.paths.paths.keys());
        for (path, item) in &doc.paths.paths {
            assert!(path.starts_with("/v1/"), "{path}");
            for op in [&item.get, &item.post, &item.delete, &item.put, &item.patch]
                .into_iter()
                .flatten()
            {
                let security = serde_json::to_value(&op.security).unwrap();
                assert_eq!(security, serde_json::json!([{"token": []}]), "{path}");
            }
        }
    }

    /// Each example in the document is a valid value of its wire type.
    #[test]
    fn the_documents_examples_parse_as_the_wire_types() {
        fn parses<T: serde::de::DeserializeOwned>(example: &serde_json::Value) -> bool {
            serde_json::from_value::<T>(example.clone()).is_ok()
        }
        let doc = serde_json::to_value(openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut checked = 0;
        for (name, schema) in schemas {
            let Some(example) = schema.get("example").or_else(|| schema["examples"].get(0)) else {
                continue;
            };
            let ok = match name.as_str() {
                "ConnectionView" => parses::<ConnectionView>(example),
                "ListResponse" => parses::<ListResponse>(example),
                "ExportResponse" => parses::<ExportResponse>(example),
                "HealthResponse" => parses::<HealthResponse>(example),
                "RefreshRequest" => parses::<RefreshRequest>(example),
                "HeadersResponse" => parses::<HeadersResponse>(example),
                "ErrorBody" => parses::<ErrorBody>(example),
                other => panic!("{other} has an example this test does not check"),
            };
            assert!(ok, "the example of {name} does not parse: {example}");
            checked += 1;
        }
        assert!(checked >= 6, "{checked} examples checked");
    }
}
