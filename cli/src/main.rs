//! `authsome`: the command line for people, agents and scripts. It talks to
//! the daemon over its localhost API and starts it headless when none runs.

mod client;
mod commands;
mod complete;
mod dotenv;
mod error;
mod examples;
mod output;

use clap::{Parser, Subcommand};

use authsome_daemon::home::Home;

use crate::error::{CliError, CliResult};

/// Local credential broker for AI agents.
#[derive(Debug, Parser)]
#[command(name = "authsome", version, about, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Print DEBUG lines (requests, timings) on stderr.
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
    /// Profile to act on (default: the configured profile, else `default`).
    #[arg(long, global = true, env = "AUTHSOME_PROFILE")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the home and choose where the master key lives.
    Init(commands::init::Args),
    /// Connect a provider: API key, or OAuth (pkce, device_code, dcr_pkce).
    Login(commands::login::Args),
    /// Store the API keys found in .env files and the environment (by each
    /// provider's variable, such as OPENAI_API_KEY); --dry-run to look first.
    Import(commands::import::Args),
    /// Every provider and connection with its state.
    List,
    /// Show a connection; secrets only with --show-secret.
    Get(commands::get::Args),
    /// Print a connection's credentials as environment variables.
    Export(commands::export::Args),
    /// Run a command behind the proxy that adds credentials to its requests.
    Run(commands::run::Args),
    /// The live runs: id, pid, command, requests injected, what each may use.
    Runs,
    /// Let a run's held requests to a provider go on (for the rest of the
    /// run; --once: only the held one; --for 1h: a lease for the command).
    Approve(commands::approve::Args),
    /// Refuse a run's held requests to a provider (403, for the rest of the run).
    Deny(commands::approve::Args),
    /// The leases given with `approve --for`; `grants revoke ID` ends one.
    Grants(commands::grants::Args),
    /// Show a provider's definition and its connections.
    Inspect(commands::inspect::Args),
    /// Delete a connection's credentials and the provider's client credentials.
    Revoke(commands::revoke::Args),
    /// Delete all of a provider's state in the profile (the definition stays).
    Remove(commands::remove::Args),
    /// Add a custom provider definition from a JSON file.
    Register(commands::register::Args),
    /// Show recent audit events.
    Log(commands::log::Args),
    /// Check the installation.
    Doctor,
    /// Rotate the master key: every stored secret re-sealed with a new key
    /// (crash-safe; stops the daemon, the next command starts it again).
    Rekey,
    /// Write every profile's connections, client credentials, custom
    /// providers and settings to FILE, encrypted with a passphrase (age).
    Backup(commands::backup::Args),
    /// Read a backup into this home (what it lacks; --force also replaces
    /// what it has). The home keeps its own master key.
    Restore(commands::backup::Args),
    /// One screen at a glance: the daemon, the key, connections by state
    /// with the soonest expiry, live runs, the last error.
    Status,
    /// Bring up the tray app's main window (starting the app if needed).
    Open,
    /// The tray app: `autostart on|off|status`.
    #[command(subcommand)]
    Tray(commands::tray::TrayCommand),
    /// Print the shell's completion script (it completes commands, flags,
    /// provider names and, from a running daemon, connection names).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_parser = ["bash", "zsh", "fish", "elvish", "powershell"])]
        shell: String,
    },
    /// Print the daemon's events as JSON lines as they happen (logins,
    /// connection status, runs), for scripts.
    Events,
    /// Remote MCP servers: add one, list them, print a host's config, and
    /// `connect` (the stdio bridge an MCP host launches).
    #[command(subcommand)]
    Mcp(commands::mcp::McpCommand),
    /// Manage profiles.
    #[command(subcommand)]
    Profile(commands::profile::ProfileCommand),
    /// Manage the daemon.
    #[command(subcommand)]
    Daemon(commands::daemon::DaemonCommand),
}

