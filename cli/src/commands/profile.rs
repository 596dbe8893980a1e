//! `authsome profile list|create NAME|use NAME`.

use authsome_daemon::names::ProfileName;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// List profiles; `*` marks the default.
    List,
    /// Create a profile.
    Create {
        /// Profile name.
        name: String,
    },
    /// Make a profile the default.
    Use {
        /// Profile name.
        name: String,
    },
}

/// Runs the command.
pub fn run(ctx: &Ctx, cmd: ProfileCommand) -> CliResult {
    match cmd {
        ProfileCommand::List => {
            let current = ctx.home.default_profile()?;
            let mut profiles = ctx.home.list_profiles()?;
            if !profiles.contains(&current) {
                profiles.push(current.clone());
                profiles.sort();
            }
            if ctx.json {
                return output::json(&serde_json::json!({
                    "default": current.as_str(),
                    "profiles": profiles.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                }));
            }
            let text: String = profiles
                .iter()
                .map(|p| format!("{} {}\n", if *p == current { "*" } else { " " }, p))
                .collect();
            output::emit(&text)
        }
        ProfileCommand::Create { name } => {
            let name = ProfileName::parse(&name)?;
            ctx.client()?.post::<_, serde_json::Value>(
                "/v1/profiles",
                &serde_json::json!({ "name": name }),
            )?;
            output::line(&format!("Created profile {name}"))
        }
        ProfileCommand::Use { name } => {
            let name = ProfileName::parse(&name)?;
            if name != ProfileName::default_name() && !ctx.home.store_path(&name).exists() {
                return Err(CliError::daemon(
                    "profile_not_found",
                    format!("profile not found: {name}; create it with `authsome profile create {name}`"),
                ));
            }
            let mut config = ctx.home.load_config()?;
            config.profile = Some(name.to_string());
            ctx.home.save_config(&config)?;
            output::line(&format!("Default profile is now {name}"))
        }
    }
}
