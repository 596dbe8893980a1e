//! `authsome login <provider>`: the daemon runs the flow; this command
//! supplies input from a masked terminal prompt or `--stdin`, or opens the
//! daemon's one-time bridge page, and waits for the outcome.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use authsome_daemon::flows::{follow, LoginState};
use authsome_daemon::prompt::PromptField;
use authsome_daemon::wire::{InputMode, LoginResponse};
use zeroize::Zeroizing;

use crate::client::{enc, Client, EventStream};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::{connection_arg, provider_arg, Ctx};

/// Largest secret read from standard input.
const MAX_STDIN: u64 = 64 * 1024;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider to connect.
    #[arg(add = crate::complete::providers())]
    provider: String,
    /// Connection name (default `default`).
    #[arg(long, add = crate::complete::connections())]
    connection: Option<String>,
    /// Replace an existing connection.
    #[arg(long)]
    force: bool,
    /// Flow to use instead of the provider's default.
    #[arg(long, value_parser = ["pkce", "device_code", "dcr_pkce", "api_key"])]
    flow: Option<String>,
    /// Read the secret (API key, or OAuth client secret) from standard input, for scripts.
    #[arg(long)]
    stdin: bool,
    /// Scopes to request instead of the provider's defaults (comma-separated).
    #[arg(long, value_delimiter = ',')]
    scopes: Option<Vec<String>>,
    /// Base URL of a self-hosted or enterprise deployment (fills {base_url}).
    #[arg(long)]
    base_url: Option<String>,
    /// OAuth client ID (not secret; the secret comes from the prompt or --stdin).
    #[arg(long)]
    client_id: Option<String>,
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
    Ok(client.post(
        &format!("/v1/logins/{}/input", enc(id)),
        &serde_json::json!({ "values": map }),
    )?)
}

/// Waits for the login's next step on the daemon's event stream, showing a
/// spinner on a terminal. The stream was opened before the login began, so
/// no step is missed; the daemon ends a login that waits too long.
fn wait_for_change(
    events: &mut EventStream,
    current: &LoginResponse,
    spinner: bool,
) -> CliResult<LoginResponse> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let spin = spinner.then(|| {
        std::thread::spawn(move || {
            let frames = ['|', '/', '-', '\\'];
            let mut i = 0;
            while rx.recv_timeout(Duration::from_millis(120)).is_err() {
                eprint!(
                    "\r{} Waiting for the login to finish... ",
                    frames[i % frames.len()]
                );
                let _ = std::io::stderr().flush();
                i += 1;
            }
            eprint!("\r\x1b[K");
        })
    });
    let result = loop {
        match events.next() {
            None => {
                break Err(CliError::unavailable(
                    "the daemon stopped while the login waited",
                ))
            }
            Some(Err(e)) => break Err(e.into()),
            Some(Ok(event)) => {
                if let Some(next) = follow::next_step(&event, &current.id, &current.state) {
                    break Ok(next.clone());
                }
            }
        }
    };
    drop(tx);
    if let Some(handle) = spin {
        let _ = handle.join();
    }
    result
}

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        || cfg!(target_os = "macos")
        || cfg!(windows)
}

