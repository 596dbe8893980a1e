//! The device authorization grant (RFC 8628): ask for a user code, show it,
//! poll the token endpoint at the given interval, slow down when told.

use std::time::Duration;

use serde_json::Value;

use crate::flows::oauth::TokenBody;
use crate::flows::oauth::{
    authenticate, describe_reqwest, oauth_error, parse_body, read_body, seconds_field,
    token_request, TokenError, TokenSet,
};
use crate::providers::{ClientAuth, DeviceTokenFormat};
use crate::secret::Secret;
use crate::vault::ClientRecord;

/// The grant type of device token requests.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The answer of the device authorization endpoint (§3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    /// Device code (secret: it redeems the grant).
    pub device_code: Secret,
    /// Code the person enters.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// URL carrying the code.
    pub verification_uri_complete: Option<String>,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Polling interval in seconds.
    pub interval: u64,
}

fn text(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
        .map(|s| s.chars().take(2048).collect())
}

/// Requests a device code.
pub async fn authorize(
    http: &reqwest::Client,
    url: &str,
    client: &ClientRecord,
    auth: ClientAuth,
    scopes: &[String],
    resource: Option<&str>,
) -> Result<DeviceAuthorization, TokenError> {
    let mut params: Vec<(&'static str, String)> = Vec::new();
    if !scopes.is_empty() {
        params.push(("scope", scopes.join(" ")));
    }
    if let Some(r) = resource {
        params.push(("resource", r.to_string()));
    }
    let mut req = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json");
    req = authenticate(req, &mut params, client, auth);
    tracing::debug!(url, "device authorization request");
    let resp = req
        .form(&params)
        .send()
        .await
        .map_err(|e| TokenError::Transient(describe_reqwest(&e)))?;
    let status = resp.status().as_u16();
    let body = read_body(resp).await.map_err(TokenError::Transient)?;
    let map = parse_body(&body).ok_or_else(|| {
        TokenError::Malformed(format!(
            "the device endpoint answered HTTP {status} without JSON"
        ))
    })?;
    if let Some(e) = oauth_error(&map, status) {
        return Err(e);
    }
    if status >= 500 {
        return Err(TokenError::Transient(format!(
            "the device endpoint answered HTTP {status}"
        )));
    }
    let missing =
        |f: &str| TokenError::Malformed(format!("the device authorization response has no {f}"));
    Ok(DeviceAuthorization {
        device_code: Secret::new(text(&map, "device_code").ok_or_else(|| missing("device_code"))?),
        user_code: text(&map, "user_code").ok_or_else(|| missing("user_code"))?,
        // Google says verification_url.
        verification_uri: text(&map, "verification_uri")
            .or_else(|| text(&map, "verification_url"))
            .ok_or_else(|| missing("verification_uri"))?,
        verification_uri_complete: text(&map, "verification_uri_complete"),
        expires_in: seconds_field(&map, "expires_in")
            .filter(|s| *s > 0)
            .unwrap_or(900)
            .min(3600),
        interval: seconds_field(&map, "interval")
            .map(|s| s as u64)
            .unwrap_or(5)
            .clamp(1, 60),
    })
}

/// How polling ended without tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollFailure {
    /// The person denied the request.
    Denied,
    /// The code expired first.
    Expired,
    /// Another OAuth error.
    Refused(String),
}

/// Polls until the person approves, denies, or the code expires. Waits
/// `interval` between requests and adds 5 s on each `slow_down` (§3.5).
/// Network failures are retried until the code expires.
pub async fn poll(
    http: &reqwest::Client,
    token_url: &str,
    client: &ClientRecord,
    auth: ClientAuth,
    device: &DeviceAuthorization,
    format: DeviceTokenFormat,
) -> Result<TokenSet, PollFailure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(device.expires_in as u64);
    let mut interval = Duration::from_secs(device.interval);
    loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(PollFailure::Expired);
        }
        let params = vec![
            ("grant_type", GRANT_TYPE.to_string()),
            ("device_code", device.device_code.expose().to_string()),
        ];
        match token_request(
            http,
            token_url,
            client,
            auth,
            params,
            if format == DeviceTokenFormat::Json {
                TokenBody::Json
            } else {
                TokenBody::Form
            },
        )
        .await
        {
            Ok(tokens) => return Ok(tokens),
            Err(TokenError::Oauth { code, .. }) => match code.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                "access_denied" => return Err(PollFailure::Denied),
                "expired_token" => return Err(PollFailure::Expired),
                other => return Err(PollFailure::Refused(other.to_string())),
            },
            Err(TokenError::Transient(reason)) => {
                tracing::debug!("device polling: {reason}; retrying")
            }
            Err(TokenError::Malformed(reason)) => return Err(PollFailure::Refused(reason)),
        }
    }
}
