//! The calls agent code makes: a fresh token, the auth header, connections
//! and their metadata, exported variables, a login's state.

use authsome_daemon::home::Home;
use authsome_daemon::providers::AuthType;
use authsome_daemon::secret::Secret;
use authsome_daemon::wire::{
    ConnectionView, ExportResponse, HeadersResponse, ListResponse, LoginResponse,
};

use crate::{enc, Client, Error, Result};

impl Client {
    /// The daemon of the home in the environment (`AUTHSOME_HOME`, else
    /// `~/.authsome`), for the profile in `AUTHSOME_PROFILE` (else the
    /// home's default), started when none runs.
    pub fn from_env() -> Result<Client> {
        let home = Home::from_env()?;
        let profile = std::env::var("AUTHSOME_PROFILE")
            .ok()
            .filter(|p| !p.is_empty());
        Client::connect(&home, profile, false)
    }

    /// A valid access token (OAuth) or API key for a connection, refreshed
    /// by the daemon first when it is due. The read is audited as `get`.
    pub fn get_access_token(&self, provider: &str, connection: &str) -> Result<Secret> {
        let mut view: ConnectionView = self.get(&format!(
            "/v1/connections/{}/{}?show_secret=true&fields=access_token,api_key",
            enc(provider),
            enc(connection)
        ))?;
        let field = match view.auth_type {
            AuthType::OAuth2 => "access_token",
            AuthType::ApiKey => "api_key",
        };
        view.secrets
            .remove(field)
            .filter(|v| !v.is_empty())
            .map(Secret::from)
            .ok_or_else(|| {
                Error::daemon(
                    "credential_missing",
                    format!("{provider} ({connection}) has no {field}"),
                )
            })
    }

    /// The header the proxy would add for a connection, as `(name, value)`
    /// pairs: `Authorization: Bearer ...`, or the provider's API key header.
    pub fn auth_headers(&self, provider: &str, connection: &str) -> Result<HeadersResponse> {
        self.get(&format!(
            "/v1/connections/{}/{}/headers",
            enc(provider),
            enc(connection)
        ))
    }

    /// A connection's metadata: state, scopes, expiry; secrets as `***`.
    pub fn connection(&self, provider: &str, connection: &str) -> Result<ConnectionView> {
        self.get(&format!(
            "/v1/connections/{}/{}",
            enc(provider),
            enc(connection)
        ))
    }

    /// Every provider with its connections in the profile.
    pub fn connections(&self) -> Result<ListResponse> {
        self.get("/v1/connections")
    }

    /// A connection's credentials as environment variables (`provider`:
    /// `None` for every connected provider's `connection`).
    pub fn export(&self, provider: Option<&str>, connection: &str) -> Result<ExportResponse> {
        let mut path = format!("/v1/export?connection={}", enc(connection));
        if let Some(p) = provider {
            path.push_str(&format!("&provider={}", enc(p)));
        }
        self.get(&path)
    }

    /// A login's state (`authsome login` started it), waiting up to
    /// `wait_secs` (at most 60) for it to change from `after`.
    pub fn login_status(&self, id: &str, after: &str, wait_secs: u64) -> Result<LoginResponse> {
        self.get(&format!(
            "/v1/logins/{}?wait={wait_secs}&after={}",
            enc(id),
            enc(after)
        ))
    }
}