/// Opens the login's launch file in the browser. The file (0600, in the
/// home) leads to the one-time URL that was printed; the browser's command
/// line, which every user can read, carries only the file's path.
fn open_in_browser(launch_file: Option<&str>) {
    if !has_display() {
        eprintln!("No browser here (neither BROWSER nor a display is set). Open the URL on a machine that can reach this one, or use --flow device_code.");
        return;
    }
    let Some(file) = launch_file else {
        return;
    };
    if let Err(e) = webbrowser::open(file) {
        eprintln!("Could not open a browser ({e}); open the URL yourself.");
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
    // Subscribed before the login begins, so no step of it is missed.
    let mut events = client.events()?;
    let begin = serde_json::json!({
        "provider": provider,
        "connection": connection,
        "force": args.force,
        "flow": args.flow,
        "mode": mode,
        "scopes": args.scopes,
        "base_url": args.base_url,
        "client_id": args.client_id,
    });
    let mut resp: LoginResponse = client.post("/v1/logins", &begin)?;
    let spinner = std::io::stderr().is_terminal() && !ctx.verbose;
    loop {
        match &resp.state {
            LoginState::NeedsInput => {
                resp = supply_input(&client, &mut events, &args, mode, resp, &provider)?;
            }
            LoginState::Authorizing { url } => {
                eprintln!("Open this URL to authorize Authsome with {provider}:\n  {url}");
                eprintln!("The link works once, in one browser.");
                open_in_browser(resp.launch_file.as_deref());
                resp = wait_for_change(&mut events, &resp, spinner)?;
            }
            LoginState::DeviceCode {
                user_code,
                verification_uri,
                verification_uri_complete,
                expires_in,
            } => {
                eprintln!("To sign in to {provider}, open {verification_uri} and enter the code: {user_code}");
                if let Some(complete) = verification_uri_complete {
                    eprintln!("Or open {complete}");
                }
                eprintln!("The code expires in {} minutes.", (expires_in + 59) / 60);
                if has_display() {
                    open_in_browser(resp.launch_file.as_deref());
                }
                resp = wait_for_change(&mut events, &resp, spinner)?;
            }
            LoginState::Completed => {
                return if ctx.json {
                    output::json(
                        &serde_json::json!({"provider": resp.provider, "connection": resp.connection, "status": "connected"}),
                    )
                } else {
                    output::line(&format!(
                        "Successfully logged in to {} ({})",
                        resp.provider, resp.connection
                    ))
                };
            }
            LoginState::Failed { error, message } => {
                let mut message = message.clone();
                if resp.flow != authsome_daemon::providers::Flow::ApiKey {
                    message.push_str(&format!(
                        "\nRun `authsome login {provider} --force` to try again."
                    ));
                }
                return Err(CliError::daemon(error, message));
            }
        }
    }
}

fn supply_input(
    client: &Client,
    events: &mut EventStream,
    args: &Args,
    mode: InputMode,
    resp: LoginResponse,
    provider: &str,
) -> CliResult<LoginResponse> {
    if args.stdin {
        let secret = read_stdin_secret()?;
        let field = resp
            .fields
            .iter()
            .find(|f| f.secret)
            .ok_or_else(|| CliError::usage("this login asks for no secret; drop --stdin"))?;
        if resp.fields.iter().any(|f| !f.secret) {
            return Err(CliError::usage(
                "this login needs more than one value: pass --client-id, or run it on a terminal",
            ));
        }
        return send_input(client, &resp.id, &[(field.name.clone(), secret)]);
    }
    if mode == InputMode::Terminal {
        if resp.fields.iter().any(|f| f.name.starts_with("client_")) {
            if let Some(cb) = &resp.callback_url {
                eprintln!("Register this callback URL in the {provider} OAuth app: {cb}");
            }
        }
        if let Some(docs) = &resp.docs_url {
            eprintln!("Get it at {docs}");
        }
        let mut attempts = 0;
        loop {
            let mut values = Vec::new();
            for field in &resp.fields {
                if let Some(hint) = field
                    .hint
                    .as_deref()
                    .filter(|_| field.name == "client_secret")
                {
                    eprintln!("{hint}");
                }
                values.push((field.name.clone(), prompt_field(field)?));
            }
            match send_input(client, &resp.id, &values) {
                Ok(r) => return Ok(r),
                Err(e)
                    if attempts < 2
                        && matches!(e.code(), "key_pattern_mismatch" | "invalid_input") =>
                {
                    eprintln!("Error: {}", e.message());
                    attempts += 1;
                }
                Err(e) => {
                    let _ = client.delete(&format!("/v1/logins/{}", enc(&resp.id)));
                    return Err(e);
                }
            }
        }
    }
    match &resp.open_url {
        Some(url) => {
            eprintln!("Opening a page to enter the {provider} credentials:\n  {url}");
            eprintln!(
                "If no browser opens, open that URL in a browser on this machine. It works once."
            );
            open_in_browser(resp.launch_file.as_deref());
        }
        None => eprintln!("Enter the {provider} credentials in the Authsome window."),
    }
    wait_for_change(events, &resp, false)
}
