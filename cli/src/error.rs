//! The CLI's error: what went wrong, its stable code (the daemon's, or one
//! of the CLI's own), a message, and the one table of exit codes.

use std::fmt;

/// A failed command. Messages never hold a secret.
#[derive(Debug)]
pub enum CliError {
    /// An error the daemon (or the daemon crate) reported, by its stable code.
    Daemon {
        /// The code, as in API error bodies.
        code: String,
        /// The message.
        message: String,
    },
    /// Bad command-line usage.
    Usage(String),
    /// `get --field` with a field that does not exist.
    UnknownField(String),
    /// The daemon could not be reached or started.
    Unavailable(String),
    /// The process on the daemon's port is not this home's daemon.
    Impostor(String),
    /// The daemon answered something this CLI does not understand.
    BadResponse(String),
    /// A local I/O failure.
    Io(String),
    /// `run` could not start its command; `status` is what a shell exits
    /// with (127 not found, 126 otherwise).
    Exec {
        /// 126 or 127.
        status: i32,
        /// The message.
        message: String,
    },
    /// `doctor` found problems.
    ChecksFailed(String),
    /// `status`: a connection is expired or invalid.
    NeedsAttention(String),
    /// `import`: some keys were skipped (exit 8).
    Skipped(String),
    /// Stdout was closed by the reader (`authsome list | head`): not a failure.
    BrokenPipe,
}

impl CliError {
    /// An error with one of the daemon's codes.
    pub fn daemon(code: &str, message: impl Into<String>) -> Self {
        CliError::Daemon {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// The daemon could not be reached or started.
    pub fn unavailable(message: impl Into<String>) -> Self {
        CliError::Unavailable(message.into())
    }

    /// The stable code, as `--json` prints it.
    pub fn code(&self) -> &str {
        match self {
            CliError::Daemon { code, .. } => code,
            CliError::Usage(_) => "usage",
            CliError::UnknownField(_) => "unknown_field",
            CliError::Unavailable(_) => "daemon_unavailable",
            CliError::Impostor(_) => "daemon_impostor",
            CliError::BadResponse(_) => "bad_response",
            CliError::Io(_) => "io_error",
            CliError::Exec { status: 127, .. } => "command_not_found",
            CliError::Exec { .. } => "command_failed",
            CliError::ChecksFailed(_) => "doctor_failed",
            CliError::NeedsAttention(_) => "needs_attention",
            CliError::Skipped(_) => "skipped",
            CliError::BrokenPipe => "broken_pipe",
        }
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        match self {
            CliError::Daemon { message, .. } | CliError::Exec { message, .. } => message,
            CliError::Usage(m)
            | CliError::UnknownField(m)
            | CliError::Unavailable(m)
            | CliError::Impostor(m)
            | CliError::BadResponse(m)
            | CliError::Io(m)
            | CliError::ChecksFailed(m)
            | CliError::NeedsAttention(m)
            | CliError::Skipped(m) => m,
            CliError::BrokenPipe => "",
        }
    }

    /// Exit codes: 0 ok, 1 error, 2 usage, invalid input or cancelled, 3
    /// connection not found, 4 provider not found, 5 credential missing or
    /// refresh failed, or (`status`) a connection needs attention, 6 already
    /// connected, 8 (`import`) some keys were skipped, 9 daemon unavailable or not
    /// ours; `run` exits 126/127 when its command cannot start.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::BrokenPipe => 0,
            CliError::Usage(_) | CliError::UnknownField(_) => 2,
            CliError::Unavailable(_) | CliError::Impostor(_) => 9,
            CliError::Exec { status, .. } => *status,
            CliError::NeedsAttention(_) => 5,
            CliError::Skipped(_) => 8,
            CliError::Daemon { code, .. } => authsome_client::Error::daemon(code, "").exit_code(),
            CliError::BadResponse(_) | CliError::Io(_) | CliError::ChecksFailed(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl From<authsome_daemon::Error> for CliError {
    fn from(e: authsome_daemon::Error) -> Self {
        CliError::daemon(e.code(), e.to_string())
    }
}

impl From<authsome_client::Error> for CliError {
    fn from(e: authsome_client::Error) -> Self {
        use authsome_client::Error as E;
        match e {
            E::Daemon { code, message } => CliError::Daemon { code, message },
            E::Unavailable(m) => CliError::Unavailable(m),
            E::Impostor(m) => CliError::Impostor(m),
            E::BadResponse(m) => CliError::BadResponse(m),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Io(e.to_string())
        }
    }
}

/// Result alias.
pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        let daemon = |code: &str| CliError::daemon(code, "m").exit_code();
        assert_eq!(daemon("connection_not_found"), 3);
        assert_eq!(daemon("provider_not_found"), 4);
        assert_eq!(daemon("refresh_failed"), 5);
        assert_eq!(daemon("already_connected"), 6);
        assert_eq!(daemon("daemon_impostor"), 9);
        assert_eq!(daemon("token_exchange_failed"), 1);
        assert_eq!(CliError::usage("u").exit_code(), 2);
        assert_eq!(CliError::unavailable("u").exit_code(), 9);
        assert_eq!(CliError::BrokenPipe.exit_code(), 0);
        let exec = |status| CliError::Exec {
            status,
            message: "m".into(),
        };
        assert_eq!(
            (exec(127).exit_code(), exec(127).code()),
            (127, "command_not_found")
        );
        assert_eq!(exec(126).exit_code(), 126);
    }
}
