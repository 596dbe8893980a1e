//! `authsome rekey`: a new master key, every sealed secret re-sealed with it.

use authsome_daemon::audit::{Audit, AuditEvent};
use authsome_daemon::home::KeyBackendKind;
use authsome_daemon::vault::keys::MasterKeyLoader;

use crate::client::stop_daemon;
use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Runs the command.
pub fn run(ctx: &Ctx) -> CliResult {
    let home = &ctx.home;
    let backend = MasterKeyLoader::new(home.clone())
        .recorded_backend()?
        .ok_or_else(|| {
            CliError::usage(format!(
                "{} has no master key to rotate; run `authsome init` first",
                home.root().display()
            ))
        })?;
    // The daemon holds the key in memory: it stops, and the next command
    // starts it again with the new key. The tray app's daemon is the tray's
    // to stop.
    if let Some(client) = crate::client::Client::running(home, None) {
        let status: authsome_daemon::wire::StatusResponse = client.get("/v1/status")?;
        if status.tray {
            return Err(CliError::usage(
                "the tray app hosts the daemon: quit it (tray menu, Quit), run `authsome rekey`, \
                 then start it again",
            ));
        }
    }
    if stop_daemon(home)? && !ctx.json {
        eprintln!("Stopped the daemon; the next command starts it again.");
    }
    let _lock = authsome_daemon::instance::lock(home)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let verbose = ctx.verbose;
    let report = rt.block_on(authsome_daemon::vault::rekey::rotate(home, &mut |step| {
        if verbose {
            eprintln!("DEBUG {step}");
        }
    }))?;
    if let Ok(audit) = Audit::open(&home.audit_log()) {
        audit.record(AuditEvent::new("rekey").detail(format!(
            "{} profiles, {} fields",
            report.profiles, report.fields
        )));
    }
    if ctx.json {
        return output::json(&report);
    }
    let stored = match backend {
        KeyBackendKind::Keychain => "the OS keychain".to_string(),
        KeyBackendKind::File => home.master_key_path().display().to_string(),
    };
    println!(
        "Rotated the master key: {} secrets in {} profiles{} re-sealed; the new key is in {stored}.",
        report.fields,
        report.profiles,
        if report.ca_key { " and the proxy CA key" } else { "" },
    );
    Ok(())
}
