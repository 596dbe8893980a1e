//! `authsome events`: the daemon's events as JSON lines, one per event, as
//! they happen, until the daemon stops or the reader goes away.

use std::io::Write;

use crate::error::{CliError, CliResult};
use crate::Ctx;

/// Runs the command.
pub fn run(ctx: &Ctx) -> CliResult {
    let client = ctx.client()?;
    let events = client.events()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for event in events {
        let line = serde_json::to_string(&event?).expect("events serialize");
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Err(CliError::unavailable("the daemon stopped"))
}
