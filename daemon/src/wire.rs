//! Wire types of the API, shared by the daemon, the CLI and the tray.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::home::KeyBackendKind;
use crate::names::{ConnectionName, ProviderName};
use crate::prompt::PromptField;
use crate::providers::{AuthType, Flow, ProviderDef, ProviderOrigin};
use crate::secret::Secret;
use crate::vault::{KeySource, Status};

/// Header that names the profile a request is about.
pub const PROFILE_HEADER: &str = "x-authsome-profile";

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0"}))]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
    /// Daemon version.
    pub version: String,
    /// With `?challenge=`, the proof that this daemon knows the home's
    /// token (see [`crate::identity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusResponse {
    /// Daemon version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Port.
    pub port: u16,
    /// Home served.
    pub home: String,
    /// Where the master key in effect came from.
    pub key_source: KeySource,
    /// The backend recorded for the home.
    pub key_backend: Option<KeyBackendKind>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Hosted by the tray app (otherwise headless).
    #[serde(default)]
    pub tray: bool,
    /// Providers in the catalogue.
    pub providers: usize,
    /// Profiles in the home.
    pub profiles: Vec<String>,
    /// The proxy's port.
    pub proxy_port: u16,
    /// SHA-256 fingerprint of the proxy CA.
    pub ca_fingerprint: String,
    /// Live `authsome run` sessions.
    pub runs: usize,
    /// The daemon process can leave no core file and is not dumpable.
    #[serde(default)]
    pub core_dumps_disabled: bool,
}

/// `POST /v1/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRequest {
    /// Provider → connection, for `--connection PROVIDER=NAME`.
    #[serde(default)]
    pub connections: BTreeMap<String, String>,
    /// The command's name (for the audit log, rules and leases).
    #[serde(default)]
    pub command: String,
    /// The directory the command runs in (shown when it asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `--allow PROVIDER[=CONNECTION]`: only these get credentials (`None`:
    /// every connected provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// `--read-only`: only GET, HEAD and OPTIONS get credentials.
    #[serde(default)]
    pub read_only: bool,
    /// `--only-providers`: requests to hosts no allowed connection matches
    /// are refused.
    #[serde(default)]
    pub only_providers: bool,
    /// `--ask`: the first request to each provider waits for the person.
    #[serde(default)]
    pub ask: bool,
    /// `--max-requests N`: at most N requests per provider get credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
}

/// A request held until the person decides (`--ask`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingApproval {
    /// Provider.
    pub provider: String,
    /// Connection.
    pub connection: String,
    /// The first held request's method.
    pub method: String,
    /// Its host.
    pub host: String,
    /// Its path, without the query.
    pub path: String,
    /// Since when it waits.
    pub since: DateTime<Utc>,
    /// The run's command name.
    #[serde(default)]
    pub command: String,
    /// The run's working directory, when the CLI said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// What asked: `--ask`, or the rule in rules.toml.
    #[serde(default)]
    pub asked_by: String,
}

/// How far an approval reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalScope {
    /// The held request only; the next one asks again.
    Once,
    /// The rest of the run (a denial always is).
    #[default]
    Run,
    /// A lease: this command, for `seconds`, in this run and later ones.
    Lease,
}

/// A lease as `GET /v1/grants` lists it.
pub type GrantView = crate::vault::store::Grant;

/// `POST /v1/runs/{id}/approve` and `/deny`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalRequest {
    /// `PROVIDER` or `PROVIDER=CONNECTION`.
    pub provider: String,
    /// How far an approval reaches (a denial holds for the run).
    #[serde(default)]
    pub scope: ApprovalScope,
    /// A lease's length in seconds (`scope = "lease"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// Answer to `POST /v1/runs`.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunResponse {
    /// Run id.
    pub id: String,
    /// Proxy URL carrying this run's credentials.
    pub proxy_url: String,
    /// CA bundle: system roots plus Authsome's CA.
    pub ca_bundle: String,
    /// Placeholder variables for SDKs (`OPENAI_API_KEY=authsome-proxy-managed`).
    pub env: BTreeMap<String, String>,
    /// The proxy's port, the one daemon port a contained command may reach.
    #[serde(default)]
    pub proxy_port: u16,
    /// Every port the daemon listens on (API and OAuth callback, proxy).
    #[serde(default)]
    pub daemon_ports: Vec<u16>,
}

