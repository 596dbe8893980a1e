//! `authsome-client`: talk to the Authsome daemon from Rust.
//!
//! It finds the home (`AUTHSOME_HOME`, else `~/.authsome`) and the daemon
//! through `daemon.json`, checks that the process on that port is this
//! home's daemon before it sends the token, starts the daemon headless when
//! none answers (or restarts it when it is another version), and makes
//! authenticated requests: plain HTTP to 127.0.0.1 only, never through a
//! proxy. The `authsome` command line makes every daemon call through it.
//!
//! ```no_run
//! let client = authsome_client::Client::from_env()?;
//! let token = client.get_access_token("github", "default")?;
//! let headers = client.auth_headers("openai", "default")?;
//! # Ok::<(), authsome_client::Error>(())
//! ```
//!
//! Inside `authsome run` the home is hidden, so the client cannot work
//! there: the run's proxy adds credentials to the command's requests instead.

mod error;
mod library;

pub use error::{Error, ErrorKind, Result};

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use authsome_daemon::home::Home;
use authsome_daemon::instance::DaemonInfo;
use authsome_daemon::vault::keys::MasterKeyLoader;
use authsome_daemon::wire::{ErrorBody, HealthResponse, PROFILE_HEADER};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long to wait for a daemon that was just started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The line `authsome daemon serve --ready-pipe` prints once it listens (or fails).
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ReadyLine {
    /// True when serving.
    pub ready: bool,
    /// Port, when serving.
    #[serde(default)]
    pub port: Option<u16>,
    /// Error code, when not.
    #[serde(default)]
    pub error: Option<String>,
    /// Error message, when not.
    #[serde(default)]
    pub message: Option<String>,
    /// Notes for the person (key backend chosen, files left out).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// An authenticated connection to the daemon.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    port: u16,
    token: String,
    profile: Option<String>,
    verbose: bool,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout(timeout)
        .build()
}

/// `daemon.json`, if present and readable.
pub fn read_info(home: &Home) -> Option<DaemonInfo> {
    std::fs::read(home.daemon_json())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// True when a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    authsome_daemon::process::process_alive(pid)
}

/// What answers on a daemon port.
#[derive(Debug)]
pub enum Probe {
    /// This home's daemon: it proved it knows the token.
    Ours(HealthResponse),
    /// Nothing listens (a stale `daemon.json`).
    Nothing,
    /// Something that cannot prove it knows the token.
    Impostor,
}

/// Asks whatever listens on `port` to prove it knows `token` (see
/// `authsome_daemon::identity`). Sends nothing else, and never the token.
pub fn probe(port: u16, token: &str) -> Probe {
    use authsome_daemon::identity;
    let challenge = identity::new_challenge();
    let url = format!(
        "http://127.0.0.1:{port}/health?{}={challenge}",
        identity::CHALLENGE_PARAM
    );
    match agent(Duration::from_secs(5)).get(&url).call() {
        Err(ureq::Error::Transport(_)) => Probe::Nothing,
        Err(ureq::Error::Status(..)) => Probe::Impostor,
        Ok(resp) => match resp.into_json::<HealthResponse>() {
            Ok(h)
                if h.proof
                    .as_deref()
                    .is_some_and(|p| identity::verify(token, port, &challenge, p)) =>
            {
                Probe::Ours(h)
            }
            _ => Probe::Impostor,
        },
    }
}

fn impostor(port: u16) -> Error {
    Error::Impostor(format!(
        "the process on 127.0.0.1:{port} is not this home's daemon (it cannot prove it knows \
             daemon.token); nothing was sent to it. If the daemon was killed, something else holds \
             its port now: stop it, or set AUTHSOME_PORT (`authsome daemon stop` ends an older \
             Authsome daemon that cannot answer)"
    ))
}

/// `GET /health` on a port, if something answers like a daemon.
pub fn health(port: u16) -> Option<HealthResponse> {
    agent(Duration::from_secs(2))
        .get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .ok()
        .and_then(|r| r.into_json().ok())
}

fn read_token(home: &Home) -> Result<String> {
    std::fs::read_to_string(home.token_path())
        .map(|t| t.trim().to_string())
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot read {}: {e} (inside `authsome run` the Authsome home is hidden on \
                 purpose: the run's proxy adds credentials to the command's requests instead)",
                home.token_path().display()
            ))
        })
}

/// Creates the home and its key backend if needed, telling the person
/// which backend a new home took.
pub fn ensure_initialized(home: &Home) -> Result {
    if home.is_initialized() {
        return Ok(());
    }
    let report = MasterKeyLoader::new(home.clone()).init(None)?;
    if let Some(reason) = report.fallback_reason {
        eprintln!(
            "Note: the OS keychain is not available ({reason}); the master key is stored in {} (mode 0600). \
             `authsome doctor` shows the key backend in effect.",
            home.master_key_path().display()
        );
    }
    Ok(())
}

