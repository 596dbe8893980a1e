//! `authsome backup FILE` and `authsome restore FILE`: every profile in one
//! file encrypted with a passphrase (the age format).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use authsome_daemon::wire::{BackupSummary, RestoreSummary};
use zeroize::Zeroizing;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Shortest passphrase accepted for a new backup.
const MIN_PASSPHRASE: usize = 10;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup file.
    file: PathBuf,
    /// Read the passphrase from the first line of standard input (for
    /// scripts) instead of a masked prompt.
    #[arg(long)]
    stdin: bool,
    /// Backup: replace FILE. Restore: replace what this home already has.
    #[arg(long)]
    force: bool,
}

fn passphrase(args: &Args, confirm: bool) -> CliResult<Zeroizing<String>> {
    if !args.stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no terminal to ask for the passphrase on; give it on standard input with --stdin",
        ));
    }
    let read = if args.stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line)?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        let first = Zeroizing::new(rpassword::prompt_password("Backup passphrase: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("The same again: ")?);
            if *again != *first {
                return Err(CliError::usage(
                    "the passphrases differ; nothing was written",
                ));
            }
        }
        first
    };
    if read.is_empty() {
        return Err(CliError::usage("no passphrase was given"));
    }
    if confirm && read.chars().count() < MIN_PASSPHRASE {
        return Err(CliError::usage(format!(
            "the passphrase is shorter than {MIN_PASSPHRASE} characters; the backup holds every secret"
        )));
    }
    Ok(read)
}

fn absolute(file: &std::path::Path) -> CliResult<String> {
    std::path::absolute(file)
        .map(|p| p.display().to_string())
        .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))
}

/// `authsome backup FILE`.
pub fn backup(ctx: &Ctx, args: Args) -> CliResult {
    let path = absolute(&args.file)?;
    let client = ctx.client()?;
    let pass = passphrase(&args, true)?;
    let summary: BackupSummary = client.post(
        "/v1/backup",
        &serde_json::json!({"path": path, "passphrase": pass.as_str(), "force": args.force}),
    )?;
    if ctx.json {
        return output::json(&summary);
    }
    println!(
        "Wrote {} (mode 0600): {} profiles, {} connections, {} client credentials, {} custom providers, settings.",
        summary.path, summary.profiles, summary.connections, summary.clients, summary.providers
    );
    println!(
        "It holds every secret, encrypted with the passphrase (age format: `age -d` opens it too). \
         Keep the passphrase apart from the file."
    );
    Ok(())
}

/// `authsome restore FILE`.
pub fn restore(ctx: &Ctx, args: Args) -> CliResult {
    let path = absolute(&args.file)?;
    if !std::path::Path::new(&path).is_file() {
        return Err(CliError::usage(format!("{path}: no such file")));
    }
    let client = ctx.client()?;
    let pass = passphrase(&args, false)?;
    let summary: RestoreSummary = client.post(
        "/v1/restore",
        &serde_json::json!({"path": path, "passphrase": pass.as_str(), "force": args.force}),
    )?;
    if ctx.json {
        return output::json(&summary);
    }
    let r = &summary.restored;
    println!(
        "Restored from {}: {} connections and {} client credentials in {} profiles, {} custom providers{}.",
        r.path,
        r.connections,
        r.clients,
        r.profiles,
        r.providers,
        if r.config { ", settings" } else { "" }
    );
    if !summary.skipped.is_empty() {
        println!("Kept what this home had (--force replaces it):");
        for s in &summary.skipped {
            println!("  {s}");
        }
    }
    Ok(())
}
