//! `authsome import`: API keys from `.env` files and the environment, found
//! by the providers' `env_var`, stored as API-key connections.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use authsome_daemon::providers::{AuthType, ProviderDef};
use authsome_daemon::wire::{ImportOutcome, ImportResponse, ImportResult};
use zeroize::Zeroizing;

use crate::dotenv;
use crate::error::{CliError, CliResult};
use crate::output;
use crate::{connection_arg, Ctx};

/// The files looked at in the current directory, in this order.
pub const DOTENV_FILES: [&str; 8] = [
    ".env",
    ".env.local",
    ".env.development",
    ".env.development.local",
    ".env.test",
    ".env.test.local",
    ".env.production",
    ".env.production.local",
];

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read these files instead of the environment and the current
    /// directory's .env files; repeatable.
    #[arg(long = "from", value_name = "FILE")]
    from: Vec<PathBuf>,
    /// Only print what would happen; store nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace a stored key that differs.
    #[arg(long)]
    force: bool,
    /// The connection to import into (default `default`).
    #[arg(long, add = crate::complete::connections())]
    connection: Option<String>,
}

/// Where a value was found.
struct Found {
    variable: String,
    value: Zeroizing<String>,
    /// `None`: the environment.
    file: Option<(PathBuf, usize)>,
}

impl Found {
    fn source(&self) -> String {
        match &self.file {
            Some((path, line)) => format!("{}:{line}", path.display()),
            None => "environment".into(),
        }
    }
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let connection = connection_arg(args.connection.as_deref())?;
    let mut found = Vec::new();
    let mut looked = Vec::new();
    if args.from.is_empty() {
        looked.push("the environment".to_string());
        for (name, value) in std::env::vars_os() {
            if let (Some(name), Ok(value)) = (name.to_str(), value.into_string()) {
                found.push(Found {
                    variable: name.to_string(),
                    value: Zeroizing::new(value),
                    file: None,
                });
            }
        }
        for name in DOTENV_FILES {
            let path = Path::new(name);
            if path.is_file() {
                read_file(path, &mut found)?;
                looked.push(name.to_string());
            }
        }
    } else {
        for path in &args.from {
            read_file(path, &mut found)?;
            looked.push(path.display().to_string());
        }
    }

    let client = ctx.client()?;
    let defs: Vec<ProviderDef> = client.get("/v1/providers")?;
    let mut by_var: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for def in &defs {
        if def.auth_type != AuthType::ApiKey {
            continue;
        }
        if let Some(var) = def.api_key.as_ref().and_then(|s| s.env_var.as_deref()) {
            by_var.entry(var).or_default().push(&def.name);
        }
    }
    // Per provider, every place its variable was found.
    let mut per_provider: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in &found {
        if f.value.trim().is_empty() {
            continue;
        }
        for provider in by_var.get(f.variable.as_str()).into_iter().flatten() {
            per_provider.entry(provider).or_default().push(f);
        }
    }
    if per_provider.is_empty() {
        if ctx.json {
            return output::json(&serde_json::json!({"results": [], "looked_in": looked}));
        }
        eprintln!(
            "No API keys of known providers found in {}.",
            looked.join(", ")
        );
        return Ok(());
    }

    // Places that disagree, and references to other variables, are not
    // imported: the person says which with --from.
    let mut conflicts = Vec::new();
    let mut keys = Vec::new();
    for (provider, places) in &per_provider {
        let first = places[0];
        if looks_like_reference(&first.value) {
            conflicts.push(ImportResult {
                provider: provider.to_string(),
                variable: first.variable.clone(),
                source: first.source(),
                outcome: ImportOutcome::Reference,
                hint: Some(
                    "the value refers to another variable (${...}); import it where it is set"
                        .into(),
                ),
            });
            continue;
        }
        if places.iter().any(|p| p.value.trim() != first.value.trim()) {
            conflicts.push(ImportResult {
                provider: provider.to_string(),
                variable: first.variable.clone(),
                source: places
                    .iter()
                    .map(|p| p.source())
                    .collect::<Vec<_>>()
                    .join(", "),
                outcome: ImportOutcome::Conflict,
                hint: Some("different values in these places; pick one with --from".into()),
            });
            continue;
        }
        keys.push(serde_json::json!({
            "provider": provider,
            "variable": first.variable,
            "source": first.source(),
            "value": first.value.as_str(),
        }));
    }
    let mut resp: ImportResponse = client.post(
        "/v1/import",
        &serde_json::json!({
            "connection": connection,
            "force": args.force,
            "dry_run": args.dry_run,
            "keys": keys,
        }),
    )?;
    drop(keys);
    resp.results.extend(conflicts);
    let skipped = resp.results.iter().filter(|r| r.outcome.skipped()).count();