/// True when this process may create or write the home (it cannot inside
/// a contained run, where the home is hidden).
fn writable(home: &Home) -> bool {
    use nix::unistd::{access, AccessFlags};
    let mut dir = home.root();
    while !dir.exists() {
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return false,
        }
    }
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
}

/// The `authsome` program that starts a daemon: this program when it is
/// `authsome`, else `AUTHSOME_BIN`, else `authsome` on the `PATH`.
fn program() -> Result<std::path::PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == "authsome") {
            return Ok(exe);
        }
    }
    if let Some(bin) = std::env::var_os("AUTHSOME_BIN").filter(|v| !v.is_empty()) {
        return Ok(bin.into());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("authsome"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::unavailable(
                "no daemon runs and the authsome program was not found to start one: \
                 put it on the PATH or set AUTHSOME_BIN",
            )
        })
}

/// Starts `authsome daemon serve` detached and waits until it listens.
pub fn start_daemon(home: &Home) -> Result<u16> {
    ensure_initialized(home)?;
    let mut cmd = Command::new(program()?);
    authsome_daemon::process::scrub_daemon_env(&mut cmd);
    // The master key, if this program was given one, goes over a pipe: the
    // daemon's environment (and so every process it starts) never holds it.
    let key = authsome_daemon::vault::keys::given_key();
    cmd.args(["daemon", "serve", "--ready-pipe"]);
    if key.is_some() {
        cmd.arg("--master-key-stdin").stdin(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null());
    }
    let mut child = cmd
        .env("AUTHSOME_HOME", home.root())
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::unavailable(format!("cannot start the daemon: {e}")))?;
    if let (Some(key), Some(mut stdin)) = (key, child.stdin.take()) {
        use std::io::Write;
        let mut line = zeroize::Zeroizing::new(key.to_string());
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .map_err(|e| Error::unavailable(format!("cannot start the daemon: {e}")))?;
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
        Error::unavailable("the daemon did not start in time; see logs/authsome.log in the home")
    })?;
    // Reap the child in the background if it exits; it is its own process group.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let ready: ReadyLine = serde_json::from_str(line.trim()).map_err(|_| {
        Error::unavailable(
            "the daemon exited during start-up; run `authsome daemon serve` to see why",
        )
    })?;
    for note in &ready.notes {
        eprintln!("Note: {note}");
    }
    if ready.ready {
        return ready
            .port
            .ok_or_else(|| Error::unavailable("the daemon reported no port"));
    }
    let code = ready.error.unwrap_or_else(|| "daemon_unavailable".into());
    if code == "daemon_running" {
        // Another CLI started it a moment ago: wait for it to answer.
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(info) = read_info(home) {
                match read_token(home).map(|t| probe(info.port, &t)) {
                    Ok(Probe::Ours(_)) => return Ok(info.port),
                    Ok(Probe::Impostor) => return Err(impostor(info.port)),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(Error::daemon(
        &code,
        ready
            .message
            .unwrap_or_else(|| "the daemon could not start".into()),
    ))
}

/// Stops the daemon serving `home`, if any. True when one was stopped.
pub fn stop_daemon(home: &Home) -> Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::unavailable(format!("cannot stop the daemon: {e}")))?;
    rt.block_on(authsome_daemon::instance::stop_running(home))
        .map_err(Error::from)
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &"***")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the home's daemon, starting it when none answers and
    /// restarting it when it runs another version.
    pub fn connect(home: &Home, profile: Option<String>, verbose: bool) -> Result<Client> {
        let ours = authsome_daemon::VERSION;
        if let Some(info) = read_info(home).filter(|i| pid_alive(i.pid)) {
            let token = read_token(home)?;
            match probe(info.port, &token) {
                Probe::Ours(h) if h.version == ours && info.version == ours => {
                    return Ok(Client {
                        agent: agent(Duration::from_secs(120)),
                        base: format!("http://127.0.0.1:{}", info.port),
                        port: info.port,
                        token,
                        profile,
                        verbose,
                    });
                }
                Probe::Ours(h) => {
                    if verbose {
                        eprintln!("DEBUG restarting daemon {} (this CLI is {ours})", h.version);
                    }
                    stop_daemon(home)?;
                }
                Probe::Impostor => return Err(impostor(info.port)),
                Probe::Nothing => {}
            }
        }
        if !writable(home) {
            return Err(Error::unavailable(format!(
                "no daemon answers for {} and this process cannot write there to start one \
                 (inside `authsome run` the Authsome home is hidden on purpose: the run's proxy \
                 adds credentials to the command's requests instead)",
                home.root().display()
            )));
        }
        let port = start_daemon(home)?;
        Ok(Client {
            agent: agent(Duration::from_secs(120)),
            base: format!("http://127.0.0.1:{port}"),
            port,
            token: read_token(home)?,
            profile,
            verbose,
        })
    }

    /// The home's daemon when it already runs and proves itself, without
    /// starting one and with short timeouts (for shell completion).
    pub fn running(home: &Home, profile: Option<String>) -> Option<Client> {
        let info = read_info(home).filter(|i| pid_alive(i.pid))?;
        let token = read_token(home).ok()?;
        match probe(info.port, &token) {
            Probe::Ours(_) => Some(Client {
                agent: agent(Duration::from_secs(2)),
                base: format!("http://127.0.0.1:{}", info.port),
                port: info.port,
                token,
                profile,
                verbose: false,
            }),
            _ => None,
        }
    }

    /// The daemon's API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        if let Some(p) = &self.profile {
            req = req.set(PROFILE_HEADER, p);
        }
        req
    }

    fn finish<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        started: Instant,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<T> {
        // Log the route and status only: bodies may carry secrets.
        let route = path.split('?').next().unwrap_or(path);
        match result {
            Ok(resp) => {
                if self.verbose {
                    eprintln!(
                        "DEBUG {method} {route} -> {} in {:.1} ms",
                        resp.status(),
                        started.elapsed().as_secs_f64() * 1e3
                    );
                }
                if resp.status() == 204 || resp.status() == 201 || resp.status() == 202 {
                    return serde_json::from_str("null")
                        .map_err(|e| Error::BadResponse(e.to_string()));
                }
                resp.into_json().map_err(|e| {
                    Error::BadResponse(format!("unexpected answer from the daemon: {e}"))
                })
            }
            Err(ureq::Error::Status(code, resp)) => {
                if self.verbose {
                    eprintln!(
                        "DEBUG {method} {route} -> {code} in {:.1} ms",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                }
                let body: ErrorBody = resp.into_json().unwrap_or_else(|_| ErrorBody {
                    error: "http_error".into(),
                    message: format!("the daemon answered {code}"),
                });
                Err(body.into())
            }
            Err(e) => Err(Error::unavailable(format!(
                "cannot reach the daemon at {}: {e}",
                self.base
            ))),
        }
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let started = Instant::now();
        self.finish("GET", path, started, self.request("GET", path).call())
    }

    /// `POST path` with a JSON body.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let started = Instant::now();
        self.finish(
            "POST",
            path,
            started,
            self.request("POST", path).send_json(body),
        )
    }

    /// `DELETE path`, reading the answer.
    pub fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let started = Instant::now();
        self.finish("DELETE", path, started, self.request("DELETE", path).call())
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<()> {
        let started = Instant::now();
        self.finish::<serde_json::Value>(
            "DELETE",
            path,
            started,
            self.request("DELETE", path).call(),
        )
        .map(|_| ())
    }
}

