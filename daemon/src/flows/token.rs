//! Token endpoint requests, spoken through the `oauth2` crate: the code
//! exchange, refresh, and the device grant (authorization and polling);
//! and revocation (RFC 7009). The crate builds each request (client authentication, PKCE
//! verifier, grant parameters) and reads the answer; [`Transport`] carries
//! it over the daemon's HTTP client and smooths what real providers send
//! into what the crate reads:
//!
//! - bodies above [`crate::flows::oauth::MAX_RESPONSE_BYTES`] are refused, redirects never followed;
//! - a form-encoded answer (GitHub without `Accept: application/json`) becomes JSON;
//! - `expires_in` as a string or a fraction becomes whole seconds, clamped;
//! - a missing `token_type` is `bearer`; an OAuth error sent with `200` is an error;
//! - `5xx` and `429` are transient (the device grant keeps polling through them);
//! - a provider that wants device token requests as JSON gets JSON;
//! - the debug log sees each request with its secrets replaced by `***`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenType};
use oauth2::http::{header, HeaderValue, StatusCode};
use oauth2::{
    AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, DeviceAuthorizationUrl,
    DeviceCodeErrorResponse, EndpointNotSet, EndpointSet, ExtraTokenFields, HttpRequest,
    HttpResponse, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroize;

use crate::flows::oauth::{
    describe_reqwest, parse_body, read_body, redact, seconds_field, TokenError, TokenSet,
    SECRET_KEYS,
};
use crate::providers::{ClientAuth, DeviceTokenFormat};
use crate::secret::Secret;
use crate::vault::ClientRecord;

/// The OpenID Connect ID token, the one field beyond RFC 6749 kept.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct IdToken {
    /// `id_token`, when the provider sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdToken {}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdToken")
            .field("id_token", &self.id_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A token response as the crate reads it.
pub type Tokens = StandardTokenResponse<IdToken, BasicTokenType>;

/// The crate's client with a token endpoint set.
type OAuthClient<HasDeviceUrl = EndpointNotSet, HasRevocationUrl = EndpointNotSet> = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    oauth2::basic::BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    HasDeviceUrl,
    EndpointNotSet,
    HasRevocationUrl,
    EndpointSet,
>;

/// A grant the token endpoint is asked to redeem.
pub enum Grant<'a> {
    /// An authorization code, with its PKCE verifier and redirect URI.
    Code {
        /// The code from the callback.
        code: &'a str,
        /// The PKCE verifier, when the login used one.
        verifier: Option<&'a Secret>,
        /// The redirect URI the code was issued for.
        redirect_uri: &'a str,
    },
    /// A refresh token.
    Refresh(&'a Secret),
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::Code { redirect_uri, .. } => f
                .debug_struct("Code")
                .field("code", &"***")
                .field("redirect_uri", redirect_uri)
                .finish_non_exhaustive(),
            Grant::Refresh(_) => f.write_str("Refresh(***)"),
        }
    }
}

/// Why the transport could not bring back an answer the crate should read.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Unreachable, timed out, or `5xx`/`429` without an OAuth error.
    #[error("{0}")]
    Transient(String),
    /// An answer that is neither tokens nor an OAuth error.
    #[error("{0}")]
    Malformed(String),
}

/// The daemon's HTTP client as the crate's transport.
#[derive(Debug)]
pub struct Transport<'a> {
    http: &'a reqwest::Client,
    /// Send the form parameters as a JSON object (device token requests of
    /// providers that want it).
    json_body: bool,
    /// Device token polling: an answer that is neither tokens nor an OAuth
    /// error ends the polling (the crate would otherwise retry it as it
    /// retries an unreachable server).
    device_poll: bool,
    /// The HTTP status of the last answer, for errors.
    status: AtomicU16,
}

