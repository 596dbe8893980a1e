//! `authsome revoke <provider>`.

use authsome_daemon::wire::RevokeResponse;

use crate::client::enc;
use crate::error::CliResult;
use crate::output;
use crate::{connection_arg, provider_arg, Ctx};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider.
    #[arg(add = crate::complete::providers())]
    provider: String,
    /// Connection name (default `default`).
    #[arg(long, add = crate::complete::connections())]
    connection: Option<String>,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let provider = provider_arg(&args.provider)?;
    let connection = connection_arg(args.connection.as_deref())?;
    let path = format!(
        "/v1/connections/{}/{}/revoke",
        enc(&provider),
        enc(&connection)
    );
    let resp: RevokeResponse = ctx.client()?.post(&path, &serde_json::json!({}))?;
    for w in &resp.warnings {
        eprintln!("Warning: {w}");
    }
    if ctx.json {
        return output::json(&resp);
    }
    let mut what = Vec::new();
    if resp.removed_connection {
        what.push("credentials deleted");
    }
    if resp.removed_client {
        what.push("client credentials forgotten");
    }
    output::line(&format!(
        "Revoked {} ({}): {}.",
        resp.provider,
        resp.connection,
        what.join(", ")
    ))
}
