//! `authsome init [--key-backend keychain|file]`.

use authsome_daemon::home::KeyBackendKind;
use authsome_daemon::vault::keys::MasterKeyLoader;

use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to keep the master key: the OS keychain or master.key (0600).
    #[arg(long, value_parser = ["keychain", "file"])]
    key_backend: Option<String>,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let requested = args
        .key_backend
        .as_deref()
        .map(str::parse::<KeyBackendKind>)
        .transpose()?;
    let report = MasterKeyLoader::new(ctx.home.clone()).init(requested)?;
    let root = ctx.home.root().display().to_string();
    if ctx.json {
        return output::json(&serde_json::json!({
            "home": root,
            "key_backend": report.backend.map(|b| b.as_str()),
            "created": report.created,
            "keychain_unavailable": report.fallback_reason,
        }));
    }
    if let Some(reason) = &report.fallback_reason {
        eprintln!(
            "Note: the OS keychain is not available ({reason}); using the file backend instead."
        );
    }
    let where_ = match report.backend {
        Some(KeyBackendKind::Keychain) => "the OS keychain".to_string(),
        Some(KeyBackendKind::File) => {
            format!("{} (mode 0600)", ctx.home.master_key_path().display())
        }
        None => "AUTHSOME_MASTER_KEY (nothing stored)".to_string(),
    };
    let verb = if report.created {
        "Initialized"
    } else {
        "Already initialized:"
    };
    output::line(&format!("{verb} {root}; master key in {where_}"))
}
