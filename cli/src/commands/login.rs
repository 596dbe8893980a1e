//! `authsome login <provider>`: the daemon runs the flow; this command
//! supplies input from a masked terminal prompt or `--stdin`, or opens the
//! daemon's one-time bridge page, and waits for the outcome.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use authsome_daemon::api::types::{InputMode, LoginResponse};
use authsome_daemon::flows::{LoginState, LOGIN_TTL};
use authsome_daemon::prompt::PromptField;
use zeroize::Zeroizing;

use crate::client::{enc, Client};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::{connection_arg, provider_arg, Ctx};

/// Largest secret read from standard input.
const MAX_STDIN: u64 = 64 * 1024;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider to connect.
    provider: String,
    /// Connection name (default `default`).
    #[arg(long)]
    connection: Option<String>,
    /// Replace an existing connection.
    #[arg(long)]
    force: bool,
    /// Flow to use instead of the provider's default.
    #[arg(long, value_parser = ["pkce", "device_code", "dcr_pkce", "api_key"])]
    flow: Option<String>,
    /// Read the secret (API key) from standard input, for scripts.
    #[arg(long)]
    stdin: bool,
}

fn read_stdin_secret() -> CliResult<Zeroizing<String>> {
    let mut buf = Zeroizing::new(String::new());
    std::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut buf)?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(CliError::usage("standard input is larger than 64 KiB"));
    }
    let trimmed = Zeroizing::new(buf.trim_end_matches(['\n', '\r']).to_string());
    if trimmed.is_empty() {
        return Err(CliError::usage(
            "--stdin was given but standard input is empty",
        ));
    }
    Ok(trimmed)
}

fn prompt_field(field: &PromptField) -> CliResult<Zeroizing<String>> {
    if field.secret {
        let v = rpassword::prompt_password(format!("{}: ", field.label))?;
        Ok(Zeroizing::new(v))
    } else {
        eprint!("{}: ", field.label);
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(Zeroizing::new(line.trim().to_string()))
    }
}

fn send_input(
    client: &Client,
    id: &str,
    values: &[(String, Zeroizing<String>)],
) -> CliResult<LoginResponse> {
    let map: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
        .collect();
    client.post(
        &format!("/v1/logins/{}/input", enc(id)),
        &serde_json::json!({ "values": map }),
    )
}

fn wait_for_outcome(client: &Client, id: &str) -> CliResult<LoginResponse> {
    let deadline = Instant::now() + LOGIN_TTL + Duration::from_secs(5);
    loop {
        let resp: LoginResponse = client.get(&format!("/v1/logins/{}?wait=25", enc(id)))?;
        if resp.state != LoginState::NeedsInput {
            return Ok(resp);
        }
        if Instant::now() > deadline {
            return Err(CliError::new("login_timed_out", "login timed out"));
        }
    }
}

/// Runs the command.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let provider = provider_arg(&args.provider)?;
    let connection = connection_arg(args.connection.as_deref())?;
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mode = if args.stdin || terminal {
        InputMode::Terminal
    } else {
        InputMode::Prompter
    };
    let client = ctx.client()?;
    let begin = serde_json::json!({
        "provider": provider,
        "connection": connection,
        "force": args.force,
        "flow": args.flow,
        "mode": mode,
    });
    let mut resp: LoginResponse = client.post("/v1/logins", &begin)?;

    if resp.state == LoginState::NeedsInput {
        if args.stdin {
            let secret = read_stdin_secret()?;
            let field =
                resp.fields.iter().find(|f| f.secret).ok_or_else(|| {
                    CliError::usage("this login asks for no secret; drop --stdin")
                })?;
            if resp.fields.iter().any(|f| !f.secret) {
                return Err(CliError::usage(
                    "this login needs more than one value; run it on a terminal",
                ));
            }
            resp = send_input(&client, &resp.id, &[(field.name.clone(), secret)])?;
        } else if mode == InputMode::Terminal {
            let mut attempts = 0;
            loop {
                let mut values = Vec::new();
                for field in &resp.fields {
                    values.push((field.name.clone(), prompt_field(field)?));
                }
                match send_input(&client, &resp.id, &values) {
                    Ok(r) => {
                        resp = r;
                        break;
                    }
                    Err(e)
                        if attempts < 2
                            && matches!(
                                e.code.as_str(),
                                "key_pattern_mismatch" | "invalid_input"
                            ) =>
                    {
                        eprintln!("Error: {}", e.message);
                        attempts += 1;
                    }
                    Err(e) => {
                        let _ = client.delete(&format!("/v1/logins/{}", enc(&resp.id)));
                        return Err(e);
                    }
                }
            }
        } else {
            match &resp.open_url {
                Some(url) => {
                    eprintln!("Opening a page to enter the {provider} credential:\n  {url}");
                    eprintln!("If no browser opens, open that URL in a browser on this machine.");
                    if let Err(e) = webbrowser::open(url) {
                        eprintln!("Could not open a browser ({e}).");
                    }
                }
                None => eprintln!("Enter the {provider} credential in the Authsome window."),
            }
            resp = wait_for_outcome(&client, &resp.id)?;
        }
    }

    match resp.state {
        LoginState::Completed => {
            if ctx.json {
                output::json(
                    &serde_json::json!({"provider": resp.provider, "connection": resp.connection, "status": "connected"}),
                )
            } else {
                output::line(&format!(
                    "Successfully logged in to {} ({})",
                    resp.provider, resp.connection
                ))
            }
        }
        LoginState::Failed { error, message } => Err(CliError::new(&error, message)),
        LoginState::NeedsInput => Err(CliError::new("login_timed_out", "login did not complete")),
    }
}
