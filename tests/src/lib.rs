//! Test harness: each test gets its own temp home (`AUTHSOME_HOME`, `HOME`,
//! `XDG_*`), a free port, and runs the real `authsome` binary against a real
//! daemon. Nothing touches the user's files or keychain.

pub mod browser;
pub mod echo;
pub mod fake_mcp;
pub mod fake_oauth;
pub mod policy;
pub mod raw_upstream;
pub mod runs;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built `authsome` binary (next to the test executable's `deps/`).
pub fn authsome_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("authsome");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts an exit code and returns self.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A temp home with its own port and environment.
#[derive(Debug)]
pub struct TestHome {
    dir: tempfile::TempDir,
    /// Daemon port.
    pub port: u16,
    extra_env: Vec<(String, String)>,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// A fresh home; the key backend falls to the file (no session bus).
    pub fn new() -> TestHome {
        let dir = tempfile::Builder::new()
            .prefix("authsome-test-")
            .tempdir()
            .unwrap();
        for sub in ["xdg-config", "xdg-data", "xdg-cache", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        TestHome {
            dir,
            port: free_port(),
            extra_env: Vec::new(),
        }
    }

    /// Adds an environment variable to every command.
    pub fn env(mut self, key: &str, value: &str) -> TestHome {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    /// The temp directory holding everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `AUTHSOME_HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("authsome")
    }

    /// A command for the `authsome` binary in this home.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.program(authsome_bin());
        c.args(args);
        c
    }

    /// A command for any program, with this home's environment and nothing else.
    pub fn program(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("AUTHSOME_HOME", self.home())
            .env("AUTHSOME_PORT", self.port.to_string())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg-cache"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    /// Runs `authsome args...` with optional stdin.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut c = self.cmd(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().expect("spawn authsome");
        if let Some(input) = stdin {
            // A command that fails early may close stdin before reading it.
            if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe,
                    "writing stdin: {e}"
                );
            }
        }
        Run::from(child.wait_with_output().unwrap())
    }

    /// Stores an API key through `login --stdin`.
    pub fn login_key(&self, provider: &str, key: &str) {
        self.run(&["login", provider, "--stdin"], Some(key)).ok();
    }

    /// Appends `text` (TOML) to the home's `config.toml`.
    pub fn append_config(&self, text: &str) {
        let path = self.home().join("config.toml");
        let mut config = std::fs::read_to_string(&path).unwrap_or_default();
        config.push('\n');
        config.push_str(text);
        std::fs::write(&path, config).unwrap();
    }

    /// `daemon.json`, parsed.
    pub fn daemon_info(&self) -> Option<serde_json::Value> {
        std::fs::read(self.home().join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// The daemon token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home().join("daemon.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `authsome get <provider> --field <field>`, trimmed (empty when the
    /// command fails, e.g. before the connection exists).
    pub fn field(&self, provider: &str, field: &str) -> String {
        self.run(&["get", provider, "--field", field], None)
            .stdout
            .trim()
            .to_string()
    }

    /// `authsome get <provider> --field <field> --show-secret`, which must succeed.
    pub fn secret(&self, provider: &str, field: &str) -> String {
        self.run(&["get", provider, "--field", field, "--show-secret"], None)
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// The running daemon's pid.
    pub fn daemon_pid(&self) -> Option<i32> {
        self.daemon_info()
            .and_then(|v| v["pid"].as_i64())
            .map(|p| p as i32)
    }

    /// Sends a signal to the daemon and waits for it to exit.
    pub fn signal_daemon(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.daemon_pid() {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, sig);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !process_gone(pid.as_raw()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Base URL of the daemon.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        self.signal_daemon(nix::sys::signal::Signal::SIGTERM);
    }
}

/// True when no live process has this pid (a zombie counts as gone).
pub fn process_gone(pid: i32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Polls `f` every 20 ms for up to `secs` seconds; true once it holds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP agent that reports 4xx/5xx as responses, never through a proxy.
pub fn http() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// Status and body of a request, whatever the status. A server that
/// refuses a body before reading it all (413) may close while the client
/// still writes: a broken pipe or reset on a request with a body is tried
/// again, up to ten times, until the answer is read.
pub fn send(req: ureq::Request, body: Option<&str>) -> (u16, String) {
    let mut tries = 0;
    loop {
        let result = match body {
            Some(b) => req.clone().send_string(b),
            None => req.clone().call(),
        };
        match result {
            Ok(r) => return (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => {
                return (code, r.into_string().unwrap_or_default())
            }
            Err(e)
                if body.is_some()
                    && tries < 10
                    && ["Broken pipe", "reset"]
                        .iter()
                        .any(|m| e.to_string().contains(m)) =>
            {
                tries += 1;
            }
            Err(e) => panic!("request failed: {e}"),
        }
    }
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// True when `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A small deterministic generator, so a failure can be replayed.
#[derive(Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number (31 bits).
    pub fn draw(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}
