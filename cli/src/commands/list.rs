//! `authsome list`.

use authsome_daemon::vault::Status;
use authsome_daemon::wire::ListResponse;

use crate::error::CliResult;
use crate::output;
use crate::Ctx;

/// Runs the command.
pub fn run(ctx: &Ctx) -> CliResult {
    let list: ListResponse = ctx.client()?.get("/v1/connections")?;
    if ctx.json {
        return output::json(&list);
    }
    let mut rows = Vec::new();
    for p in &list.providers {
        if p.connections.is_empty() {
            rows.push(vec![
                p.name.clone(),
                "-".into(),
                p.status.as_str().into(),
                p.auth_type.as_str().into(),
                "-".into(),
            ]);
        }
        for c in &p.connections {
            rows.push(vec![
                p.name.clone(),
                c.connection.clone(),
                c.status.as_str().into(),
                p.auth_type.as_str().into(),
                output::when(c.expires_at),
            ]);
        }
    }
    let connected = list
        .providers
        .iter()
        .filter(|p| p.status == Status::Connected)
        .count();
    output::emit(&output::table(
        &["PROVIDER", "CONNECTION", "STATUS", "TYPE", "EXPIRES"],
        &rows,
    ))?;
    output::line(&format!(
        "\nProfile {}: {connected} connected of {} providers.",
        list.profile,
        list.providers.len()
    ))
}
