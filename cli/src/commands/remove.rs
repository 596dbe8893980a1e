//! `authsome remove <provider>`.

use authsome_daemon::wire::RemoveResponse;

use crate::client::enc;
use crate::error::CliResult;
use crate::output;
use crate::{provider_arg, Ctx};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider.
    #[arg(add = crate::complete::providers())]
    provider: String,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let provider = provider_arg(&args.provider)?;
    let resp: RemoveResponse = ctx.client()?.post(
        &format!("/v1/providers/{}/remove", enc(&provider)),
        &serde_json::json!({}),
    )?;
    if ctx.json {
        return output::json(&resp);
    }
    output::line(&format!(
        "Removed {} state: {} connection(s){}. The provider definition stays.",
        resp.provider,
        resp.connections_removed,
        if resp.client_removed {
            " and its client credentials"
        } else {
            ""
        }
    ))
}
