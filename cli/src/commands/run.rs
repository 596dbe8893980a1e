//! `authsome run [--connection PROVIDER=NAME]... -- CMD ARGS...`: runs CMD
//! behind the daemon's proxy, which adds credentials to its requests. CMD
//! never sees a real secret: only proxy variables, a CA bundle, and
//! placeholders for SDKs that insist on an API-key variable.

use std::collections::BTreeMap;
use std::process::ExitStatus;

use authsome_daemon::api::types::{RunResponse, RunSummary};

use crate::client::enc;
use crate::error::{CliError, CliResult};
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use this connection for a provider (default: `default`); repeatable.
    #[arg(long = "connection", value_name = "PROVIDER=NAME")]
    connections: Vec<String>,
    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        required = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

/// Variables pointing tools at the proxy and the CA bundle.
fn child_env(run: &RunResponse) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
        env.push((var.to_string(), run.proxy_url.clone()));
        env.push((var.to_lowercase(), run.proxy_url.clone()));
    }
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    env.push(("NO_PROXY".into(), no_proxy.clone()));
    env.push(("no_proxy".into(), no_proxy));
    for var in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO",
    ] {
        env.push((var.to_string(), run.ca_bundle.clone()));
    }
    for (k, v) in &run.env {
        env.push((k.clone(), v.clone()));
    }
    env
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    }
}

async fn supervise(mut child: tokio::process::Child) -> std::io::Result<ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let pid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    loop {
        let sig = tokio::select! {
            status = child.wait() => return status,
            _ = int.recv() => nix::sys::signal::Signal::SIGINT,
            _ = term.recv() => nix::sys::signal::Signal::SIGTERM,
            _ = hup.recv() => nix::sys::signal::Signal::SIGHUP,
            _ = quit.recv() => nix::sys::signal::Signal::SIGQUIT,
        };
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(pid, sig);
        }
    }
}

/// Runs the command and exits with CMD's exit code.
pub fn run(ctx: &Ctx, args: Args) -> CliResult {
    let mut connections = BTreeMap::new();
    for c in &args.connections {
        let (p, n) = c
            .split_once('=')
            .ok_or_else(|| CliError::usage(format!("--connection {c:?}: use PROVIDER=NAME")))?;
        connections.insert(crate::provider_arg(p)?, crate::connection_arg(Some(n))?);
    }
    let program = args.command[0].clone();
    let name = std::path::Path::new(&program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&program)
        .to_string();
    let client = ctx.client()?;
    let run: RunResponse = client.post(
        "/v1/runs",
        &serde_json::json!({ "connections": connections, "command": name }),
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let child = tokio::process::Command::new(&program)
            .args(&args.command[1..])
            .envs(child_env(&run))
            // The CLI may hold the master key (CI); the command never does.
            .env_remove(authsome_daemon::vault::keys::MASTER_KEY_ENV)
            .kill_on_drop(false)
            .spawn();
        match child {
            Ok(child) => supervise(child)
                .await
                .map(exit_code)
                .map_err(CliError::from),
            Err(e) => {
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                Err(CliError::new(
                    &format!("exec_{code}"),
                    format!("cannot run {program}: {e}"),
                ))
            }
        }
    });
    let code = match &result {
        Ok(c) => *c,
        Err(e) if e.code == "exec_127" => 127,
        Err(_) => 126,
    };
    let summary: CliResult<RunSummary> = client.post(
        &format!("/v1/runs/{}/end", enc(&run.id)),
        &serde_json::json!({ "exit_code": code }),
    );
    if ctx.verbose {
        if let Ok(s) = summary {
            eprintln!(
                "DEBUG run {}: exit {code}, injected {:?}",
                run.id, s.injected
            );
        }
    }
    if let Err(e) = result {
        eprintln!("Error: {}", e.message);
    }
    std::process::exit(code);
}
