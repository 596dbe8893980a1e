//! Dynamic client registration: find the authorization server's metadata
//! (RFC 9728 protected-resource metadata for MCP servers, then RFC 8414,
//! then OpenID discovery) and register a client (RFC 7591).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::flows::oauth::{describe_reqwest, parse_body, read_body};
use crate::secret::Secret;

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct ServerMetadata {
    /// Issuer.
    pub issuer: Option<String>,
    /// Authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Registration endpoint.
    pub registration_endpoint: Option<String>,
    /// Revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// Device authorization endpoint.
    pub device_authorization_endpoint: Option<String>,
}

pub(crate) fn safe_url(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?;
    // A server's URL is printed to the person: no line breaks or escapes.
    if s.chars().any(char::is_control) {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    (u.scheme() == "https" || (u.scheme() == "http" && loopback)).then(|| s.to_string())
}

/// `{origin}/.well-known/{name}{path}` (RFC 8414 §3.1 / RFC 9728 §3.1).
pub(crate) fn well_known(base: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(base).ok()?;
    let path = u.path().trim_end_matches('/');
    Some(format!(
        "{}/.well-known/{name}{path}",
        u.origin().ascii_serialization()
    ))
}

pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &str,
) -> Option<serde_json::Map<String, Value>> {
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        tracing::debug!(
            url,
            status = resp.status().as_u16(),
            "discovery document not found"
        );
        return None;
    }
    let body = read_body(resp).await.ok()?;
    match serde_json::from_slice(&body).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Discovers the authorization server. `resource` (an MCP server URL) is
/// asked first which server protects it; `issuer` is the fallback.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    resource: Option<&str>,
) -> Result<ServerMetadata> {
    let mut issuers = Vec::new();
    if let Some(r) = resource {
        if let Some(url) = well_known(r, "oauth-protected-resource") {
            if let Some(doc) = get_json(http, &url).await {
                if let Some(Value::Array(servers)) = doc.get("authorization_servers") {
                    issuers.extend(servers.iter().filter_map(|s| safe_url(Some(s))));
                }
            }
        }
    }
    issuers.push(issuer.to_string());
    for iss in issuers {
        let candidates = [
            well_known(&iss, "oauth-authorization-server"),
            Some(format!(
                "{}/.well-known/openid-configuration",
                iss.trim_end_matches('/')
            )),
        ];
        for url in candidates.into_iter().flatten() {
            if let Some(doc) = get_json(http, &url).await {
                tracing::debug!(url, "discovered authorization server metadata");
                return Ok(ServerMetadata {
                    issuer: doc
                        .get("issuer")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    authorization_endpoint: safe_url(doc.get("authorization_endpoint")),
                    token_endpoint: safe_url(doc.get("token_endpoint")),
                    registration_endpoint: safe_url(doc.get("registration_endpoint")),
                    revocation_endpoint: safe_url(doc.get("revocation_endpoint")),
                    device_authorization_endpoint: safe_url(
                        doc.get("device_authorization_endpoint"),
                    ),
                });
            }
        }
    }
    Err(Error::FlowUnavailable {
        provider: issuer.to_string(),
        flow: "dcr_pkce".into(),
        reason: "no authorization server metadata was found (RFC 8414 or OpenID discovery)".into(),
    })
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Client ID.
    pub client_id: String,
    /// Client secret, for confidential registrations.
    pub client_secret: Option<Secret>,
}

/// Registers a public client with our redirect URI (RFC 7591 §3).
pub async fn register(
    http: &reqwest::Client,
    endpoint: &str,
    redirect_uri: &str,
    scopes: &[String],
) -> Result<Registered> {
    let mut body = serde_json::json!({
        "client_name": "Authsome",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if !scopes.is_empty() {
        body["scope"] = Value::String(scopes.join(" "));
    }
    tracing::debug!(url = endpoint, "registering a client");
    let fail = |reason: String| Error::FlowUnavailable {
        provider: endpoint.into(),
        flow: "dcr_pkce".into(),
        reason,
    };
    let resp = http
        .post(endpoint)
        .json(&body)
        .send()
        .await
        .map_err(|e| fail(format!("registration failed: {}", describe_reqwest(&e))))?;
    let status = resp.status().as_u16();
    let bytes = read_body(resp).await.map_err(fail)?;
    let map = parse_body(&bytes)
        .ok_or_else(|| fail(format!("registration answered HTTP {status} without JSON")))?;
    if let Some(err) = map.get("error").and_then(|v| v.as_str()) {
        return Err(fail(format!(
            "registration refused: {}",
            err.chars().take(100).collect::<String>()
        )));
    }
    if !(200..300).contains(&status) {
        return Err(fail(format!("registration answered HTTP {status}")));
    }
    let client_id = map
        .get("client_id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && s.len() < 1024 && !s.chars().any(char::is_control))
        .ok_or_else(|| fail("registration response has no client_id".into()))?
        .to_string();
    let client_secret = map
        .get("client_secret")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| Secret::new(s.into()));
    Ok(Registered {
        client_id,
        client_secret,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn well_known_urls_keep_the_path_after_the_well_known_segment() {
        assert_eq!(
            super::well_known("https://mcp.example.com/v1/mcp", "oauth-protected-resource")
                .unwrap(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp"
        );
        assert_eq!(
            super::well_known("https://auth.example.com", "oauth-authorization-server").unwrap(),
            "https://auth.example.com/.well-known/oauth-authorization-server"
        );
    }
}
