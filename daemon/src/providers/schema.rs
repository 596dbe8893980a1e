//! The provider definition schema: one JSON object per provider.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What kind of credential a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// OAuth 2.0 tokens.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// A static API key.
    ApiKey,
}

impl AuthType {
    /// The fields of a connection that an `export` mapping may name.
    pub fn exportable_fields(self) -> &'static [&'static str] {
        match self {
            AuthType::ApiKey => &["api_key"],
            AuthType::OAuth2 => &["access_token", "refresh_token", "id_token"],
        }
    }

    /// The schema name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::OAuth2 => "oauth2",
            AuthType::ApiKey => "api_key",
        }
    }
}

impl FromStr for AuthType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "oauth2" => Ok(AuthType::OAuth2),
            "api_key" => Ok(AuthType::ApiKey),
            other => Err(Error::InvalidInput(format!("unknown auth_type {other:?}"))),
        }
    }
}

/// How a credential is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Authorization code with PKCE in the system browser.
    Pkce,
    /// RFC 8628 device authorization.
    DeviceCode,
    /// RFC 7591 dynamic client registration, then PKCE.
    DcrPkce,
    /// A key the person pastes.
    ApiKey,
}

impl Flow {
    /// The schema name.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Pkce => "pkce",
            Flow::DeviceCode => "device_code",
            Flow::DcrPkce => "dcr_pkce",
            Flow::ApiKey => "api_key",
        }
    }

    /// The auth type a flow produces.
    pub fn auth_type(self) -> AuthType {
        match self {
            Flow::ApiKey => AuthType::ApiKey,
            _ => AuthType::OAuth2,
        }
    }
}

impl FromStr for Flow {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "pkce" => Ok(Flow::Pkce),
            "device_code" => Ok(Flow::DeviceCode),
            "dcr_pkce" => Ok(Flow::DcrPkce),
            "api_key" => Ok(Flow::ApiKey),
            other => Err(Error::InvalidInput(format!(
                "unknown flow {other:?}: use pkce, device_code, dcr_pkce or api_key"
            ))),
        }
    }
}

/// `host_url`: one pattern or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum HostUrl {
    /// A single pattern.
    One(String),
    /// Several patterns.
    Many(Vec<String>),
}

impl HostUrl {
    /// The patterns as a slice.
    pub fn patterns(&self) -> Vec<&str> {
        match self {
            HostUrl::One(s) => vec![s.as_str()],
            HostUrl::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// How client credentials are sent to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    Body,
    /// HTTP Basic authentication.
    Basic,
}

/// How the device-code token request is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceTokenFormat {
    /// `application/x-www-form-urlencoded` (RFC 8628).
    #[default]
    Form,
    /// A JSON body.
    Json,
}

/// The `oauth` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthSpec {
    /// Fills `{base_url}` when neither `--base-url` nor the client record gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    /// Token endpoint.
    pub token_url: String,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// RFC 8628 device authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_url: Option<String>,
    /// RFC 7591 registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// RFC 8707 resource indicator, for MCP servers and the like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The authorization server's issuer (RFC 8414), when known: an `iss`
    /// in the authorization response must name it (RFC 9207).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The authorization server says it sends `iss` in every authorization
    /// response (`authorization_response_iss_parameter_supported`): one
    /// without it is refused.
    #[serde(default, skip_serializing_if = "is_default")]
    pub iss_parameter_supported: bool,
    /// Default scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Client authentication at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Extra query parameters on the authorization URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorize_params: BTreeMap<String, String>,
    /// Encoding of the device-code token request.
    #[serde(default, skip_serializing_if = "is_default")]
    pub device_token_format: DeviceTokenFormat,
    /// The provider offers the device code flow.
    #[serde(default)]
    pub supports_device_code: bool,
    /// The provider offers dynamic client registration.
    #[serde(default)]
    pub supports_dcr: bool,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The `api_key` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// Header the key goes in.
    #[serde(default = "default_header_name")]
    pub header_name: String,
    /// Prefix before the key in the header (`Bearer`); empty for the raw key.
    #[serde(default = "default_header_prefix")]
    pub header_prefix: String,
    /// Environment variable SDKs read the key from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    /// Regular expression a key must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pattern: Option<String>,
    /// Shown when a key does not match `key_pattern`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pattern_hint: Option<String>,
}

fn default_header_name() -> String {
    "Authorization".into()
}

fn default_header_prefix() -> String {
    "Bearer".into()
}

/// A provider definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderDef {
    /// Unique, filesystem-safe name.
    pub name: String,
    /// Name shown to people.
    pub display_name: String,
    /// Kind of credential.
    pub auth_type: AuthType,
    /// Default flow.
    pub flow: Flow,
    /// Hosts whose requests get this provider's credential.
    pub host_url: HostUrl,
    /// Where to create the key or OAuth app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
    /// OAuth settings (oauth2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthSpec>,
    /// API-key settings (api_key only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeySpec>,
    /// Environment variable → connection field, for `export`.
    #[serde(default)]
    pub export: BTreeMap<String, String>,
    /// The Streamable HTTP endpoint of the provider's remote MCP server, for
    /// `authsome mcp connect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_url: Option<String>,
}
