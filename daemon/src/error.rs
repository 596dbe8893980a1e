//! The daemon's error type: each variant says what went wrong in words a user
//! can act on, and maps to a stable wire code and HTTP status.

use axum::http::StatusCode;

/// Result alias used across the daemon.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the daemon can fail with. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("provider not found: {name}")]
    ProviderNotFound { name: String },
    #[error("connection not found: {provider} ({connection})")]
    ConnectionNotFound {
        provider: String,
        connection: String,
    },
    #[error("{provider} ({connection}) is already connected; use --force to replace it")]
    AlreadyConnected {
        provider: String,
        connection: String,
    },
    #[error("provider {name} already exists; use --force to replace it")]
    ProviderExists { name: String },
    #[error("profile not found: {name}")]
    ProfileNotFound { name: String },
    #[error("profile already exists: {name}")]
    ProfileExists { name: String },
    #[error("invalid provider definition: {0}")]
    InvalidProvider(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("that does not look like an API key for {provider}: {hint}")]
    KeyPattern { provider: String, hint: String },
    #[error("no credential stored for {provider} ({connection}); run `authsome login {provider}`")]
    CredentialMissing {
        provider: String,
        connection: String,
    },
    #[error("the {flow} flow is not available for {provider}: {reason}")]
    FlowUnavailable {
        provider: String,
        flow: String,
        reason: String,
    },
    #[error("login session not found or expired; start again with `authsome login`")]
    LoginNotFound,
    #[error("login timed out; re-run `authsome login {provider} --force`")]
    LoginTimedOut { provider: String },
    #[error("login cancelled")]
    LoginCancelled,
    #[error("OAuth state parameter does not match")]
    StateMismatch,
    #[error("{0}")]
    IssuerMismatch(String),
    #[error("this OAuth callback was already used; callbacks work once")]
    CallbackReplayed,
    #[error("this callback did not come from the browser Authsome opened for the login; nothing was changed. Finish the login in that browser, or open the link `authsome login` printed")]
    CallbackUnbound,
    #[error("authorization failed at the provider: {code}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationDenied {
        code: String,
        description: Option<String>,
    },
    #[error("token exchange failed: {code}")]
    TokenExchange { code: String },
    #[error("device login failed: {0}")]
    DeviceCode(String),
    #[error("refresh failed for {provider} ({connection}): {reason}")]
    RefreshFailed {
        provider: String,
        connection: String,
        reason: String,
    },
    #[error("the OS keychain is unavailable: {reason}")]
    KeychainUnavailable { reason: String },
    #[error("{0}")]
    MasterKey(String),
    #[error("cannot decrypt {what}: the master key does not match this store or the data was tampered with")]
    Decrypt { what: String },
    #[error("address already in use: {addr}")]
    AddrInUse { addr: String },
    #[error("another Authsome daemon already serves {home}")]
    DaemonRunning { home: String },
    #[error("the process on 127.0.0.1:{port} is not this home's daemon (it cannot prove it knows daemon.token); nothing was sent to it")]
    Impostor { port: u16 },
    #[error("missing or invalid daemon token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    #[error("storage error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("storage migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with what was being done (usually a path).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The stable machine-readable code sent as `error` in JSON bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ProviderNotFound { .. } => "provider_not_found",
            Error::ConnectionNotFound { .. } => "connection_not_found",
            Error::AlreadyConnected { .. } => "already_connected",
            Error::ProviderExists { .. } => "provider_exists",
            Error::ProfileNotFound { .. } => "profile_not_found",
            Error::ProfileExists { .. } => "profile_exists",
            Error::InvalidProvider(_) => "invalid_provider",
            Error::InvalidInput(_) => "invalid_input",
            Error::KeyPattern { .. } => "key_pattern_mismatch",
            Error::CredentialMissing { .. } => "credential_missing",
            Error::FlowUnavailable { .. } => "flow_unavailable",
            Error::LoginNotFound => "login_not_found",
            Error::LoginTimedOut { .. } => "login_timed_out",
            Error::LoginCancelled => "login_cancelled",
            Error::StateMismatch => "state_mismatch",
            Error::IssuerMismatch(_) => "issuer_mismatch",
            Error::CallbackReplayed => "callback_replayed",
            Error::CallbackUnbound => "callback_not_bound",
            Error::AuthorizationDenied { .. } => "authorization_denied",
            Error::TokenExchange { .. } => "token_exchange_failed",
            Error::DeviceCode(_) => "device_code_failed",
            Error::RefreshFailed { .. } => "refresh_failed",
            Error::KeychainUnavailable { .. } => "keychain_unavailable",
            Error::MasterKey(_) => "master_key",
            Error::Decrypt { .. } => "decrypt_failed",
            Error::AddrInUse { .. } => "address_in_use",
            Error::DaemonRunning { .. } => "daemon_running",
            Error::Impostor { .. } => "daemon_impostor",
            Error::Unauthorized => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::PayloadTooLarge => "payload_too_large",
            Error::NotFound => "not_found",
            Error::Store(_) | Error::Migrate(_) => "store_error",
            Error::Io { .. } => "io_error",
            Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status the API answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::ProviderNotFound { .. }
            | Error::ConnectionNotFound { .. }
            | Error::ProfileNotFound { .. }
            | Error::LoginNotFound
            | Error::NotFound => StatusCode::NOT_FOUND,
            Error::AlreadyConnected { .. }
            | Error::ProviderExists { .. }
            | Error::ProfileExists { .. } => StatusCode::CONFLICT,
            Error::InvalidProvider(_)
            | Error::InvalidInput(_)
            | Error::KeyPattern { .. }
            | Error::FlowUnavailable { .. } => StatusCode::BAD_REQUEST,
            Error::CredentialMissing { .. } | Error::RefreshFailed { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Error::StateMismatch
            | Error::IssuerMismatch(_)
            | Error::CallbackReplayed
            | Error::AuthorizationDenied { .. } => StatusCode::BAD_REQUEST,
            Error::TokenExchange { .. } | Error::DeviceCode(_) => StatusCode::BAD_GATEWAY,
            Error::LoginTimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            Error::LoginCancelled => StatusCode::GONE,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::CallbackUnbound => StatusCode::FORBIDDEN,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