/// `POST /v1/runs/{id}/pid`: the command's process, whose exit ends the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunPid {
    /// Process id of the command (the CLI's child).
    pub pid: u32,
}

/// `POST /v1/runs/{id}/end`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunEnd {
    /// The command's exit code.
    pub exit_code: i32,
}

/// Answer to ending a run.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// Requests injected per provider.
    pub injected: BTreeMap<String, u64>,
}

/// A live run, as `GET /v1/runs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// The command's pid, once registered.
    pub pid: Option<u32>,
    /// The command's name.
    pub command: String,
    /// Its working directory, when the CLI said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Profile.
    pub profile: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Requests given a credential, per provider.
    pub injected: BTreeMap<String, u64>,
    /// `--allow`: the providers it may use (`None`: every connected one).
    pub allow: Option<Vec<String>>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--only-providers`.
    pub only_providers: bool,
    /// `--ask`.
    #[serde(default)]
    pub ask: bool,
    /// `--max-requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// Requests waiting for the person's decision.
    #[serde(default)]
    pub pending: Vec<PendingApproval>,
}

/// A connection in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionSummary {
    /// Connection name.
    pub connection: String,
    /// State.
    pub status: Status,
    /// Access token expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it is `expired` or `invalid`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A provider in `GET /v1/connections`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderListing {
    /// Provider name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Auth type.
    pub auth_type: AuthType,
    /// Default flow.
    pub flow: Flow,
    /// Bundled or custom.
    pub origin: ProviderOrigin,
    /// The best state among its connections, `configured` or `available`.
    pub status: Status,
    /// Its connections.
    pub connections: Vec<ConnectionSummary>,
    /// Its remote MCP server, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_url: Option<String>,
}

/// `GET /v1/connections`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "profile": "default",
    "providers": [{
        "name": "openai", "display_name": "OpenAI", "auth_type": "api_key",
        "flow": "api_key", "origin": "bundled", "status": "connected",
        "connections": [{"connection": "default", "status": "connected", "expires_at": null}]
    }]
}))]
pub struct ListResponse {
    /// Profile listed.
    pub profile: String,
    /// Providers, those with a state first.
    pub providers: Vec<ProviderListing>,
}

/// One connection (`GET /v1/connections/{provider}/{connection}`).
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "provider": "github", "display_name": "GitHub", "connection": "default",
    "profile": "default", "status": "connected", "auth_type": "oauth2",
    "scopes": ["repo"], "base_url": "https://api.github.com", "account": "octocat",
    "expires_at": "2026-12-06T10:00:00Z", "obtained_at": "2026-12-06T02:00:00Z",
    "last_refresh_at": null, "last_error": null,
    "created_at": "2026-12-01T09:00:00Z", "updated_at": "2026-12-06T02:00:00Z",
    "secrets": {"access_token": "***", "refresh_token": "***"}
}))]
pub struct ConnectionView {
    /// Provider name.
    pub provider: String,
    /// Provider display name.
    pub display_name: String,
    /// Connection name.
    pub connection: String,
    /// Profile.
    pub profile: String,
    /// State.
    pub status: Status,
    /// Auth type.
    pub auth_type: AuthType,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Base URL used.
    pub base_url: Option<String>,
    /// Account, when known.
    pub account: Option<String>,
    /// Access token expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// When obtained.
    pub obtained_at: Option<DateTime<Utc>>,
    /// Last refresh.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// Last refresh error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Secret fields: `***` unless shown on request.
    pub secrets: BTreeMap<String, String>,
}

/// One exported variable.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportVar {
    /// Environment variable name.
    pub name: String,
    /// Value (a secret).
    pub value: String,
    /// Provider.
    pub provider: String,
    /// Connection.
    pub connection: String,
}

/// `GET /v1/export`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "vars": [{"name": "OPENAI_API_KEY", "value": "sk-example", "provider": "openai", "connection": "default"}]
}))]
pub struct ExportResponse {
    /// Variables in provider order.
    pub vars: Vec<ExportVar>,
}

