//! `authsome get <provider> [--field F] [--show-secret]`.

use authsome_daemon::wire::ConnectionView;

use crate::client::enc;
use crate::error::{CliError, CliResult};
use crate::output;
use crate::{connection_arg, provider_arg, Ctx};

const SECRET_FIELDS: &[&str] = &["api_key", "access_token", "refresh_token", "id_token"];

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider.
    #[arg(add = crate::complete::providers())]
    provider: String,
    /// Connection name (default `default`).
    #[arg(long, add = crate::complete::connections())]
    connection: Option<String>,
    /// Print only this field (status, expires_at, scopes, api_key, access_token, ...).
    #[arg(long)]
    field: Option<String>,
    /// Show secret values instead of ***.
    #[arg(long)]
    show_secret: bool,
}

fn field_value(view: &ConnectionView, field: &str) -> CliResult<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(match field {
        "provider" => view.provider.clone(),
        "connection" => view.connection.clone(),
        "profile" => view.profile.clone(),
        "status" => view.status.as_str().into(),
        "auth_type" => view.auth_type.as_str().into(),
        "scopes" => view.scopes.join(","),
        "base_url" => opt(&view.base_url),
        "account" => opt(&view.account),
        "last_error" => opt(&view.last_error),
        "expires_at" => view.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "obtained_at" => view.obtained_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "last_refresh_at" => view.last_refresh_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "created_at" => view.created_at.to_rfc3339(),
        "updated_at" => view.updated_at.to_rfc3339(),
        f if SECRET_FIELDS.contains(&f) => view.secrets.get(f).cloned().ok_or_else(|| {
            CliError::daemon(
                "credential_missing",
                format!("no {f} stored for {} ({})", view.provider, view.connection),
            )
        })?,
        other => {
            return Err(CliError::UnknownField(format!(
                    "unknown field {other:?}; fields: provider, connection, status, auth_type, scopes, base_url, account, \
                     expires_at, obtained_at, last_refresh_at, last_error, api_key, access_token, refresh_token, id_token"
                ),
            ))
        }
    })
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let provider = provider_arg(&args.provider)?;
    let connection = connection_arg(args.connection.as_deref())?;
    // Ask for secrets only when they will be printed, so the audit log records real reveals.
    let wants_secret = args.show_secret
        && args
            .field
            .as_deref()
            .is_none_or(|f| SECRET_FIELDS.contains(&f));
    let path = format!(
        "/v1/connections/{}/{}?show_secret={wants_secret}",
        enc(&provider),
        enc(&connection)
    );
    let view: ConnectionView = ctx.client()?.get(&path)?;
    if let Some(field) = &args.field {
        let value = field_value(&view, field)?;
        return if ctx.json {
            output::json(&serde_json::json!({ field: value }))
        } else {
            output::line(&value)
        };
    }
    if ctx.json {
        return output::json(&view);
    }
    let mut rows: Vec<(String, String)> = vec![
        (
            "provider".into(),
            format!("{} ({})", view.provider, view.display_name),
        ),
        ("connection".into(), view.connection.clone()),
        ("profile".into(), view.profile.clone()),
        ("status".into(), view.status.as_str().into()),
        ("auth_type".into(), view.auth_type.as_str().into()),
    ];
    if !view.scopes.is_empty() {
        rows.push(("scopes".into(), view.scopes.join(",")));
    }
    for (k, v) in [
        ("base_url", &view.base_url),
        ("account", &view.account),
        ("last_error", &view.last_error),
    ] {
        if let Some(v) = v {
            rows.push((k.into(), v.clone()));
        }
    }
    rows.push(("expires_at".into(), output::when(view.expires_at)));
    rows.push(("obtained_at".into(), output::when(view.obtained_at)));
    for (k, v) in &view.secrets {
        rows.push((k.clone(), v.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let text: String = rows
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect();
    output::emit(&text)
}