impl<'a> Transport<'a> {
    /// A transport over `http`.
    pub fn new(http: &'a reqwest::Client) -> Transport<'a> {
        Transport {
            http,
            json_body: false,
            device_poll: false,
            status: AtomicU16::new(0),
        }
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let (parts, body) = req.into_parts();
        let url = parts.uri.to_string();
        let mut form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        tracing::debug!(url, body = %redacted(&form), "token endpoint request");
        let mut builder = self.http.request(parts.method, &url);
        for (name, value) in &parts.headers {
            if self.json_body && name == header::CONTENT_TYPE {
                continue;
            }
            builder = builder.header(name, value);
        }
        builder = if self.json_body {
            let mut map: serde_json::Map<String, Value> = form
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let b = builder.json(&map);
            wipe(&mut map);
            b
        } else {
            builder.body(body)
        };
        for (_, v) in form.iter_mut() {
            v.zeroize();
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| TransportError::Transient(describe_reqwest(&e)))?;
        let status = resp.status().as_u16();
        self.status.store(status, Ordering::Relaxed);
        let raw =
            zeroize::Zeroizing::new(read_body(resp).await.map_err(TransportError::Transient)?);
        let mut parsed = parse_body(&raw);
        let mut out = normalise(&url, status, parsed.as_ref(), raw.len());
        if let Some(map) = &mut parsed {
            wipe(map);
        }
        if let (true, Err(TransportError::Malformed(why))) = (self.device_poll, &out) {
            out = Ok(json_response(
                400,
                &serde_json::json!({"error": "invalid_response", "error_description": why}),
            ));
        }
        out
    }
}

impl<'c> AsyncHttpClient<'c> for Transport<'_> {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What the crate gets for an answer: an OAuth error (the status kept when
/// it says so, `400` when it does not), tokens as `200` JSON with whole
/// seconds and a token type, or a transport error.
fn normalise(
    url: &str,
    status: u16,
    parsed: Option<&serde_json::Map<String, Value>>,
    bytes: usize,
) -> Result<HttpResponse, TransportError> {
    if let Some(map) = parsed {
        if let Some(code) = text(map, "error") {
            let shown = redact(&Value::Object(map.clone()));
            tracing::debug!(url, status, response = %shown, "token endpoint refused");
            let mut err = serde_json::Map::new();
            err.insert("error".into(), Value::String(short(&code)));
            if let Some(d) = text(map, "error_description") {
                err.insert("error_description".into(), Value::String(short(&d)));
            }
            let status = if (400..500).contains(&status) {
                status
            } else {
                400
            };
            return Ok(json_response(status, &Value::Object(err)));
        }
    }
    if status >= 500 || status == 429 {
        tracing::debug!(url, status, "token endpoint unavailable");
        return Err(TransportError::Transient(format!(
            "the token endpoint answered HTTP {status}"
        )));
    }
    if !(200..300).contains(&status) {
        // Not the body: an unexpected answer may carry anything, tokens included.
        tracing::debug!(url, status, body_bytes = bytes, "token endpoint refused");
        return Err(TransportError::Malformed(format!(
            "the token endpoint answered HTTP {status}"
        )));
    }
    let Some(map) = parsed else {
        return Err(TransportError::Malformed(
            "the token endpoint did not answer with JSON".into(),
        ));
    };
    let mut out = map.clone();
    if out.contains_key("device_code") {
        // A device authorization answer: whole seconds (15 minutes when
        // not said), the rest as sent.
        for (key, default) in [("expires_in", Some(900)), ("interval", None)] {
            match seconds_field(map, key).filter(|s| *s > 0).or(default) {
                Some(s) => out.insert(key.into(), Value::from(s)),
                None => out.remove(key),
            };
        }
        let r = Ok(json_response(200, &Value::Object(out.clone())));
        wipe(&mut out);
        return r;
    }
    let access = text(map, "access_token").ok_or_else(|| {
        TransportError::Malformed("the token response has no access_token".into())
    })?;
    if access.chars().any(char::is_control) || access.len() > 16 * 1024 {
        return Err(TransportError::Malformed(
            "the access token is malformed".into(),
        ));
    }
    match seconds_field(map, "expires_in") {
        Some(s) => out.insert("expires_in".into(), Value::from(s)),
        None => out.remove("expires_in"),
    };
    if !matches!(out.get("token_type"), Some(Value::String(t)) if !t.is_empty()) {
        out.insert("token_type".into(), Value::String("bearer".into()));
    }
    if text(map, "refresh_token").is_none_or(|r| r.chars().any(char::is_control)) {
        out.remove("refresh_token");
    }
    for key in ["id_token", "scope"] {
        if text(map, key).is_none() {
            out.remove(key);
        }
    }
    let r = Ok(json_response(200, &Value::Object(out.clone())));
    wipe(&mut out);
    r
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    let mut resp = HttpResponse::new(serde_json::to_vec(body).unwrap_or_default());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn text(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Form parameters with secret values replaced, for the debug log.
fn redacted(form: &[(String, String)]) -> String {
    form.iter()
        .map(|(k, v)| {
            if SECRET_KEYS.contains(&k.as_str()) {
                format!("{k}=***")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Zeroizes every string in a JSON object that held tokens or secrets.
fn wipe(map: &mut serde_json::Map<String, Value>) {
    fn wipe_value(v: &mut Value) {
        match v {
            Value::String(s) => s.zeroize(),
            Value::Array(a) => a.iter_mut().for_each(wipe_value),
            Value::Object(o) => o.values_mut().for_each(wipe_value),
            _ => {}
        }
    }
    map.values_mut().for_each(wipe_value);
}

fn invalid(what: &str, url: &str, e: impl std::fmt::Display) -> TokenError {
    TokenError::Malformed(format!("the {what} {url:?} is not a URL: {e}"))
}

/// The crate's client for a stored client and token endpoint.
fn client(
    client: &ClientRecord,
    auth: ClientAuth,
    token_url: &str,
) -> Result<OAuthClient, TokenError> {
    let mut c = oauth2::Client::new(ClientId::new(client.client_id.clone()))
        .set_token_uri(
            TokenUrl::new(token_url.to_string()).map_err(|e| invalid("token_url", token_url, e))?,
        )
        .set_auth_type(match auth {
            ClientAuth::Basic => oauth2::AuthType::BasicAuth,
            ClientAuth::Body => oauth2::AuthType::RequestBody,
        });
    if let Some(secret) = &client.client_secret {
        c = c.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    Ok(c)
}

/// What a failed request becomes: the OAuth error code, or what went wrong
/// (never a body: it may hold tokens).
fn token_error<TE: oauth2::ErrorResponse>(
    e: RequestTokenError<TransportError, TE>,
    status: u16,
    code: impl Fn(&TE) -> (String, Option<String>),
) -> TokenError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let (code, description) = code(&r);
            TokenError::Oauth {
                code,
                description,
                status,
            }
        }
        RequestTokenError::Request(TransportError::Transient(s)) => TokenError::Transient(s),
        RequestTokenError::Request(TransportError::Malformed(s)) => TokenError::Malformed(s),
        RequestTokenError::Parse(e, _) => TokenError::Malformed(format!(
            "the token endpoint's answer could not be read (at {})",
            e.path()
        )),
        RequestTokenError::Other(s) => TokenError::Malformed(short(&s)),
    }
}

fn basic_code(r: &BasicErrorResponse) -> (String, Option<String>) {
    (
        r.error().as_ref().to_string(),
        r.error_description().map(|d| short(d)),
    )
}

/// Our view of the crate's tokens.
fn token_set(t: &Tokens) -> TokenSet {
    TokenSet {
        access_token: Secret::new(t.access_token().secret().clone()),
        refresh_token: t.refresh_token().map(|r| Secret::new(r.secret().clone())),
        id_token: t.extra_fields().id_token.clone().map(Secret::new),
        expires_in: t.expires_in().map(|d| d.as_secs() as i64),
        scope: t
            .scopes()
            .map(|s| short(&s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))),
    }
}

/// Redeems a grant at the token endpoint. `extra` adds parameters such as
/// the RFC 8707 `resource`.
pub async fn token_request(
    http: &reqwest::Client,
    token_url: &str,
    record: &ClientRecord,
    auth: ClientAuth,
    grant: Grant<'_>,
    extra: &[(&'static str, String)],
) -> Result<TokenSet, TokenError> {
    let c = client(record, auth, token_url)?;
    let transport = Transport::new(http);
    let result = match grant {
        Grant::Code {
            code,
            verifier,
            redirect_uri,
        } => {
            let redirect = RedirectUrl::new(redirect_uri.to_string())
                .map_err(|e| invalid("redirect URI", redirect_uri, e))?;
            let mut req = c
                .exchange_code(AuthorizationCode::new(code.to_string()))
                .set_redirect_uri(Cow::Owned(redirect));
            if let Some(v) = verifier {
                req = req.set_pkce_verifier(PkceCodeVerifier::new(v.expose().to_string()));
            }
            for (k, v) in extra {
                req = req.add_extra_param(*k, v.clone());
            }
            req.request_async(&transport).await
        }
        Grant::Refresh(token) => {
            let token = RefreshToken::new(token.expose().to_string());
            let mut req = c.exchange_refresh_token(&token);
            for (k, v) in extra {
                req = req.add_extra_param(*k, v.clone());
            }
            req.request_async(&transport).await
        }
    };
    let status = transport.status.load(Ordering::Relaxed);
    result
        .map(|t| token_set(&t))
        .map_err(|e| token_error(e, status, basic_code))
}

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    /// The crate's view, which polling redeems (it holds the device code).
    pub response: StandardDeviceAuthorizationResponse,
    /// Code the person enters.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// URL carrying the code.
    pub verification_uri_complete: Option<String>,
    /// Lifetime in seconds (at most an hour; 15 minutes when not said).
    pub expires_in: i64,
    /// Polling interval in seconds (1 to 60; 5 when not said).
    pub interval: u64,
}

fn clean(s: &str) -> Option<String> {
    (!s.is_empty() && !s.chars().any(char::is_control)).then(|| s.chars().take(2048).collect())
}

/// Asks the device authorization endpoint for a user code.
pub async fn device_authorize(
    http: &reqwest::Client,
    device_url: &str,
    token_url: &str,
    record: &ClientRecord,
    auth: ClientAuth,
    scopes: &[String],
    resource: Option<&str>,
) -> Result<DeviceAuthorization, TokenError> {
    let c = client(record, auth, token_url)?.set_device_authorization_url(
        DeviceAuthorizationUrl::new(device_url.to_string())
            .map_err(|e| invalid("device_authorization_url", device_url, e))?,
    );
    let transport = Transport::new(http);
    let mut req = c
        .exchange_device_code()
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
    if let Some(r) = resource {
        req = req.add_extra_param("resource", r.to_string());
    }
    let response: StandardDeviceAuthorizationResponse = req
        .request_async(&transport)
        .await
        .map_err(|e| token_error(e, transport.status.load(Ordering::Relaxed), basic_code))?;
    let missing =
        |f: &str| TokenError::Malformed(format!("the device authorization response has no {f}"));
    let user_code = clean(response.user_code().secret()).ok_or_else(|| missing("user_code"))?;
    let verification_uri =
        clean(response.verification_uri().as_str()).ok_or_else(|| missing("verification_uri"))?;
    let verification_uri_complete = response
        .verification_uri_complete()
        .and_then(|u| clean(u.secret()));
    let expires_in = (response.expires_in().as_secs() as i64).clamp(1, 3600);
    let interval = response.interval().as_secs().clamp(1, 60);
    Ok(DeviceAuthorization {
        response,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in,
        interval,
    })
}

/// How polling ended without tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollFailure {
    /// The person denied the request.
    Denied,
    /// The code expired first.
    Expired,
    /// Another OAuth error, or an answer that is not one.
    Refused(String),
}

/// Polls the token endpoint until the person approves, denies, or the
/// code expires: `authorization_pending` waits the interval, `slow_down`
/// adds 5 s (§3.5), and an unreachable or overloaded endpoint is retried
/// with a growing pause, until the code expires.
pub async fn device_poll(
    http: &reqwest::Client,
    token_url: &str,
    record: &ClientRecord,
    auth: ClientAuth,
    device: &DeviceAuthorization,
    format: DeviceTokenFormat,
) -> Result<TokenSet, PollFailure> {
    let c = client(record, auth, token_url).map_err(|e| PollFailure::Refused(e.reason()))?;
    let transport = Transport {
        json_body: format == DeviceTokenFormat::Json,
        device_poll: true,
        ..Transport::new(http)
    };
    // The answer's interval and lifetime, as clamped for the person.
    let response: StandardDeviceAuthorizationResponse = serde_json::from_value(serde_json::json!({
        "device_code": device.response.device_code().secret(),
        "user_code": device.user_code,
        "verification_uri": device.verification_uri,
        "expires_in": device.expires_in,
        "interval": device.interval,
    }))
    .map_err(|_| PollFailure::Refused("the device authorization could not be read".into()))?;
    let result = c
        .exchange_device_access_token(&response)
        .set_max_backoff_interval(Duration::from_secs(30))
        .request_async(
            &transport,
            tokio::time::sleep,
            Some(Duration::from_secs(device.expires_in as u64)),
        )
        .await;
    match result {
        Ok(t) => Ok(token_set(&t)),
        Err(RequestTokenError::ServerResponse(r)) => Err(device_failure(&r)),
        Err(e) => Err(PollFailure::Refused(
            token_error::<DeviceCodeErrorResponse>(e, 0, |_| (String::new(), None)).reason(),
        )),
    }
}

fn device_failure(r: &DeviceCodeErrorResponse) -> PollFailure {
    use oauth2::DeviceCodeErrorResponseType as T;
    match r.error() {
        T::AccessDenied => PollFailure::Denied,
        T::ExpiredToken => PollFailure::Expired,
        other => PollFailure::Refused(match r.error_description() {
            Some(d) if other.as_ref() == "invalid_response" => short(d),
            _ => short(other.as_ref()),
        }),
    }
}

/// Asks the revocation endpoint (RFC 7009) to revoke a token. Sent by
/// hand: the crate refuses revocation over plain http even on loopback,
/// where the daemon allows it (a local provider, the tests' fake).
pub async fn revoke(
    http: &reqwest::Client,
    revocation_url: &str,
    record: &ClientRecord,
    auth: ClientAuth,
    hint: &str,
    token: &Secret,
) -> Result<(), TokenError> {
    let mut form: Vec<(&str, zeroize::Zeroizing<String>)> = vec![
        ("token", zeroize::Zeroizing::new(token.expose().to_string())),
        ("token_type_hint", zeroize::Zeroizing::new(hint.to_string())),
    ];
    let mut req = http.post(revocation_url);
    match (auth, &record.client_secret) {
        (ClientAuth::Basic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let raw = zeroize::Zeroizing::new(format!(
                "{}:{}",
                enc(&record.client_id),
                *zeroize::Zeroizing::new(enc(secret.expose()))
            ));
            let header = zeroize::Zeroizing::new(format!(
                "Basic {}",
                *zeroize::Zeroizing::new(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    raw.as_bytes()
                ))
            ));
            req = req.header(reqwest::header::AUTHORIZATION, header.as_str());
        }
        (_, secret) => {
            form.push((
                "client_id",
                zeroize::Zeroizing::new(record.client_id.clone()),
            ));
            if let Some(s) = secret {
                form.push((
                    "client_secret",
                    zeroize::Zeroizing::new(s.expose().to_string()),
                ));
            }
        }
    }
    let shown: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tracing::debug!(url = revocation_url, body = %redacted(&shown), "revocation request");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = req
        .form(&pairs)
        .send()
        .await
        .map_err(|e| TokenError::Transient(describe_reqwest(&e)))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(TokenError::Malformed(format!(
            "the provider answered HTTP {status}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn body(r: HttpResponse) -> Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    #[test]
    fn provider_quirks_become_what_the_crate_reads() {
        // expires_in as a string, no token_type.
        let r = normalise(
            "u",
            200,
            Some(&map(
                serde_json::json!({"access_token": "a", "expires_in": "3600"}),
            )),
            0,
        )
        .unwrap();
        assert_eq!(r.status(), 200);
        let b = body(r);
        assert_eq!(b["expires_in"], 3600);
        assert_eq!(b["token_type"], "bearer");
        // A fraction, an empty refresh token, an empty scope.
        let b = body(
            normalise(
                "u",
                200,
                Some(&map(serde_json::json!({
                    "access_token": "a", "token_type": "Bearer", "expires_in": 59.9,
                    "refresh_token": "", "scope": ""
                }))),
                0,
            )
            .unwrap(),
        );
        assert_eq!(b["expires_in"], 59);
        assert!(b.get("refresh_token").is_none() && b.get("scope").is_none());
        // An OAuth error sent with 200 (GitHub) is an error; 401 keeps its status.
        let r = normalise(
            "u",
            200,
            Some(&map(serde_json::json!({"error": "bad_verification_code"}))),
            0,
        )
        .unwrap();
        assert_eq!(r.status(), 400);
        let r = normalise(
            "u",
            401,
            Some(&map(serde_json::json!({"error": "invalid_client"}))),
            0,
        )
        .unwrap();
        assert_eq!(r.status(), 401);
        // Overload is transient, other failures are not tokens.
        assert!(matches!(
            normalise("u", 503, None, 0),
            Err(TransportError::Transient(_))
        ));
        assert!(matches!(
            normalise("u", 302, None, 0),
            Err(TransportError::Malformed(_))
        ));
        assert!(matches!(
            normalise("u", 200, Some(&map(serde_json::json!({"token_type": "bearer"}))), 0),
            Err(TransportError::Malformed(m)) if m.contains("no access_token")
        ));
        assert!(matches!(
            normalise(
                "u",
                200,
                Some(&map(serde_json::json!({"access_token": "a\nb"}))),
                0
            ),
            Err(TransportError::Malformed(_))
        ));
    }

    #[test]
    fn the_form_body_goes_to_the_log_without_secrets() {
        let form = vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("refresh_token".to_string(), "rt-secret".to_string()),
            ("client_secret".to_string(), "cs-secret".to_string()),
        ];
        let line = redacted(&form);
        assert!(
            !line.contains("secret\"")
                && !line.contains("rt-secret")
                && !line.contains("cs-secret")
        );
        assert!(line.contains("grant_type=refresh_token"));
    }
}
