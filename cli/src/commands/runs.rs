//! `authsome runs [--json]`: the live `authsome run`s: id, pid, command,
//! start, requests given a credential per provider, and what each may use.

use authsome_daemon::wire::RunInfo;

use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// Runs the command.
pub fn run(ctx: &Ctx) -> CliResult {
    let runs: Vec<RunInfo> = ctx.client()?.get("/v1/runs")?;
    if ctx.json {
        return output::json(&runs);
    }
    if runs.is_empty() {
        return output::line("No runs.");
    }
    let mut text = format!(
        "{:<20} {:>8}  {:<16} {:<20} {:<24} {}\n",
        "RUN", "PID", "COMMAND", "STARTED", "INJECTED", "MAY USE"
    );
    for r in &runs {
        let injected: Vec<String> = r.injected.iter().map(|(p, n)| format!("{p}={n}")).collect();
        let mut may = match &r.allow {
            Some(a) => a.join(","),
            None => "all connected".into(),
        };
        if r.read_only {
            may.push_str(", read-only");
        }
        if r.only_providers {
            may.push_str(", only providers");
        }
        if r.ask {
            may.push_str(", asks");
        }
        for p in &r.pending {
            may.push_str(&format!(
                "; WAITING: {} {} {}{} (`authsome approve {} {}`)",
                p.provider, p.method, p.host, p.path, r.id, p.provider
            ));
        }
        text.push_str(&format!(
            "{:<20} {:>8}  {:<16} {:<20} {:<24} {}\n",
            r.id,
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            r.command,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            if injected.is_empty() {
                "-".to_string()
            } else {
                injected.join(" ")
            },
            may
        ));
    }
    output::emit(&text)
}
