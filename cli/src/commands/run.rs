//! `authsome run [--connection PROVIDER=NAME]... -- CMD ARGS...`: runs CMD
//! behind the daemon's proxy, which adds credentials to its requests. CMD
//! never sees a real secret: only proxy variables, a CA bundle, and
//! placeholders for SDKs that insist on an API-key variable.
//!
//! CMD runs contained (Linux Landlock, see `authsome_daemon::contain`): the
//! child process first executes this binary's hidden [`TRAMPOLINE`] entry,
//! which restricts itself and then executes CMD in place, so the sandbox is
//! in force before CMD's first instruction and the pid the daemon watches
//! is CMD's own.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitStatus;

use authsome_daemon::contain::{self, Egress, Policy, Support};
use authsome_daemon::providers::is_credential_var;
use authsome_daemon::proxy::{CA_VARS, PLACEHOLDER};
use authsome_daemon::wire::{RunResponse, RunSummary};

use crate::client::enc;
use crate::error::{CliError, CliResult};
use crate::Ctx;

/// The hidden first argument that makes `authsome` apply a sandbox policy
/// and execute a command: `authsome <TRAMPOLINE> POLICY_JSON CMD ARGS...`.
pub const TRAMPOLINE: &str = "__contained-exec";

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use this connection for a provider (default: `default`); repeatable.
    #[arg(long = "connection", value_name = "PROVIDER=NAME", add = crate::complete::providers())]
    connections: Vec<String>,
    /// Only these providers get credentials in this run (`PROVIDER` or
    /// `PROVIDER=CONNECTION`); repeatable or comma-separated. Requests to
    /// other providers pass through untouched and are logged as `not_allowed`.
    #[arg(
        long = "allow",
        value_name = "PROVIDER[=CONNECTION]",
        value_delimiter = ',',
        add = crate::complete::providers()
    )]
    allow: Vec<String>,
    /// Only GET, HEAD and OPTIONS get credentials; another method to a
    /// provider is answered 403 by the proxy and never reaches it.
    #[arg(long)]
    read_only: bool,
    /// Refuse requests to hosts that no (allowed) connection matches; with
    /// `--egress proxy` the command can reach nothing but its providers.
    #[arg(long)]
    only_providers: bool,
    /// The first request to each provider waits (up to 120 s) until you
    /// answer with `authsome approve RUN_ID PROVIDER` or `authsome deny`.
    #[arg(long)]
    ask: bool,
    /// At most N requests per provider get credentials in this run; later
    /// ones are answered 429 by the proxy.
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
    /// Run the command without the sandbox (it can then read the Authsome
    /// home and reach the daemon's API).
    #[arg(long)]
    no_contain: bool,
    /// Where the command may open TCP connections: `any` host (the default,
    /// or `[run] egress` in config.toml), or only the `proxy`.
    #[arg(long, value_name = "any|proxy")]
    egress: Option<Egress>,
    /// With `--egress proxy`, also allow connections to this port (a local
    /// dev server, say); repeatable.
    #[arg(long = "allow-port", value_name = "PORT")]
    allow_ports: Vec<u16>,
    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        required = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

