//! `authsome grants [--json]` lists the leases (approvals given "for a
//! while for this command"); `authsome grants revoke ID` ends one, and runs
//! of that command are asked again.

use authsome_daemon::wire::GrantView;

use crate::client::enc;
use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// `authsome grants` and its subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<GrantsCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum GrantsCommand {
    /// End a lease: runs of its command are asked again.
    Revoke {
        /// The lease's id (`authsome grants` lists them).
        id: String,
    },
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let client = ctx.client()?;
    if let Some(GrantsCommand::Revoke { id }) = args.command {
        let g: GrantView = client.delete_json(&format!("/v1/grants/{}", enc(&id)))?;
        if ctx.json {
            return output::json(&g);
        }
        return output::line(&format!(
            "Revoked lease {} ({} for command {:?})",
            g.id, g.provider, g.command
        ));
    }
    let grants: Vec<GrantView> = client.get("/v1/grants")?;
    if ctx.json {
        return output::json(&grants);
    }
    if grants.is_empty() {
        return output::line("No leases.");
    }
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            vec![
                g.id.clone(),
                g.provider.clone(),
                g.connection.clone(),
                g.command.clone(),
                output::when(Some(g.expires_at)),
            ]
        })
        .collect();
    output::emit(&output::table(
        &["ID", "PROVIDER", "CONNECTION", "COMMAND", "UNTIL"],
        &rows,
    ))
}