/// Who supplies a login's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputMode {
    /// The caller (a CLI on a terminal or with `--stdin`) sends it over the API.
    Terminal,
    /// The daemon's prompter asks (bridge page or tray window).
    #[default]
    Prompter,
}

/// `POST /v1/logins`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// Provider.
    pub provider: ProviderName,
    /// Connection (`default` when absent).
    #[serde(default)]
    pub connection: Option<ConnectionName>,
    /// Replace an existing connection.
    #[serde(default)]
    pub force: bool,
    /// Flow override.
    #[serde(default)]
    pub flow: Option<Flow>,
    /// Who supplies input.
    #[serde(default)]
    pub mode: InputMode,
    /// Input supplied up front (`--stdin`).
    #[serde(default, skip_serializing)]
    pub inputs: BTreeMap<String, Secret>,
    /// Scopes instead of the provider's defaults.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Fills `{base_url}` (self-hosted and enterprise deployments).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The OAuth client ID (not secret).
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Where a login stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoginState {
    /// Waiting for the person's input.
    NeedsInput,
    /// Waiting for the person to approve in the browser; the callback completes it.
    Authorizing {
        /// The authorization URL to open.
        url: String,
    },
    /// Waiting for the person to enter a code at the provider (RFC 8628).
    DeviceCode {
        /// The code to enter.
        user_code: String,
        /// Where to enter it.
        verification_uri: String,
        /// A URL that carries the code, when the provider gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verification_uri_complete: Option<String>,
        /// Seconds until the code expires.
        expires_in: i64,
    },
    /// Done; the credential is stored.
    Completed,
    /// Ended without a credential.
    Failed {
        /// Error code (as in API errors).
        error: String,
        /// Message for the person.
        message: String,
    },
}

impl LoginState {
    /// The state's name, as in the `state` field.
    pub fn tag(&self) -> &'static str {
        match self {
            LoginState::NeedsInput => "needs_input",
            LoginState::Authorizing { .. } => "authorizing",
            LoginState::DeviceCode { .. } => "device_code",
            LoginState::Completed => "completed",
            LoginState::Failed { .. } => "failed",
        }
    }

    /// True for completed and failed.
    pub fn is_final(&self) -> bool {
        matches!(self, LoginState::Completed | LoginState::Failed { .. })
    }

    /// A failure from an error.
    pub fn failed(e: &crate::error::Error) -> LoginState {
        LoginState::Failed {
            error: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// A login session as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Session id.
    pub id: String,
    /// Provider.
    pub provider: String,
    /// Connection.
    pub connection: String,
    /// Flow.
    pub flow: Flow,
    /// State.
    #[serde(flatten)]
    pub state: LoginState,
    /// What the session asks for.
    pub fields: Vec<PromptField>,
    /// A page for the caller to open in a browser: a one-time launch URL.
    /// Print it; do not pass it on a command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_url: Option<String>,
    /// The launch file (0600, in the home) to open in the browser for the
    /// current step. It leads to the one-time launch URL and keeps that URL
    /// off the browser's command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_file: Option<String>,
    /// The redirect URI to register with the provider (OAuth client input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Where the person gets the key or creates the OAuth app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
}

/// `POST /v1/logins/{id}/input`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct LoginInput {
    /// Field name → value.
    pub values: BTreeMap<String, Secret>,
}

