//! `authsome log [-n N] [--json]`: the audit log, read from the home.

use authsome_daemon::audit::read_tail;

use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of events.
    #[arg(short = 'n', long = "lines", default_value_t = 20)]
    n: usize,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let events = read_tail(&ctx.home.audit_log(), args.n)?;
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
                    s("detail")
                )
                .trim_end(),
            );
        }
        text.push('\n');
    }
    output::emit(&text)
}