/// The daemon's events as they happen (`GET /v1/events`).
pub struct EventStream {
    reader: std::io::BufReader<Box<dyn std::io::Read + Send + Sync + 'static>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

impl Iterator for EventStream {
    type Item = Result<authsome_daemon::events::Event>;

    /// The next event; `None` when the daemon closed the stream.
    fn next(&mut self) -> Option<Self::Item> {
        use std::io::BufRead;
        let mut data = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(Error::unavailable(format!(
                        "the daemon's event stream broke: {e}"
                    ))))
                }
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data).map_err(|e| {
                    Error::BadResponse(format!("unexpected event from the daemon: {e}"))
                }));
            }
            // `event:` repeats the type that the JSON carries; `:` lines keep the stream alive.
            if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
    }
}

impl Client {
    /// Subscribes to the daemon's events. Only events after this call come.
    pub fn events(&self) -> Result<EventStream> {
        // No overall timeout: the stream lasts; the daemon sends a comment
        // every 15 s, so a read that waits 60 s means it is gone.
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout_read(Duration::from_secs(60))
            .build();
        let path = "/v1/events";
        let mut req = agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        if let Some(p) = &self.profile {
            req = req.set(PROFILE_HEADER, p);
        }
        match req.call() {
            Ok(resp) => Ok(EventStream {
                reader: std::io::BufReader::new(resp.into_reader()),
            }),
            Err(e) => Err(self
                .finish::<serde_json::Value>("GET", path, Instant::now(), Err(e))
                .err()
                .unwrap_or_else(|| Error::unavailable("the daemon refused the event stream"))),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let c = Client {
            agent: agent(Duration::from_secs(1)),
            base: "http://127.0.0.1:1".into(),
            port: 1,
            token: "daemon-token-secret".into(),
            profile: None,
            verbose: false,
        };
        let printed = format!("{c:?}");
        assert!(!printed.contains("daemon-token-secret") && printed.contains("***"));
    }
}
