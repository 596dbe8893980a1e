//! The client's error: the daemon's stable code, a message for people, and
//! the exit code the `authsome` command line uses for it.

use authsome_daemon::wire::ErrorBody;

/// A failed call. Messages never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An error the daemon reported, by its stable code.
    #[error("{message}")]
    Daemon {
        /// The code, as in the API's error bodies (`provider_not_found`, ...).
        code: String,
        /// The message.
        message: String,
    },
    /// The daemon could not be reached or started.
    #[error("{0}")]
    Unavailable(String),
    /// The process on the daemon's port is not this home's daemon; nothing
    /// was sent to it.
    #[error("{0}")]
    Impostor(String),
    /// The daemon answered something this client does not understand.
    #[error("{0}")]
    BadResponse(String),
}

/// What kind of failure, as the command line's exit codes group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input, a cancelled login, an unknown profile (exit code 2).
    InvalidInput,
    /// No such connection (3).
    ConnectionNotFound,
    /// No such provider (4).
    ProviderNotFound,
    /// The credential is missing, expired or invalid, or its refresh failed (5).
    CredentialUnavailable,
    /// The provider is connected already (6).
    AlreadyConnected,
    /// No daemon answers, or the one that does is not this home's (9).
    DaemonUnavailable,
    /// Anything else (1).
    Other,
}

/// The daemon's error codes by kind; any other code is [`ErrorKind::Other`].
const KINDS: &[(&str, ErrorKind)] = &[
    ("invalid_input", ErrorKind::InvalidInput),
    ("login_cancelled", ErrorKind::InvalidInput),
    ("profile_not_found", ErrorKind::InvalidInput),
    ("connection_not_found", ErrorKind::ConnectionNotFound),
    ("provider_not_found", ErrorKind::ProviderNotFound),
    ("credential_missing", ErrorKind::CredentialUnavailable),
    ("refresh_failed", ErrorKind::CredentialUnavailable),
    ("already_connected", ErrorKind::AlreadyConnected),
    ("daemon_impostor", ErrorKind::DaemonUnavailable),
    ("daemon_unavailable", ErrorKind::DaemonUnavailable),
];

impl ErrorKind {
    /// The `authsome` command line's exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput => 2,
            ErrorKind::ConnectionNotFound => 3,
            ErrorKind::ProviderNotFound => 4,
            ErrorKind::CredentialUnavailable => 5,
            ErrorKind::AlreadyConnected => 6,
            ErrorKind::DaemonUnavailable => 9,
            ErrorKind::Other => 1,
        }
    }
}

impl Error {
    /// An error with one of the daemon's codes.
    pub fn daemon(code: &str, message: impl Into<String>) -> Self {
        Error::Daemon {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The daemon could not be reached or started.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(message.into())
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            Error::Daemon { code, .. } => code,
            Error::Unavailable(_) => "daemon_unavailable",
            Error::Impostor(_) => "daemon_impostor",
            Error::BadResponse(_) => "bad_response",
        }
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        match self {
            Error::Daemon { message, .. } => message,
            Error::Unavailable(m) | Error::Impostor(m) | Error::BadResponse(m) => m,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        KINDS
            .iter()
            .find(|(code, _)| *code == self.code())
            .map_or(ErrorKind::Other, |(_, kind)| *kind)
    }

    /// The `authsome` command line's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }
}

impl From<ErrorBody> for Error {
    fn from(e: ErrorBody) -> Self {
        match e.error.as_str() {
            "daemon_unavailable" => Error::Unavailable(e.message),
            _ => Error::Daemon {
                code: e.error,
                message: e.message,
            },
        }
    }
}

impl From<authsome_daemon::Error> for Error {
    fn from(e: authsome_daemon::Error) -> Self {
        Error::daemon(e.code(), e.to_string())
    }
}

/// Result alias.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_command_lines_exit_codes() {
        for (code, exit) in [
            ("invalid_input", 2),
            ("connection_not_found", 3),
            ("provider_not_found", 4),
            ("refresh_failed", 5),
            ("credential_missing", 5),
            ("already_connected", 6),
            ("daemon_impostor", 9),
            ("internal", 1),
        ] {
            assert_eq!(Error::daemon(code, "m").exit_code(), exit, "{code}");
        }
        assert_eq!(Error::unavailable("x").kind(), ErrorKind::DaemonUnavailable);
        assert_eq!(Error::Impostor("x".into()).exit_code(), 9);
        assert_eq!(Error::BadResponse("x".into()).exit_code(), 1);
    }
}