/// `POST /v1/providers`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// The definition, as JSON.
    pub definition: serde_json::Value,
    /// Replace an existing provider of the same name.
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/connections/{provider}/{connection}/refresh`: a server refused
/// this token.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"rejected_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))]
pub struct RefreshRequest {
    /// SHA-256 (hex) of the access token the server refused.
    pub rejected_sha256: String,
}

/// `POST /v1/mcp/servers`: add a remote MCP server as a provider.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct McpAddRequest {
    /// The provider name to record it under.
    pub name: String,
    /// Its Streamable HTTP endpoint.
    pub url: String,
    /// A client registered by hand, when the server offers no dynamic
    /// registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// That client's secret, if it is confidential (never serialised back).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    /// Replace a provider of the same name (and forget its connections).
    #[serde(default)]
    pub force: bool,
}

/// What `POST /v1/mcp/servers` found and recorded.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct McpAddResponse {
    /// Provider name.
    pub name: String,
    /// The server's endpoint.
    pub url: String,
    /// The canonical resource (RFC 9728), sent as `resource` (RFC 8707).
    pub resource: String,
    /// The authorization server's issuer.
    pub issuer: String,
    /// The scopes the server advertises.
    pub scopes: Vec<String>,
    /// How the client is had.
    pub registration: crate::flows::mcp::Registration,
    /// Where a dynamic registration goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The server sends `iss` with authorization responses (checked).
    #[serde(default)]
    pub iss_parameter_supported: bool,
    /// The server accepts Client ID Metadata Documents.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// Warnings about the definition.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Answer to `POST /v1/providers`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterResponse {
    /// Provider name.
    pub name: String,
    /// Warnings that did not stop registration.
    pub warnings: Vec<String>,
    /// True when an existing provider was replaced.
    pub replaced: bool,
}

/// `GET /v1/providers/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InspectResponse {
    /// The definition.
    pub definition: ProviderDef,
    /// Bundled or custom.
    pub origin: ProviderOrigin,
    /// Client credentials stored for it.
    pub client_configured: bool,
    /// The redirect URI to register (OAuth providers).
    pub callback_url: Option<String>,
    /// Its connections, secrets masked.
    pub connections: Vec<ConnectionView>,
}

/// Answer to a revoke.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokeResponse {
    /// Provider.
    pub provider: String,
    /// Connection.
    pub connection: String,
    /// The connection's credentials were deleted.
    pub removed_connection: bool,
    /// The provider's client credentials were deleted.
    pub removed_client: bool,
    /// Problems that did not stop the local revoke.
    pub warnings: Vec<String>,
}

/// Answer to a remove.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemoveResponse {
    /// Provider.
    pub provider: String,
    /// Connections deleted.
    pub connections_removed: u64,
    /// Client credentials deleted.
    pub client_removed: bool,
}

/// `POST /v1/profiles`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateProfile {
    /// Profile name.
    pub name: crate::names::ProfileName,
}

/// `POST /v1/import`: API keys found in `.env` files or the environment.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    /// The connection to import into (default `default`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub connection: Option<ConnectionName>,
    /// Replace a stored key that differs.
    #[serde(default)]
    pub force: bool,
    /// Only say what would happen.
    #[serde(default)]
    pub dry_run: bool,
    /// The keys, one per provider.
    pub keys: Vec<ImportKey>,
}

/// One key to import.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ImportKey {
    /// Provider whose `env_var` named it.
    pub provider: String,
    /// The variable it was found under.
    pub variable: String,
    /// Where: `environment`, or `file:line`.
    pub source: String,
    /// The key.
    pub value: Secret,
}

/// What importing one key did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// No key was stored: imported.
    New,
    /// The stored key is the same: nothing to do.
    Same,
    /// A different key is stored: skipped (`--force` replaces it).
    Different,
    /// A different key was stored and is replaced (`--force`).
    Replaced,
    /// The key does not match the provider's pattern: skipped.
    Invalid,
    /// Different values were found for the provider (`authsome import`
    /// decides this before asking the daemon): skipped.
    Conflict,
    /// The value refers to another variable (`${VAR}`; decided by
    /// `authsome import`): skipped.
    Reference,
}

impl ImportOutcome {
    /// True when the key was not imported and is not already stored.
    pub fn skipped(self) -> bool {
        matches!(
            self,
            ImportOutcome::Different
                | ImportOutcome::Invalid
                | ImportOutcome::Conflict
                | ImportOutcome::Reference
        )
    }
}

/// One key's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// Provider.
    pub provider: String,
    /// Variable.
    pub variable: String,
    /// Where it was found.
    pub source: String,
    /// What happened.
    pub outcome: ImportOutcome,
    /// Why it was skipped, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `POST /v1/import`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResponse {
    /// The connection imported into.
    pub connection: String,
    /// True when nothing was stored.
    pub dry_run: bool,
    /// One per key, in request order.
    pub results: Vec<ImportResult>,
}

/// `POST /v1/backup`: write every profile's state to an age-encrypted file.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct BackupRequest {
    /// Absolute path of the file to write (0600).
    pub path: String,
    /// The passphrase the file is encrypted with.
    pub passphrase: Secret,
    /// Replace the file if it exists.
    #[serde(default)]
    pub force: bool,
}