/// What every command gets: the home, output mode, profile.
#[derive(Debug)]
pub struct Ctx {
    /// The home directory.
    pub home: Home,
    /// `--json`.
    pub json: bool,
    /// `--verbose`.
    pub verbose: bool,
    /// `--profile`.
    pub profile: Option<String>,
}

impl Ctx {
    /// A client for the home's daemon (started if needed).
    pub fn client(&self) -> CliResult<client::Client> {
        if let Some(p) = &self.profile {
            authsome_daemon::names::ProfileName::parse(p)?;
        }
        Ok(client::Client::connect(
            &self.home,
            self.profile.clone(),
            self.verbose,
        )?)
    }
}

fn run(cli: Cli) -> CliResult {
    let home = Home::from_env()?;
    let ctx = Ctx {
        home,
        json: cli.json,
        verbose: cli.verbose,
        profile: cli.profile,
    };
    match cli.command {
        Command::Init(a) => commands::init::run(&ctx, a),
        Command::Login(a) => commands::login::run(&ctx, a),
        Command::Import(a) => commands::import::run(&ctx, a),
        Command::List => commands::list::run(&ctx),
        Command::Get(a) => commands::get::run(&ctx, a),
        Command::Export(a) => commands::export::run(&ctx, a),
        Command::Run(a) => commands::run::run(&ctx, a),
        Command::Runs => commands::runs::run(&ctx),
        Command::Approve(a) => commands::approve::run(&ctx, a, true),
        Command::Deny(a) => commands::approve::run(&ctx, a, false),
        Command::Grants(a) => commands::grants::run(&ctx, a),
        Command::Inspect(a) => commands::inspect::run(&ctx, a),
        Command::Revoke(a) => commands::revoke::run(&ctx, a),
        Command::Remove(a) => commands::remove::run(&ctx, a),
        Command::Register(a) => commands::register::run(&ctx, a),
        Command::Log(a) => commands::log::run(&ctx, a),
        Command::Doctor => commands::doctor::run(&ctx),
        Command::Rekey => commands::rekey::run(&ctx),
        Command::Backup(a) => commands::backup::backup(&ctx, a),
        Command::Restore(a) => commands::backup::restore(&ctx, a),
        Command::Status => commands::status::run(&ctx),
        Command::Tray(c) => commands::tray::run(&ctx, c),
        Command::Open => commands::open::run(&ctx),
        Command::Completions { shell } => output::emit(&complete::script(&shell)?),
        Command::Events => commands::events::run(&ctx),
        Command::Mcp(c) => commands::mcp::run(&ctx, c),
        Command::Profile(c) => commands::profile::run(&ctx, c),
        Command::Daemon(c) => commands::daemon::run(&ctx, c),
    }
}

fn main() {
    // Single-threaded here: no child of this process inherits the key.
    authsome_daemon::vault::keys::take_master_key_from_env();
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(commands::run::TRAMPOLINE)) {
        commands::run::contained_exec(args);
    }
    complete::answer_if_asked(cli_command);
    let parsed = cli_command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let json = cli.json;
    if let Err(e) = run(cli) {
        let code = e.exit_code();
        if !matches!(e, CliError::BrokenPipe) {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"error": e.code(), "message": e.message()})
                );
            } else {
                eprintln!("Error: {}", e.message());
            }
        }
        std::process::exit(code);
    }
}

/// The command line's definition, with its examples.
fn cli_command() -> clap::Command {
    examples::command(<Cli as clap::CommandFactory>::command())
}

/// Validates a provider name given on the command line.
pub fn provider_arg(name: &str) -> CliResult<String> {
    authsome_daemon::names::ProviderName::parse(name)
        .map(|n| n.to_string())
        .map_err(CliError::from)
}

/// Validates a connection name given on the command line.
pub fn connection_arg(name: Option<&str>) -> CliResult<String> {
    match name {
        Some(n) => authsome_daemon::names::ConnectionName::parse(n)
            .map(|n| n.to_string())
            .map_err(CliError::from),
        None => Ok("default".into()),
    }
}