/// Variables pointing tools at the proxy and the CA bundle, and the SDK
/// placeholders. From the daemon's answer only placeholder values for
/// credential-named variables are taken: an answer can never set
/// `LD_PRELOAD`, `PATH` or anything else that changes how CMD runs.
fn child_env(run: &RunResponse) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
        env.push((var.to_string(), run.proxy_url.clone()));
        env.push((var.to_lowercase(), run.proxy_url.clone()));
    }
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    env.push(("NO_PROXY".into(), no_proxy.clone()));
    env.push(("no_proxy".into(), no_proxy));
    // Node 22.21+ and 24+ honour HTTPS_PROXY for fetch and https with this.
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    for var in CA_VARS {
        env.push((var.to_string(), run.ca_bundle.clone()));
    }
    for (k, v) in &run.env {
        if v == PLACEHOLDER && is_credential_var(k) {
            env.push((k.clone(), v.clone()));
        } else {
            eprintln!("authsome: warning: the daemon offered {k:?}, which is not a credential placeholder; left out");
        }
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

/// How this run is contained, decided before anything starts.
enum Containment {
    On { egress: Egress, support: Support },
    Off,
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
    // Not dumpable: a contained command (even one running as root, which
    // loses CAP_SYS_PTRACE) cannot read this process's /proc files, such as
    // an environment holding AUTHSOME_MASTER_KEY. Not inherited across exec.
    let _ = nix::sys::prctl::set_dumpable(false);
    let defaults = ctx.home.load_config()?.run;
    let egress = args.egress.unwrap_or(defaults.egress);
    if !args.allow_ports.is_empty() && egress != Egress::Proxy {
        return Err(CliError::usage(
            "--allow-port only matters with --egress proxy (other ports are reachable already)",
        ));
    }
    if args.only_providers && (egress != Egress::Proxy || args.no_contain || !defaults.contain) {
        eprintln!(
            "authsome: note: --only-providers refuses what goes through the proxy; without \
             --egress proxy the command can still open other connections itself"
        );
    }
    let containment = if args.no_contain || !defaults.contain {
        if args.egress == Some(Egress::Proxy) {
            return Err(CliError::usage(
                "--egress proxy needs the sandbox; drop --no-contain (or set [run] contain = true)",
            ));
        }
        Containment::Off
    } else {
        Containment::On {
            egress,
            support: Support::detect(),
        }
    };
    let program = args.command[0].clone();
    let name = std::path::Path::new(&program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&program)
        .to_string();
    let client = ctx.client()?;
    let run: RunResponse = client.post(
        "/v1/runs",
        &serde_json::json!({
            "connections": connections,
            "command": name,
            "cwd": std::env::current_dir().ok().map(|d| d.display().to_string()),
            "allow": (!args.allow.is_empty()).then_some(&args.allow),
            "read_only": args.read_only,
            "only_providers": args.only_providers,
            "ask": args.ask,
            "max_requests": args.max_requests,
        }),
    )?;
    if args.ask {
        eprintln!(
            "authsome: run {0}: the first request to each provider waits for \
             `authsome approve {0} PROVIDER` (or `authsome deny`), up to 120 s",
            run.id
        );
    }
    let mut cmd = match &containment {
        Containment::Off => {
            eprintln!(
                "authsome: running without containment (--no-contain): the command can read the \
                 Authsome home and reach the daemon's API"
            );
            let mut c = tokio::process::Command::new(&program);
            c.args(&args.command[1..]);
            c
        }
        Containment::On { egress, support } => {
            if let Some(line) = support.missing(*egress) {
                eprintln!("{line}");
            }
            let mut daemon_ports = run.daemon_ports.clone();
            daemon_ports.push(client.port());
            let policy = Policy {
                home: ctx.home.root().to_path_buf(),
                readable: vec![run.ca_bundle.clone().into()],
                daemon_ports,
                proxy_port: run.proxy_port,
                egress: *egress,
                allow_ports: args.allow_ports.clone(),
                // AUTHSOME_RUN_USERNS=0: path rules only, for systems where a
                // user namespace is possible but unwelcome.
                mount_namespace: std::env::var_os("AUTHSOME_RUN_USERNS").is_none_or(|v| v != "0"),
            };
            let exe = std::env::current_exe().map_err(|e| CliError::Exec {
                status: 126,
                message: format!("cannot find the authsome binary: {e}"),
            })?;
            let mut c = tokio::process::Command::new(exe);
            c.arg(TRAMPOLINE)
                .arg(
                    serde_json::to_string(&policy)
                        .map_err(|e| CliError::daemon("internal", e.to_string()))?,
                )
                .args(&args.command);
            c
        }
    };
    cmd.envs(child_env(&run))
        // The CLI may hold the master key (CI); the command never does.
        .env_remove(authsome_daemon::vault::keys::MASTER_KEY_ENV)
        .kill_on_drop(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        match cmd.spawn() {
            Ok(child) => {
                // Registered before the child is ever waited for: until then
                // its pid cannot be reused, even if it has exited.
                if let Some(pid) = child.id() {
                    let watched: authsome_client::Result<serde_json::Value> = client.post(
                        &format!("/v1/runs/{}/pid", enc(&run.id)),
                        &serde_json::json!({ "pid": pid }),
                    );
                    if let Err(e) = watched {
                        // The run ends: a command the daemon cannot watch
                        // gets no credentials rather than unending ones.
                        eprintln!(
                            "authsome: warning: the daemon cannot watch the command ({}); \
                             its requests get no credentials",
                            e.message()
                        );
                    }
                }
                supervise(child)
                    .await
                    .map(exit_code)
                    .map_err(CliError::from)
            }
            Err(e) => Err(spawn_error(&program, &e)),
        }
    });
    let code = match &result {
        Ok(c) => *c,
        Err(CliError::Exec { status, .. }) => *status,
        Err(_) => 126,
    };
    let summary: authsome_client::Result<RunSummary> = client.post(
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
        eprintln!("Error: {}", e.message());
    }
    std::process::exit(code);
}

