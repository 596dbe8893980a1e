//! `authsome log [-n N] [--json]`: the audit log, read from the home.

use authsome_daemon::audit::read_tail_matching;

use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of events.
    #[arg(short = 'n', long = "lines", default_value_t = 20)]
    n: usize,
    /// Only the events of this `authsome run` (its requests, its policy
    /// decisions, its end).
    #[arg(long, value_name = "RUN_ID")]
    run: Option<String>,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let events = read_tail_matching(&ctx.home.audit_log(), args.n, |e| match &args.run {
        Some(id) => e.get("run").and_then(|r| r.as_str()) == Some(id.as_str()),
        None => true,
    })?;
    let mut text = String::new();
    for e in &events {
        if ctx.json {
            // JSON Lines: one object per line.
            text.push_str(&serde_json::to_string(e).expect("json"));
        } else {
            let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
            let target = match (
                e.get("provider").and_then(|v| v.as_str()),
                e.get("connection").and_then(|v| v.as_str()),
            ) {
                (Some(p), Some(c)) => format!("{p} ({c})"),
                (Some(p), None) => p.to_string(),
                _ => "-".into(),
            };
            text.push_str(
                format!(
                    "{}  {:<13} {:<28} {:<8} {}",
                    s("ts"),
                    s("event"),
                    target,
                    s("status"),
                    match e.get("request") {
                        Some(r) => format!(
                            "{} {}{} -> {} ({} B, {} ms)",
                            r["method"].as_str().unwrap_or("-"),
                            r["host"].as_str().unwrap_or("-"),
                            r["path"].as_str().unwrap_or(""),
                            r["http_status"],
                            r["bytes"],
                            r["ms"]
                        ),
                        None => s("detail"),
                    }
                )
                .trim_end(),
            );
        }
        text.push('\n');
    }
    output::emit(&text)
}
