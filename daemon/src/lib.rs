//! The Authsome daemon: everything that stores, refreshes and hands out
//! credentials. The CLI (`authsome daemon serve`) and the tray app both start
//! it through [`daemon::Daemon`]; neither adds behaviour of its own.
//!
//! Modules:
//! - [`home`]: the home directory layout and `config.toml`.
//! - [`names`]: validated, filesystem-safe names for providers, connections, profiles.
//! - [`secret`]: the [`secret::Secret`] wrapper that never prints its value.
//! - [`vault`]: the encrypted SQLite store and the master key backends.
//! - [`providers`]: the provider schema, validation and the catalogue.
//! - [`flows`]: login sessions and the flow for each kind of credential.
//! - [`prompt`]: how the daemon asks a person for input (bridge pages, tray windows).
//! - [`notify`]: how the daemon tells a person that a connection needs attention.
//! - [`refresh`]: refresh on read, single flight, and the scheduler.
//! - [`proxy`]: the credential-injecting proxy behind `authsome run`.
//! - [`contain`]: the Landlock sandbox a `run` command is executed in.
//! - [`audit`]: the append-only audit log.
//! - [`api`]: the axum routes and their wire types.
//! - [`daemon`]: the handle that owns all of the above, start-up and shutdown.
//! - [`doctor`]: installation checks shared by the CLI and the tray.
//! - [`identity`]: the challenge a client checks before it trusts a daemon's port.
//! - [`logging`]: the rotated debug log.
//! - [`invariants`]: properties of the untrusted-input parsers, for fuzzing and regression tests.

pub mod api;
pub mod audit;
pub mod autostart;
pub mod backup;
pub mod catalogue;
pub mod connections;
pub mod contain;
pub mod daemon;
pub mod doctor;
pub mod error;
pub mod events;
pub mod flows;
pub mod home;
pub mod identity;
pub mod import;
pub mod instance;
pub mod invariants;
pub mod logging;
pub mod mcp;
pub mod names;
pub mod notify;
pub mod process;
pub mod prompt;
pub mod providers;
pub mod proxy;
pub mod refresh;
pub mod secret;
pub mod services;
pub mod vault;
pub mod wire;

pub use daemon::{Daemon, DaemonOptions};
pub use error::{Error, Result};

/// The version every daemon reports on `/health`; the CLI restarts a daemon
/// whose version differs from its own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The port the daemon listens on unless `AUTHSOME_PORT` or the config says otherwise.
pub const DEFAULT_PORT: u16 = 7998;

/// Path of the OAuth callback on the daemon port.
pub const OAUTH_CALLBACK_PATH: &str = "/auth/callback/oauth";
