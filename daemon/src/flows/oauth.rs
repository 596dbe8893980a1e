//! What every OAuth flow shares: URL templates, endpoints, the HTTP client
//! (redirects off, bounded bodies), tolerant body parsing, token errors,
//! and redaction for the debug log. The token endpoint requests themselves
//! are in [`crate::flows::token`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::providers::OAuthSpec;
use crate::secret::Secret;

/// Largest response body read from a provider.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Error codes that mean the grant or the client is gone for good (RFC 6749 §5.2, RFC 8628 §3.5).
pub const REJECTION_CODES: &[&str] = &[
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "expired_token",
];

/// Keys whose values never reach a log.
pub const SECRET_KEYS: &[&str] = &[
    "code",
    "code_verifier",
    "client_secret",
    "refresh_token",
    "access_token",
    "id_token",
    "device_code",
    "token",
    "api_key",
];

/// The HTTP client for provider calls: no redirects (a token endpoint that
/// redirects is refusing, not moving), short timeouts, no cookies.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("authsome/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client")
}

/// The scopes of a `scope` value: separated by spaces (RFC 6749 §3.3) or,
/// as some providers send them, commas.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split([' ', ','])
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The OAuth block of an oauth2 provider.
pub fn spec(def: &crate::providers::ProviderDef) -> Result<&crate::providers::OAuthSpec> {
    def.oauth
        .as_ref()
        .ok_or_else(|| Error::InvalidProvider(format!("{} has no oauth block", def.name)))
}

/// Fills `{base_url}` in a URL template.
pub fn fill(template: &str, base_url: Option<&str>) -> Result<String> {
    if !template.contains("{base_url}") {
        return Ok(template.to_string());
    }
    let base = base_url.ok_or_else(|| {
        Error::InvalidInput(format!(
            "{template} needs a base URL; pass --base-url (for example https://github.example.com)"
        ))
    })?;
    // Checked again on every use (login, refresh, revoke, the proxy), not
    // only when it was given: a stored value decides where secrets go.
    let base = check_base_url(base)?;
    Ok(crate::providers::substitute(template, &base))
}

