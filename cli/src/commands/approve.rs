//! `authsome approve RUN_ID PROVIDER[=CONNECTION]` and `authsome deny ...`:
//! answer a `--ask` run's held request from another terminal. The answer
//! holds for the rest of the run.

use crate::client::enc;
use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run (`authsome runs` lists them).
    run: String,
    /// The provider whose requests wait.
    #[arg(value_name = "PROVIDER[=CONNECTION]")]
    provider: String,
}

/// Runs `approve` (`allow`) or `deny`.
pub fn run(ctx: &Ctx, args: Args, allow: bool) -> CliResult {
    let verb = if allow { "approve" } else { "deny" };
    ctx.client()?.post::<_, serde_json::Value>(
        &format!("/v1/runs/{}/{verb}", enc(&args.run)),
        &serde_json::json!({ "provider": args.provider }),
    )?;
    output::line(&format!(
        "{} {} for run {}",
        if allow { "Allowed" } else { "Denied" },
        args.provider,
        args.run
    ))
}