fn spawn_error(program: &str, e: &std::io::Error) -> CliError {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    CliError::Exec {
        status: code,
        message: format!("cannot run {program}: {e}"),
    }
}

/// The trampoline: `authsome __contained-exec POLICY CMD ARGS...`. Applies
/// the policy to this (single-threaded) process, then becomes CMD. Never
/// returns: on failure it exits 126 (cannot contain or execute) or 127
/// (CMD not found), as a shell does.
pub fn contained_exec(mut args: impl Iterator<Item = OsString>) -> ! {
    use std::os::unix::process::CommandExt;
    let fail = |code: i32, msg: String| -> ! {
        eprintln!("Error: {msg}");
        std::process::exit(code);
    };
    let policy: Policy = match args
        .next()
        .and_then(|p| p.into_string().ok())
        .map(|p| serde_json::from_str(&p))
    {
        Some(Ok(p)) => p,
        _ => fail(126, "the sandbox policy is missing or malformed".into()),
    };
    let Some(program) = args.next() else {
        fail(126, "no command to run".into());
    };
    match contain::apply(&policy) {
        Err(e) => fail(
            126,
            format!(
                "cannot contain the command: {e} (`authsome run --no-contain` runs it uncontained)"
            ),
        ),
        // The kernel has Landlock but applied nothing: never run as if contained.
        Ok(applied) if applied.support.files() && !applied.enforced => fail(
            126,
            "cannot contain the command: Landlock enforced none of the sandbox \
             (`authsome run --no-contain` runs it uncontained)"
                .into(),
        ),
        Ok(_) => {}
    }
    let e = std::process::Command::new(&program).args(args).exec();
    let err = spawn_error(&program.to_string_lossy(), &e);
    fail(err.exit_code(), err.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(env: &[(&str, &str)]) -> RunResponse {
        RunResponse {
            id: "run-x".into(),
            proxy_url: "http://run-x:s@127.0.0.1:1".into(),
            ca_bundle: "/h/ca/bundle.pem".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            proxy_port: 1,
            daemon_ports: vec![2, 1],
        }
    }

    #[test]
    fn a_daemon_answer_can_only_add_credential_placeholders() {
        let env = child_env(&answer(&[
            ("OPENAI_API_KEY", PLACEHOLDER),
            ("LD_PRELOAD", PLACEHOLDER),
            ("PATH", PLACEHOLDER),
            ("NODE_OPTIONS", "--require /tmp/x.js"),
            ("GITHUB_TOKEN", "ghp_real_value"),
        ]));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"OPENAI_API_KEY"));
        for refused in ["LD_PRELOAD", "PATH", "NODE_OPTIONS", "GITHUB_TOKEN"] {
            assert!(!names.contains(&refused), "{refused} was taken");
        }
        for (k, v) in &env {
            assert!(!v.contains("ghp_real_value"), "{k}");
        }
        assert!(env.contains(&("NODE_USE_ENV_PROXY".into(), "1".into())));
        assert!(env.contains(&("DENO_CERT".into(), "/h/ca/bundle.pem".into())));
    }
}
