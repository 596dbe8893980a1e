//! `authsome open`: brings up the tray app's main window. It starts
//! `authsome-tray --open`: a running tray app gets the request through its
//! single-instance lock and shows its window; otherwise the app starts
//! (taking over from a headless daemon) with its window open.

use std::process::{Command, Stdio};

use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Runs the command.
pub fn run(_ctx: &Ctx) -> CliResult {
    let tray = authsome_daemon::autostart::tray_beside_me()?;
    if !tray.exists() {
        return Err(CliError::usage(format!(
            "the tray app is not installed beside authsome ({}); on a machine without a desktop there is no window to open",
            tray.display()
        )));
    }
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&tray);
    // The tray app hosts the daemon: it gets a daemon's clean environment.
    authsome_daemon::process::scrub_daemon_env(&mut cmd);
    cmd.arg("--open")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Io(format!("cannot start {}: {e}", tray.display())))?;
    output::line("Opening Authsome")
}