/// What a backup holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupSummary {
    /// The file.
    pub path: String,
    /// Profiles.
    pub profiles: usize,
    /// Connections, across profiles.
    pub connections: usize,
    /// OAuth client credentials, across profiles.
    pub clients: usize,
    /// Custom provider definitions.
    pub providers: usize,
    /// Whether `config.toml` settings (and `rules.toml`) are in it.
    pub config: bool,
}

/// `POST /v1/restore`: read a backup into this home.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RestoreRequest {
    /// Absolute path of the backup file.
    pub path: String,
    /// Its passphrase.
    pub passphrase: Secret,
    /// Replace connections, clients, providers and settings this home has.
    #[serde(default)]
    pub force: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestoreSummary {
    /// What was restored (counts as in [`BackupSummary`]).
    pub restored: BackupSummary,
    /// What this home already had and kept (without `force`), one line each.
    pub skipped: Vec<String>,
}

/// `GET /v1/connections/{provider}/{connection}/headers`: the header the
/// proxy would add for this connection, for code that cannot use the proxy.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"headers": {"Authorization": "Bearer sk-example"}}))]
pub struct HeadersResponse {
    /// Header name to value (a secret).
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for HeadersResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.headers.keys().collect();
        write!(f, "HeadersResponse {{ headers: {names:?} = *** }}")
    }
}

/// A JSON error body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "provider_not_found", "message": "provider not found: acme"}))]
pub struct ErrorBody {
    /// Stable code.
    pub error: String,
    /// Message for people.
    pub message: String,
}

impl std::fmt::Debug for ConnectionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secrets: Vec<&String> = self.secrets.keys().collect();
        f.debug_struct("ConnectionView")
            .field("provider", &self.provider)
            .field("connection", &self.connection)
            .field("profile", &self.profile)
            .field("status", &self.status)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("secrets", &format_args!("{secrets:?} = ***"))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ExportVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportVar")
            .field("name", &self.name)
            .field("value", &"***")
            .field("provider", &self.provider)
            .field("connection", &self.connection)
            .finish()
    }
}

impl std::fmt::Debug for RunResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The proxy URL carries the run's credentials as its userinfo.
        let proxy_url = match self.proxy_url.split_once('@') {
            Some((creds, host)) => {
                let user = creds.rsplit_once(':').map_or(creds, |(u, _)| u);
                format!("{user}:***@{host}")
            }
            None => self.proxy_url.clone(),
        };
        f.debug_struct("RunResponse")
            .field("id", &self.id)
            .field("proxy_url", &proxy_url)
            .field("ca_bundle", &self.ca_bundle)
            .field("env", &self.env)
            .field("proxy_port", &self.proxy_port)
            .field("daemon_ports", &self.daemon_ports)
            .finish()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_of_wire_types_with_secrets_shows_no_secret() {
        let run = RunResponse {
            id: "run-abc".into(),
            proxy_url: "http://run-abc:s3cr3t-run-pass@127.0.0.1:4000".into(),
            ca_bundle: "/h/ca/bundle.pem".into(),
            env: BTreeMap::new(),
            proxy_port: 4000,
            daemon_ports: vec![7998, 4000],
        };
        let var = ExportVar {
            name: "OPENAI_API_KEY".into(),
            value: "sk-export-secret".into(),
            provider: "openai".into(),
            connection: "default".into(),
        };
        let view: ConnectionView = serde_json::from_value(serde_json::json!({
            "provider": "openai", "display_name": "OpenAI", "connection": "default",
            "profile": "default", "status": "connected", "auth_type": "api_key",
            "scopes": [], "base_url": null, "account": null, "expires_at": null,
            "obtained_at": null, "last_refresh_at": null, "last_error": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "secrets": {"api_key": "sk-view-secret"}
        }))
        .unwrap();
        let printed = format!("{run:?} {var:?} {view:?}");
        for secret in ["s3cr3t-run-pass", "sk-export-secret", "sk-view-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("run-abc:***@127.0.0.1:4000") && printed.contains("api_key"));
    }
}
