//! The CLI's error: a stable code (the daemon's, or one of the CLI's own),
//! a message, and the one place codes become exit codes.

use std::fmt;

use authsome_daemon::api::types::ErrorBody;

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// Stable code, as in API error bodies.
    pub code: String,
    /// Message for people (never a secret).
    pub message: String,
}

impl CliError {
    /// An error with a code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        CliError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }

    /// The daemon could not be reached or started (exit 9).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new("daemon_unavailable", message)
    }

    /// Stdout was closed by the reader (`authsome list | head`): not a failure.
    pub fn broken_pipe() -> Self {
        Self::new("broken_pipe", "")
    }

    /// Exit codes: 0 ok, 1 error, 2 usage or cancelled, 3 connection not
    /// found, 4 provider not found, 5 credential missing/expired/refresh
    /// failed, 6 already connected, 9 daemon unavailable.
    pub fn exit_code(&self) -> i32 {
        match self.code.as_str() {
            "broken_pipe" => 0,
            "usage" | "invalid_input" | "login_cancelled" | "profile_not_found"
            | "unknown_field" => 2,
            "connection_not_found" => 3,
            "provider_not_found" => 4,
            "credential_missing" | "credential_expired" | "refresh_failed" | "refresh_rejected" => {
                5
            }
            "already_connected" => 6,
            "daemon_unavailable" | "daemon_impostor" => 9,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<authsome_daemon::Error> for CliError {
    fn from(e: authsome_daemon::Error) -> Self {
        CliError::new(e.code(), e.to_string())
    }
}

impl From<ErrorBody> for CliError {
    fn from(e: ErrorBody) -> Self {
        CliError {
            code: e.error,
            message: e.message,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::broken_pipe()
        } else {
            CliError::new("io_error", e.to_string())
        }
    }
}

/// Result alias.
pub type CliResult<T = ()> = Result<T, CliError>;
