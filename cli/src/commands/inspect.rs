//! `authsome inspect <provider>`.

use authsome_daemon::wire::InspectResponse;

use crate::client::enc;
use crate::error::CliResult;
use crate::output;
use crate::{provider_arg, Ctx};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider.
    #[arg(add = crate::complete::providers())]
    provider: String,
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let provider = provider_arg(&args.provider)?;
    let resp: InspectResponse = ctx
        .client()?
        .get(&format!("/v1/providers/{}", enc(&provider)))?;
    if ctx.json {
        return output::json(&resp);
    }
    let d = &resp.definition;
    let mut rows: Vec<(&str, String)> = vec![
        ("name", d.name.clone()),
        ("display_name", d.display_name.clone()),
        ("origin", format!("{:?}", resp.origin).to_lowercase()),
        ("auth_type", d.auth_type.as_str().into()),
        ("flow", d.flow.as_str().into()),
        ("host_url", d.host_url.patterns().join(", ")),
    ];
    if let Some(docs) = &d.docs_url {
        rows.push(("docs_url", docs.clone()));
    }
    if let Some(o) = &d.oauth {
        if let Some(u) = &o.base_url {
            rows.push(("base_url", u.clone()));
        }
        if let Some(u) = &o.authorization_url {
            rows.push(("authorization_url", u.clone()));
        }
        rows.push(("token_url", o.token_url.clone()));
        for (k, v) in [
            ("revocation_url", &o.revocation_url),
            ("device_authorization_url", &o.device_authorization_url),
            ("registration_endpoint", &o.registration_endpoint),
        ] {
            if let Some(v) = v {
                rows.push((k, v.clone()));
            }
        }
        rows.push(("scopes", o.scopes.join(",")));
        rows.push(("supports_device_code", o.supports_device_code.to_string()));
        rows.push(("supports_dcr", o.supports_dcr.to_string()));
        rows.push(("client_configured", resp.client_configured.to_string()));
    }
    if let Some(k) = &d.api_key {
        rows.push((
            "header",
            format!(
                "{}: {}{}",
                k.header_name,
                k.header_prefix,
                if k.header_prefix.is_empty() {
                    "<key>"
                } else {
                    " <key>"
                }
            ),
        ));
        if let Some(env) = &k.env_var {
            rows.push(("env_var", env.clone()));
        }
        if let Some(p) = &k.key_pattern {
            rows.push(("key_pattern", p.clone()));
        }
    }
    if !d.export.is_empty() {
        rows.push((
            "export",
            d.export
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(cb) = &resp.callback_url {
        rows.push(("callback_url", cb.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text: String = rows
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect();
    if resp.connections.is_empty() {
        text.push_str("\nNo connections.\n");
    } else {
        text.push_str("\nConnections:\n");
        for c in &resp.connections {
            text.push_str(&format!(
                "  {}  {}  expires {}\n",
                c.connection,
                c.status.as_str(),
                output::when(c.expires_at)
            ));
        }
    }
    output::emit(&text)
}