/// Checks a `--base-url`: an absolute https URL (plain http only on loopback).
pub fn check_base_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::InvalidInput(format!("base URL {url:?} is not a URL: {e}")))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(Error::InvalidInput(format!(
            "base URL {url:?} must use https (plain http only on loopback)"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::InvalidInput(format!(
            "base URL {url:?} must not carry a user name or password"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The endpoints of one login, templates filled.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorization_url: Option<String>,
    /// Token endpoint.
    pub token_url: String,
    /// Revocation endpoint.
    pub revocation_url: Option<String>,
    /// Device authorization endpoint.
    pub device_authorization_url: Option<String>,
    /// Registration endpoint.
    pub registration_endpoint: Option<String>,
}

impl Endpoints {
    /// The provider's endpoints with `{base_url}` filled.
    pub fn from_spec(spec: &OAuthSpec, base_url: Option<&str>) -> Result<Endpoints> {
        let opt = |v: &Option<String>| v.as_deref().map(|t| fill(t, base_url)).transpose();
        Ok(Endpoints {
            authorization_url: opt(&spec.authorization_url)?,
            token_url: fill(&spec.token_url, base_url)?,
            revocation_url: opt(&spec.revocation_url)?,
            device_authorization_url: opt(&spec.device_authorization_url)?,
            registration_endpoint: opt(&spec.registration_endpoint)?,
        })
    }
}

/// Tokens from a token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// Access token.
    pub access_token: Secret,
    /// Refresh token, when issued.
    pub refresh_token: Option<Secret>,
    /// OpenID Connect ID token.
    pub id_token: Option<Secret>,
    /// Lifetime in seconds, clamped to [0, 10 years].
    pub expires_in: Option<i64>,
    /// Granted scopes, when the server says.
    pub scope: Option<String>,
}

impl TokenSet {
    /// Absolute expiry.
    pub fn expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_in.map(|s| now + chrono::Duration::seconds(s))
    }
}

/// Why a token request failed.
#[derive(Debug, Clone)]
pub enum TokenError {
    /// The server answered with an OAuth error code.
    Oauth {
        /// `error`.
        code: String,
        /// `error_description`, if any (not a secret; bounded).
        description: Option<String>,
        /// HTTP status.
        status: u16,
    },
    /// The server could not be reached, timed out, or answered 5xx without an OAuth error.
    Transient(String),
    /// The server answered something that is not a token response.
    Malformed(String),
}

impl TokenError {
    /// The short reason shown to people: the OAuth code, or what went wrong.
    pub fn reason(&self) -> String {
        match self {
            TokenError::Oauth { code, .. } => code.clone(),
            TokenError::Transient(s) | TokenError::Malformed(s) => s.clone(),
        }
    }

    /// True when the error means the grant or client is gone for good.
    pub fn is_rejection(&self) -> bool {
        matches!(self, TokenError::Oauth { code, .. } if REJECTION_CODES.contains(&code.as_str()))
    }
}

/// Replaces secret values in a JSON value, recursively.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    if SECRET_KEYS.contains(&k.as_str()) {
                        (k.clone(), Value::String("***".into()))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Reads a response body up to [`MAX_RESPONSE_BYTES`].
pub async fn read_body(mut resp: reqwest::Response) -> std::result::Result<Vec<u8>, String> {
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
    {
        return Err("response too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the response failed: {e}"))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err("response too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A token or device response body as JSON (form-encoded bodies, as
/// GitHub sends without `Accept: application/json`, are accepted too).
pub fn parse_body(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return Some(map);
    }
    let text = std::str::from_utf8(body).ok()?;
    if text.trim_start().starts_with('<') || !text.contains('=') {
        return None;
    }
    let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(text.trim().as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    (!map.is_empty()).then_some(map)
}

/// `expires_in` as seconds: a number or a numeric string, clamped.
pub fn seconds_field(map: &serde_json::Map<String, Value>, key: &str) -> Option<i64> {
    let v = map.get(key)?;
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !n.is_finite() {
        return None;
    }
    Some((n as i64).clamp(0, 10 * 365 * 24 * 3600))
}

/// Words for a transport error: timeouts and refused connections named plainly.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "connection timed out".into()
    } else if e.is_connect() {
        "could not connect to the provider".into()
    } else {
        let mut s = e.to_string();
        // reqwest puts the URL in its messages; URLs here carry no secrets, but keep it short.
        s.truncate(200);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_tolerantly() {
        let m = parse_body(b"access_token=gho_x&scope=repo&token_type=bearer").unwrap();
        assert_eq!(m["access_token"], "gho_x");
        assert_eq!(
            seconds_field(&parse_body(br#"{"expires_in":-5}"#).unwrap(), "expires_in"),
            Some(0)
        );
        assert_eq!(
            seconds_field(
                &parse_body(br#"{"expires_in":1e30}"#).unwrap(),
                "expires_in"
            ),
            Some(10 * 365 * 24 * 3600)
        );
        assert_eq!(
            seconds_field(
                &parse_body(br#"{"expires_in":"soon"}"#).unwrap(),
                "expires_in"
            ),
            None
        );
        assert!(parse_body(b"<html>oops</html>").is_none());
    }

    #[test]
    fn redaction_hides_secret_values() {
        let v: Value = serde_json::json!({"access_token": "s1", "nested": {"refresh_token": "s2"}, "error": "invalid_grant"});
        let r = redact(&v).to_string();
        assert!(!r.contains("s1") && !r.contains("s2") && r.contains("invalid_grant"));
    }

    #[test]
    fn templates_need_a_base_url() {
        assert_eq!(
            fill("{base_url}/token", Some("https://gh.example/")).unwrap(),
            "https://gh.example/token"
        );
        assert!(fill("{base_url}/token", None).is_err());
        // A stored base URL is checked again each time it is filled in.
        for bad in [
            "http://gh.example",
            "ftp://gh.example",
            "https://user:pw@gh.example",
            "not a url",
        ] {
            let err = fill("{base_url}/token", Some(bad)).unwrap_err().to_string();
            assert!(err.contains("base URL"), "{bad}: {err}");
        }
        assert_eq!(
            fill("{base_url}/token", Some("http://127.0.0.1:9000")).unwrap(),
            "http://127.0.0.1:9000/token"
        );
        assert!(check_base_url("http://gh.example").is_err());
        assert!(check_base_url("http://127.0.0.1:9000").is_ok());
    }
}
