//! Shell completion. The script `authsome completions SHELL` prints calls
//! back into `authsome` (with `COMPLETE=SHELL` set) at each TAB, so provider
//! names come from the catalogue (bundled and custom) and connection names
//! from the daemon when one already runs. Completion never starts a daemon.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use authsome_daemon::home::Home;
use authsome_daemon::providers::Catalogue;
use authsome_daemon::wire::ListResponse;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::client::Client;
use crate::error::{CliError, CliResult};

/// The variable the scripts set when they ask for candidates (a name of our
/// own: a `COMPLETE` set for some other tool must not change what runs).
const VAR: &str = "AUTHSOME_COMPLETE";

/// Answers a completion request and exits, when the shell made one.
pub fn answer_if_asked(factory: fn() -> clap::Command) {
    clap_complete::CompleteEnv::with_factory(factory)
        .var(VAR)
        .complete();
}

/// The registration script for `shell` (what `authsome completions` prints).
pub fn script(shell: &str) -> CliResult<String> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells.completer(shell).ok_or_else(|| {
        let names: Vec<_> = shells.names().collect();
        CliError::Usage(format!(
            "no completion for shell {shell:?}; one of: {}",
            names.join(", ")
        ))
    })?;
    let mut out = Vec::new();
    completer
        .write_registration(VAR, "authsome", "authsome", "authsome", &mut out)
        .map_err(|e| CliError::Usage(format!("cannot write the {shell} script: {e}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Completes a provider name (also the `PROVIDER` of `PROVIDER=CONNECTION`).
pub fn providers() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let current = current.to_string_lossy();
        if let Some((provider, partial)) = current.split_once('=') {
            return connection_candidates(Some(provider), partial)
                .into_iter()
                .map(|(name, help)| {
                    CompletionCandidate::new(format!("{provider}={name}")).help(help)
                })
                .collect();
        }
        provider_candidates(&current)
    })
}

/// Completes a connection name (any provider's).
pub fn connections() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        connection_candidates(None, &current.to_string_lossy())
            .into_iter()
            .map(|(name, help)| CompletionCandidate::new(name).help(help))
            .collect()
    })
}

fn provider_candidates(prefix: &str) -> Vec<CompletionCandidate> {
    let mut names = BTreeMap::new();
    for def in Catalogue::bundled().unwrap_or_default() {
        names.insert(def.name, def.display_name);
    }
    if let Ok(home) = Home::from_env() {
        for def in Catalogue::read_custom(&home).0 {
            names.insert(def.name, def.display_name);
        }
    }
    names
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, display)| CompletionCandidate::new(name).help(Some(display.into())))
        .collect()
}

/// Connection names from a running daemon, with their provider and state.
fn connection_candidates(
    provider: Option<&str>,
    prefix: &str,
) -> Vec<(String, Option<clap::builder::StyledStr>)> {
    let Some(list) = Home::from_env().ok().and_then(|home| {
        let profile = std::env::var("AUTHSOME_PROFILE").ok();
        let client = Client::running(&home, profile)?;
        client.get::<ListResponse>("/v1/connections").ok()
    }) else {
        return Vec::new();
    };
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in list.providers {
        if provider.is_some_and(|want| want != p.name) {
            continue;
        }
        for c in p.connections {
            if c.connection.starts_with(prefix) {
                found.entry(c.connection).or_default().push(format!(
                    "{} {}",
                    p.name,
                    c.status.as_str()
                ));
            }
        }
    }
    found
        .into_iter()
        .map(|(name, about)| (name, Some(about.join(", ").into())))
        .collect()
}
