//! `authsome doctor`: installation checks; exits 1 when one fails.

use authsome_daemon::doctor::{local_checks, Check, CheckStatus};
use authsome_daemon::wire::StatusResponse;

use crate::client::{health, pid_alive, read_info, Client};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

fn daemon_check(ctx: &Ctx) -> Check {
    let mk = |status, detail: String| Check {
        name: "daemon".into(),
        status,
        detail,
    };
    let Some(info) = read_info(&ctx.home).filter(|i| pid_alive(i.pid)) else {
        return mk(
            CheckStatus::Warn,
            "not running; any command starts it (or `authsome daemon start`)".into(),
        );
    };
    match health(info.port) {
        None => mk(
            CheckStatus::Fail,
            format!(
                "pid {} holds the home but port {} does not answer",
                info.pid, info.port
            ),
        ),
        Some(h) if h.version != authsome_daemon::VERSION => mk(
            CheckStatus::Warn,
            format!(
                "version {} runs; this CLI is {} (the next command restarts it)",
                h.version,
                authsome_daemon::VERSION
            ),
        ),
        Some(h) => {
            let status = Client::connect(&ctx.home, None, ctx.verbose)
                .and_then(|c| c.get::<StatusResponse>("/v1/status"));
            match status {
                Ok(s) => mk(
                    if s.core_dumps_disabled {
                        CheckStatus::Ok
                    } else {
                        CheckStatus::Warn
                    },
                    format!(
                        "version {} pid {} on 127.0.0.1:{}, master key from {}, core dumps {}",
                        h.version,
                        s.pid,
                        s.port,
                        s.key_source.as_str(),
                        if s.core_dumps_disabled {
                            "off"
                        } else {
                            "possible"
                        }
                    ),
                ),
                Err(e) => mk(
                    CheckStatus::Fail,
                    format!("answers but refuses this CLI: {}", e.message()),
                ),
            }
        }
    }
}

/// Runs the command.
pub fn run(ctx: &Ctx) -> CliResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut checks = rt.block_on(local_checks(&ctx.home));
    checks.push(daemon_check(ctx));
    let failed = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    if ctx.json {
        output::json(&serde_json::json!({ "ok": failed == 0, "checks": checks }))?;
    } else {
        let mut text = String::new();
        for c in &checks {
            let mark = match c.status {
                CheckStatus::Ok => "ok  ",
                CheckStatus::Warn => "warn",
                CheckStatus::Fail => "FAIL",
            };
            text.push_str(&format!("[{mark}] {:<16} {}\n", c.name, c.detail));
        }
        output::emit(&text)?;
    }
    if failed > 0 {
        return Err(CliError::ChecksFailed(format!("{failed} check(s) failed")));
    }
    Ok(())
}
