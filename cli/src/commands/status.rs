//! `authsome status`: one screen read at a glance: the daemon, the key,
//! the connections by state with the soonest expiry, live runs and the last
//! error. Exits 5 when a connection needs attention (expired or invalid).

use authsome_daemon::audit::read_tail_matching;
use authsome_daemon::vault::Status;
use authsome_daemon::wire::{ListResponse, StatusResponse};
use chrono::Utc;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// "3 min", "2 h", "4 days": a span in words.
pub fn span(secs: i64) -> String {
    let s = secs.abs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Runs the command.
pub fn run(ctx: &Ctx) -> CliResult {
    let client = ctx.client()?;
    let status: StatusResponse = client.get("/v1/status")?;
    let list: ListResponse = client.get("/v1/connections")?;
    let last_error = read_tail_matching(&ctx.home.audit_log(), 1, |e| {
        e.get("status").and_then(|s| s.as_str()) == Some("failure")
    })?
    .pop();
    let now = Utc::now();
    let mut by_state = std::collections::BTreeMap::<&str, usize>::new();
    let mut attention = Vec::new();
    let mut soonest: Option<(chrono::DateTime<Utc>, String)> = None;
    for p in &list.providers {
        for c in &p.connections {
            *by_state.entry(c.status.as_str()).or_default() += 1;
            if matches!(c.status, Status::Expired | Status::Invalid) {
                attention.push(format!(
                    "{} ({}) is {}",
                    p.name,
                    c.connection,
                    c.status.as_str()
                ));
            }
            if let Some(at) = c.expires_at.filter(|_| c.status == Status::Connected) {
                if soonest.as_ref().is_none_or(|(s, _)| at < *s) {
                    soonest = Some((at, format!("{} ({})", p.name, c.connection)));
                }
            }
        }
    }
    if ctx.json {
        output::json(&serde_json::json!({
            "daemon": status,
            "connections": by_state,
            "attention": attention,
            "soonest_expiry": soonest.as_ref().map(|(at, who)| serde_json::json!({"at": at, "connection": who})),
            "runs": status.runs,
            "last_error": last_error,
        }))?;
    } else {
        let mut t = format!(
            "Daemon      pid {}, up {}, {} on port {} (proxy {}), version {}\n",
            status.pid,
            span((now - status.started_at).num_seconds()),
            if status.tray {
                "in the tray app"
            } else {
                "headless"
            },
            status.port,
            status.proxy_port,
            status.version,
        );
        t.push_str(&format!(
            "Master key  from {}{}\n",
            status.key_source.as_str(),
            status
                .key_backend
                .map(|b| format!(" (backend {})", b.as_str()))
                .unwrap_or_default()
        ));
        let counts: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
        t.push_str(&format!(
            "Connections {}\n",
            if counts.is_empty() {
                "none yet (`authsome login PROVIDER`)".to_string()
            } else {
                counts.join(", ")
            }
        ));
        if let Some((at, who)) = &soonest {
            let left = (*at - now).num_seconds();
            t.push_str(&format!(
                "Next expiry {who} {}\n",
                if left >= 0 {
                    format!("in {} (refreshed before then)", span(left))
                } else {
                    format!("{} ago", span(left))
                }
            ));
        }
        t.push_str(&format!("Runs        {} live\n", status.runs));
        if let Some(e) = &last_error {
            let get = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("-");
            t.push_str(&format!(
                "Last error  {} {} {}: {}\n",
                get("ts"),
                get("event"),
                get("provider"),
                get("detail")
            ));
        }
        for a in &attention {
            t.push_str(&format!("Attention   {a}: `authsome login` it again\n"));
        }
        output::emit(&t)?;
    }
    if attention.is_empty() {
        Ok(())
    } else {
        Err(CliError::NeedsAttention(format!(
            "{} connection(s) need attention",
            attention.len()
        )))
    }
}
