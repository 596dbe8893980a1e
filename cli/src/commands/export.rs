//! `authsome export <provider> | --all [--format env|json|shell]`.

use authsome_daemon::wire::ExportResponse;

use crate::client::enc;
use crate::error::{CliError, CliResult};
use crate::output;
use crate::{connection_arg, provider_arg, Ctx};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider (or --all).
    #[arg(add = crate::complete::providers())]
    provider: Option<String>,
    /// Every connected provider.
    #[arg(long, conflicts_with = "provider")]
    all: bool,
    /// Connection name (default `default`).
    #[arg(long, add = crate::complete::connections())]
    connection: Option<String>,
    /// Output format.
    #[arg(long, default_value = "env", value_parser = ["env", "json", "shell"])]
    format: String,
}

fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let connection = connection_arg(args.connection.as_deref())?;
    let mut path = format!("/v1/export?connection={}", enc(&connection));
    match (&args.provider, args.all) {
        (Some(p), false) => path.push_str(&format!("&provider={}", enc(&provider_arg(p)?))),
        (None, true) => {}
        _ => return Err(CliError::usage("name a provider, or use --all")),
    }
    let resp: ExportResponse = ctx.client()?.get(&path)?;
    let format = if ctx.json {
        "json"
    } else {
        args.format.as_str()
    };
    let text = match format {
        "json" => {
            let map: serde_json::Map<String, serde_json::Value> = resp
                .vars
                .iter()
                .map(|v| (v.name.clone(), serde_json::Value::String(v.value.clone())))
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&map).expect("json"))
        }
        "shell" => resp
            .vars
            .iter()
            .map(|v| format!("export {}={}\n", v.name, shell_quote(&v.value)))
            .collect(),
        _ => resp
            .vars
            .iter()
            .map(|v| format!("{}={}\n", v.name, v.value))
            .collect(),
    };
    output::emit(&text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(super::shell_quote("a'b"), r"'a'\''b'");
    }
}
