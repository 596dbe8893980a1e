//! `authsome register FILE [--force]`.

use std::io::Read;
use std::path::PathBuf;

use authsome_daemon::providers::MAX_DEFINITION_BYTES;
use authsome_daemon::wire::RegisterResponse;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A provider definition (JSON).
    file: PathBuf,
    /// Replace a provider of the same name.
    #[arg(long)]
    force: bool,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let shown = args.file.display().to_string();
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_DEFINITION_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_DEFINITION_BYTES {
        return Err(CliError::daemon(
            "invalid_provider",
            format!("{shown} is larger than {MAX_DEFINITION_BYTES} bytes"),
        ));
    }
    let definition: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::daemon(
            "invalid_provider",
            format!("{shown} is not valid JSON: {e}"),
        )
    })?;
    let resp: RegisterResponse = ctx.client()?.post(
        "/v1/providers",
        &serde_json::json!({ "definition": definition, "force": args.force }),
    )?;
    for w in &resp.warnings {
        eprintln!("Warning: {w}");
    }
    if ctx.json {
        return output::json(&resp);
    }
    output::line(&format!(
        "{} provider {}",
        if resp.replaced {
            "Replaced"
        } else {
            "Registered"
        },
        resp.name
    ))
}
