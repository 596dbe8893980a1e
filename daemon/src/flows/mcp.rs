//! Remote MCP servers: discovery as the MCP authorization spec orders it,
//! and the provider definition that makes a server a provider like any
//! other (login, refresh, `get`, `run`).
//!
//! 1. An unauthenticated request gets `401`; its `WWW-Authenticate` names
//!    the protected resource metadata (`resource_metadata=`).
//! 2. The protected resource metadata (RFC 9728), or, without the header,
//!    its well-known addresses: path-inserted, then at the root.
//! 3. The authorization server's metadata: RFC 8414 (path-inserted), then
//!    OpenID discovery (path-inserted, then appended).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::flows::dcr::{get_json, well_known};
use crate::providers::{AuthType, ClientAuth, Flow, HostUrl, OAuthSpec, ProviderDef};

/// What discovery found about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The server's Streamable HTTP endpoint, as given.
    pub url: String,
    /// The canonical resource identifier (RFC 9728 `resource`).
    pub resource: String,
    /// The authorization server's issuer.
    pub issuer: String,
    /// Scopes: the resource's, else the challenge's, else the server's.
    pub scopes: Vec<String>,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// RFC 7591 registration endpoint, when offered.
    pub registration_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint, when offered.
    pub revocation_endpoint: Option<String>,
    /// The server sends `iss` in authorization responses (RFC 9207).
    pub iss_parameter_supported: bool,
    /// The server accepts Client ID Metadata Documents.
    pub client_id_metadata_document_supported: bool,
}

/// A parameter of a `WWW-Authenticate: Bearer` challenge.
pub fn challenge_param(header: &str, name: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(
        r#"(?i)(?:^|[\s,]){}="([^"]*)""#,
        regex::escape(name)
    ))
    .ok()?;
    re.captures(header).map(|c| c[1].to_string())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .filter(|s| !s.is_empty() && s.len() < 200 && !s.chars().any(char::is_control))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn unavailable(url: &str, reason: String) -> Error {
    Error::FlowUnavailable {
        provider: url.to_string(),
        flow: "mcp".into(),
        reason,
    }
}

fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// True for an address on this machine or its private network, however it
/// is written (`127.0.0.2`, `0.0.0.0`, `[::ffff:127.0.0.1]`, `localhost.`,
/// `10.x`, `192.168.x`, link-local): a remote server may not name one.
/// A public DNS name that resolves to such an address is not caught here.
fn is_internal(u: &url::Url) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    let v4 = |ip: Ipv4Addr| {
        ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64
    };
    match u.host() {
        Some(url::Host::Ipv4(ip)) => v4(ip),
        Some(url::Host::Ipv6(ip)) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return v4(mapped);
            }
            let first = ip.segments()[0];
            IpAddr::V6(ip).is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || !d.contains('.')
        }
        None => true,
    }
}

