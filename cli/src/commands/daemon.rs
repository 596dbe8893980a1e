//! `authsome daemon serve|start|stop|status`.

use authsome_daemon::logging::{self, StderrLevel};
use authsome_daemon::wire::StatusResponse;
use authsome_daemon::{Daemon, DaemonOptions};

use crate::client::{
    health, pid_alive, probe, read_info, start_daemon, stop_daemon, Client, Probe, ReadyLine,
};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DaemonCommand {
    /// Run the daemon in the foreground (Ctrl-C or SIGTERM stops it).
    Serve {
        /// Print one JSON line on stdout once listening (used when the CLI starts it).
        #[arg(long, hide = true)]
        ready_pipe: bool,
        /// Read the master key (base64) from the first line of standard
        /// input, so that it is never in this process's environment.
        #[arg(long, hide = true)]
        master_key_stdin: bool,
    },
    /// Start the daemon in the background if it is not running.
    Start,
    /// Stop the daemon.
    Stop,
    /// Show whether the daemon runs, and its version, pid and port.
    Status,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn serve(ctx: &Ctx, ready_pipe: bool) -> CliResult {
    authsome_daemon::process::disable_core_dumps();
    let stderr = match (ready_pipe, ctx.verbose) {
        (true, _) => StderrLevel::Off,
        (false, true) => StderrLevel::Debug,
        (false, false) => StderrLevel::Info,
    };
    logging::init(Some(&ctx.home.logs_dir()), stderr);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match Daemon::start(DaemonOptions::new(ctx.home.clone())).await {
            Ok((daemon, listener, report)) => {
                let mut notes = Vec::new();
                if let Some(reason) = &report.init.fallback_reason {
                    notes.push(format!(
                        "the OS keychain is not available ({reason}); the master key is stored in {} (mode 0600)",
                        ctx.home.master_key_path().display()
                    ));
                }
                notes.extend(report.provider_problems.iter().map(|p| format!("custom provider left out: {p}")));
                if ready_pipe {
                    let line = ReadyLine { ready: true, port: Some(daemon.port()), error: None, message: None, notes };
                    output::line(&serde_json::to_string(&line).expect("json"))?;
                } else {
                    for n in notes {
                        eprintln!("Note: {n}");
                    }
                    eprintln!(
                        "Authsome daemon {} serving {} on http://127.0.0.1:{} (master key from {}). Ctrl-C stops it.",
                        authsome_daemon::VERSION,
                        ctx.home.root().display(),
                        daemon.port(),
                        report.key_source.as_str()
                    );
                }
                daemon.serve(listener, shutdown_signal()).await.map_err(CliError::from)
            }
            Err(e) => {
                tracing::error!("daemon failed to start: {e}");
                if ready_pipe {
                    let line = ReadyLine {
                        ready: false,
                        port: None,
                        error: Some(e.code().into()),
                        message: Some(e.to_string()),
                        notes: vec![],
                    };
                    output::line(&serde_json::to_string(&line).expect("json"))?;
                }
                Err(e.into())
            }
        }
    })
}

/// Runs the command.
pub fn run(ctx: &Ctx, cmd: DaemonCommand) -> CliResult {
    match cmd {
        DaemonCommand::Serve {
            ready_pipe,
            master_key_stdin,
        } => {
            if master_key_stdin {
                let mut line = zeroize::Zeroizing::new(String::new());
                std::io::stdin().read_line(&mut line)?;
                authsome_daemon::vault::keys::set_given_key(zeroize::Zeroizing::new(
                    line.trim().to_string(),
                ));
            }
            serve(ctx, ready_pipe)
        }
        DaemonCommand::Start => {
            let running = read_info(&ctx.home)
                .filter(|i| pid_alive(i.pid) && i.version == authsome_daemon::VERSION);
            let proven = |port: u16| {
                std::fs::read_to_string(ctx.home.token_path())
                    .is_ok_and(|t| matches!(probe(port, t.trim()), Probe::Ours(_)))
            };
            let port = match running {
                Some(i) if proven(i.port) => i.port,
                _ => {
                    let _ = stop_daemon(&ctx.home);
                    start_daemon(&ctx.home)?
                }
            };
            let pid = read_info(&ctx.home).map(|i| i.pid).unwrap_or_default();
            output::line(&format!(
                "Authsome daemon running (pid {pid}) on http://127.0.0.1:{port}"
            ))
        }
        DaemonCommand::Stop => {
            if stop_daemon(&ctx.home)? {
                output::line("Authsome daemon stopped")
            } else {
                output::line("Authsome daemon is not running")
            }
        }
        DaemonCommand::Status => {
            let Some(info) = read_info(&ctx.home).filter(|i| pid_alive(i.pid)) else {
                return Err(CliError::unavailable("the Authsome daemon is not running"));
            };
            if health(info.port).is_none() {
                return Err(CliError::unavailable(format!(
                    "daemon pid {} does not answer on port {}",
                    info.pid, info.port
                )));
            }
            let status: StatusResponse =
                Client::connect(&ctx.home, None, ctx.verbose)?.get("/v1/status")?;
            if ctx.json {
                return output::json(&status);
            }
            output::line(&format!(
                "running: version {}, pid {}, http://127.0.0.1:{}, home {}, master key from {}",
                status.version,
                status.pid,
                status.port,
                status.home,
                status.key_source.as_str()
            ))
        }
    }
}