    if ctx.json {
        output::json(&resp)?;
    } else {
        print_results(&resp);
        print_deletable(&resp, &per_provider);
    }
    if skipped > 0 {
        return Err(CliError::Skipped(format!(
            "{skipped} of {} keys were skipped; see above",
            resp.results.len()
        )));
    }
    Ok(())
}

/// `${VAR}` or `$VAR`: a dotenv reference, not a key.
fn looks_like_reference(value: &str) -> bool {
    let v = value.trim();
    v.contains("${")
        || v.strip_prefix('$')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn read_file(path: &Path, found: &mut Vec<Found>) -> CliResult {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?,
    );
    for entry in dotenv::parse(&text) {
        found.push(Found {
            variable: entry.name,
            value: entry.value,
            file: Some((path.to_path_buf(), entry.line)),
        });
    }
    Ok(())
}

fn print_results(resp: &ImportResponse) {
    let rows: Vec<Vec<String>> = resp
        .results
        .iter()
        .map(|r| {
            let what = match (r.outcome, resp.dry_run) {
                (ImportOutcome::Conflict, _) => "different values found: skipped",
                (ImportOutcome::Reference, _) => "refers to another variable: skipped",
                (ImportOutcome::New, true) => "new: would import",
                (ImportOutcome::New, false) => "new: imported",
                (ImportOutcome::Same, _) => "same as stored",
                (ImportOutcome::Different, _) => "different from stored: skipped",
                (ImportOutcome::Replaced, true) => "different: would replace",
                (ImportOutcome::Replaced, false) => "different: replaced",
                (ImportOutcome::Invalid, _) => "fails the key pattern: skipped",
            };
            vec![
                r.provider.clone(),
                r.variable.clone(),
                r.source.clone(),
                what.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["PROVIDER", "VARIABLE", "SOURCE", "OUTCOME"], &rows)
    );
    for r in resp.results.iter().filter(|r| r.hint.is_some()) {
        println!(
            "  {}: {}",
            r.provider,
            r.hint.as_deref().unwrap_or_default()
        );
    }
    if resp.dry_run {
        println!("Nothing was stored (--dry-run).");
    } else {
        println!("Stored in connection {}.", resp.connection);
    }
}

/// The lines a person may now delete: where a key that Authsome now holds
/// was found. Authsome never edits those files itself.
fn print_deletable(resp: &ImportResponse, per_provider: &BTreeMap<&str, Vec<&Found>>) {
    if resp.dry_run {
        return;
    }
    let mut lines = Vec::new();
    let mut in_env = Vec::new();
    for r in &resp.results {
        if !matches!(
            r.outcome,
            ImportOutcome::New | ImportOutcome::Same | ImportOutcome::Replaced
        ) {
            continue;
        }
        for place in per_provider.get(r.provider.as_str()).into_iter().flatten() {
            match &place.file {
                Some((path, line)) => lines.push((path.clone(), *line, place.variable.clone())),
                None => in_env.push(place.variable.clone()),
            }
        }
    }
    if !lines.is_empty() {
        println!("\nAuthsome holds these keys now; you can delete these lines:");
        lines.sort();
        lines.dedup();
        for (path, line, variable) in lines {
            println!("  {}:{line}  {variable}", path.display());
        }
    }
    if !in_env.is_empty() {
        in_env.dedup();
        println!(
            "\nAlso set in your environment: {}. Remove them where they are set (a shell profile, \
             a secrets manager) and use `authsome run` or `authsome export` instead.",
            in_env.join(", ")
        );
    }
}