/// Finds how `url` (an MCP server's Streamable HTTP endpoint) is protected.
/// Every address the server's documents name must be https, or plain http
/// on loopback only when the server itself is on loopback: a remote server
/// cannot point the daemon at this machine's own ports.
pub async fn discover(http: &reqwest::Client, url: &str) -> Result<Discovery> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::InvalidInput(format!("{url:?} is not a URL: {e}")))?;
    if crate::flows::dcr::safe_url(Some(&Value::String(url.to_string()))).is_none()
        || !parsed.username().is_empty()
    {
        return Err(Error::InvalidInput(format!(
            "{url} must be https (or http on a loopback address), without credentials"
        )));
    }
    let local = is_loopback(&parsed);
    let safe_url = |v: Option<&Value>| {
        crate::flows::dcr::safe_url(v).filter(|s| {
            local || url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" && !is_internal(&u))
        })
    };
    // 1. An unauthenticated request.
    let probe = http
        .post(url)
        .header(
            reqwest::header::ACCEPT,
            "application/json, text/event-stream",
        )
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "authsome", "version": env!("CARGO_PKG_VERSION")}}
        }))
        .send()
        .await
        .map_err(|e| {
            unavailable(
                url,
                format!(
                    "the server could not be reached: {}",
                    crate::flows::oauth::describe_reqwest(&e)
                ),
            )
        })?;
    let status = probe.status().as_u16();
    let challenge = probe
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if status != 401 {
        return Err(unavailable(
            url,
            format!("the server answered HTTP {status}, not 401: it does not ask for OAuth"),
        ));
    }
    // 2. The protected resource metadata.
    let mut candidates = Vec::new();
    if let Some(m) = challenge_param(&challenge, "resource_metadata") {
        candidates.extend(safe_url(Some(&Value::String(m))));
    }
    candidates.extend(well_known(url, "oauth-protected-resource"));
    candidates.push(format!(
        "{}/.well-known/oauth-protected-resource",
        parsed.origin().ascii_serialization()
    ));
    candidates.dedup();
    let mut prm = None;
    for c in &candidates {
        if let Some(doc) = get_json(http, c).await {
            prm = Some(doc);
            break;
        }
    }
    let prm = prm.ok_or_else(|| {
        unavailable(
            url,
            "no protected resource metadata (RFC 9728) was found".into(),
        )
    })?;
    let resource = prm
        .get("resource")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if !same_url(&resource, url) {
        return Err(unavailable(
            url,
            format!("the protected resource metadata names another resource ({resource:?})"),
        ));
    }
    let issuer = strings(prm.get("authorization_servers"))
        .into_iter()
        .find_map(|s| safe_url(Some(&Value::String(s))))
        .ok_or_else(|| {
            unavailable(
                url,
                "the protected resource metadata names no authorization server".into(),
            )
        })?;
    // 3. The authorization server's metadata.
    let as_url = url::Url::parse(&issuer).map_err(|e| unavailable(url, e.to_string()))?;
    let origin = as_url.origin().ascii_serialization();
    let path = as_url.path().trim_end_matches('/');
    let mut as_docs = vec![format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )];
    as_docs.push(format!("{origin}/.well-known/openid-configuration{path}"));
    if !path.is_empty() {
        as_docs.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    let mut meta = None;
    for d in &as_docs {
        if let Some(doc) = get_json(http, d).await {
            meta = Some(doc);
            break;
        }
    }
    let meta = meta.ok_or_else(|| {
        unavailable(
            url,
            format!("no metadata (RFC 8414 or OpenID discovery) was found for {issuer}"),
        )
    })?;
    let stated = meta
        .get("issuer")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    // RFC 8414 §3.3: identical.
    if stated != issuer {
        return Err(unavailable(
            url,
            format!("the authorization server's metadata names another issuer ({stated:?})"),
        ));
    }
    if !strings(meta.get("code_challenge_methods_supported"))
        .iter()
        .any(|m| m == "S256")
    {
        return Err(unavailable(
            url,
            "the authorization server does not say it supports PKCE S256".into(),
        ));
    }
    let endpoint = |k: &str| safe_url(meta.get(k));
    // The MCP spec's order: what the challenge asked for, then what the
    // resource advertises, then the authorization server's.
    let mut scopes = challenge_param(&challenge, "scope")
        .map(|s| crate::flows::oauth::split_scopes(&s))
        .unwrap_or_default();
    if scopes.is_empty() {
        scopes = strings(prm.get("scopes_supported"));
    }
    if scopes.is_empty() {
        scopes = strings(meta.get("scopes_supported"));
    }
    Ok(Discovery {
        url: url.to_string(),
        resource,
        issuer: stated.to_string(),
        scopes,
        authorization_endpoint: endpoint("authorization_endpoint").ok_or_else(|| {
            unavailable(
                url,
                "the authorization server has no authorization endpoint".into(),
            )
        })?,
        token_endpoint: endpoint("token_endpoint").ok_or_else(|| {
            unavailable(url, "the authorization server has no token endpoint".into())
        })?,
        registration_endpoint: endpoint("registration_endpoint"),
        revocation_endpoint: endpoint("revocation_endpoint"),
        iss_parameter_supported: meta
            .get("authorization_response_iss_parameter_supported")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        client_id_metadata_document_supported: meta
            .get("client_id_metadata_document_supported")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

/// How a server's client is had.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// RFC 7591, at the first login.
    Dynamic,
    /// A Client ID Metadata Document: the client ID is the https URL of a
    /// document describing the client, which the server fetches.
    MetadataDocument,
    /// A client ID the person gave.
    ClientId,
}

impl Discovery {
    /// The provider definition for this server, named `name`.
    pub fn provider(&self, name: &str, registration: Registration) -> Result<ProviderDef> {
        let u = url::Url::parse(&self.url).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let host = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        };
        Ok(ProviderDef {
            name: name.to_string(),
            display_name: format!("{name} (MCP)"),
            auth_type: AuthType::OAuth2,
            flow: match registration {
                Registration::Dynamic => Flow::DcrPkce,
                Registration::MetadataDocument | Registration::ClientId => Flow::Pkce,
            },
            host_url: HostUrl::One(host),
            docs_url: None,
            oauth: Some(OAuthSpec {
                base_url: None,
                authorization_url: Some(self.authorization_endpoint.clone()),
                token_url: self.token_endpoint.clone(),
                revocation_url: self.revocation_endpoint.clone(),
                device_authorization_url: None,
                registration_endpoint: self.registration_endpoint.clone(),
                resource: Some(self.resource.clone()),
                issuer: Some(self.issuer.clone()),
                iss_parameter_supported: self.iss_parameter_supported,
                scopes: self.scopes.clone(),
                client_auth: ClientAuth::Body,
                authorize_params: Default::default(),
                device_token_format: Default::default(),
                supports_device_code: false,
                supports_dcr: self.registration_endpoint.is_some(),
            }),
            api_key: None,
            export: Default::default(),
            mcp_url: Some(self.url.clone()),
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_remote_server_cannot_name_this_machine_or_its_network() {
        for internal in [
            "https://127.0.0.1/x",
            "https://127.0.0.2/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://localhost./x",
            "https://api.localhost/x",
            "https://intranet/x",
            "https://10.1.2.3/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
        ] {
            assert!(
                is_internal(&url::Url::parse(internal).unwrap()),
                "{internal}"
            );
        }
        for public in [
            "https://auth.example.com/x",
            "https://8.8.8.8/x",
            "https://[2001:db8::1]/x",
        ] {
            assert!(!is_internal(&url::Url::parse(public).unwrap()), "{public}");
        }
    }

    use super::*;

    #[test]
    fn challenge_parameters_are_read_from_a_bearer_challenge() {
        let h = r#"Bearer realm="x", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="read write""#;
        assert_eq!(
            challenge_param(h, "resource_metadata").as_deref(),
            Some("https://mcp.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(challenge_param(h, "scope").as_deref(), Some("read write"));
        assert_eq!(challenge_param(h, "error"), None);
        assert_eq!(
            challenge_param(
                r#"Bearer error="insufficient_scope",scope="admin""#,
                "scope"
            )
            .as_deref(),
            Some("admin")
        );
    }
}
