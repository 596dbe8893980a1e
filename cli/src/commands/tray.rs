//! `authsome tray autostart on|off|status`: start the tray app with the
//! desktop session (an XDG autostart entry), or not.

use authsome_daemon::autostart;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// `authsome tray ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TrayCommand {
    /// Start the tray app when you log in to the desktop (`on`), stop doing
    /// so (`off`), or show which (`status`).
    Autostart {
        /// on, off or status.
        #[arg(value_enum, default_value = "status")]
        state: Autostart,
    },
}

/// What `tray autostart` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Autostart {
    /// Add the autostart entry.
    On,
    /// Remove it.
    Off,
    /// Show it.
    Status,
}

/// Runs a `tray` subcommand.
pub fn run(ctx: &Ctx, cmd: TrayCommand) -> CliResult {
    let TrayCommand::Autostart { state } = cmd;
    match state {
        Autostart::On => {
            let tray = autostart::tray_beside_me()?;
            if !tray.exists() {
                return Err(CliError::usage(format!(
                    "the tray app is not installed beside authsome ({}); build it with `make run` or install the package",
                    tray.display()
                )));
            }
            let home = std::env::var_os("AUTHSOME_HOME").map(|_| ctx.home.root().to_path_buf());
            let file = autostart::enable(&tray, home.as_deref())?;
            output::line(&format!(
                "Authsome starts with your desktop session ({})",
                file.display()
            ))
        }
        Autostart::Off => {
            let removed = autostart::disable()?;
            output::line(if removed {
                "Authsome no longer starts with your desktop session"
            } else {
                "Authsome was not starting with your desktop session"
            })
        }
        Autostart::Status => match autostart::exec_line()? {
            Some(exec) if ctx.json => {
                output::json(&serde_json::json!({"autostart": true, "exec": exec}))
            }
            None if ctx.json => output::json(&serde_json::json!({"autostart": false})),
            Some(exec) => output::line(&format!("on: {exec}")),
            None => output::line("off"),
        },
    }
}
