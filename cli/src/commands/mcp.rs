//! `authsome mcp`: remote MCP servers.
//!
//! - `mcp add NAME URL` discovers how the server is protected and records
//!   it as a provider (`authsome login NAME` then works as for any other);
//! - `mcp list` shows the servers and their state;
//! - `mcp config NAME --for HOST` prints what to add to an MCP host;
//! - `mcp connect NAME` is what the host launches: a stdio MCP server that
//!   bridges newline-delimited JSON-RPC to the remote server's Streamable
//!   HTTP endpoint, with a token from the daemon on every request. Stdout
//!   carries only protocol; diagnostics go to stderr; no token is written
//!   anywhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authsome_daemon::wire::{ConnectionView, InspectResponse, ListResponse, McpAddResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::client::{enc, Client};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// `authsome mcp ...`.
#[derive(Debug, clap::Subcommand)]
pub enum McpCommand {
    /// Add a remote MCP server by its URL (its Streamable HTTP endpoint).
    Add {
        /// The name to record it under (then `authsome login NAME`).
        name: String,
        /// The server's URL.
        url: String,
        /// A client registered by hand, for servers without dynamic
        /// client registration; or the https URL of a Client ID Metadata
        /// Document, for servers that take them.
        #[arg(long)]
        client_id: Option<String>,
        /// Read the client secret from standard input (confidential clients).
        #[arg(long, requires = "client_id")]
        stdin: bool,
        /// Replace a provider of the same name, forgetting its connections.
        #[arg(long)]
        force: bool,
    },
    /// The MCP servers and the state of their connections.
    List,
    /// Print what to add to an MCP host's configuration.
    Config {
        /// The server.
        #[arg(add = crate::complete::providers())]
        name: String,
        /// The host.
        #[arg(long = "for", value_enum, default_value = "claude-desktop")]
        host: Host,
    },
    /// Bridge standard input and output to the server (an MCP host runs this).
    Connect {
        /// The server.
        #[arg(add = crate::complete::providers())]
        name: String,
        /// Connection name (default `default`).
        #[arg(long, add = crate::complete::connections())]
        connection: Option<String>,
    },
}

/// MCP hosts `mcp config` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    /// Claude Desktop (`claude_desktop_config.json`).
    ClaudeDesktop,
    /// Claude Code (`claude mcp add`, or `.mcp.json`).
    ClaudeCode,
    /// Cursor (`~/.cursor/mcp.json`).
    Cursor,
    /// Codex (`~/.codex/config.toml`).
    Codex,
}

/// Runs an `mcp` subcommand.
pub fn run(ctx: &Ctx, cmd: McpCommand) -> CliResult {
    match cmd {
        McpCommand::Add {
            name,
            url,
            client_id,
            stdin,
            force,
        } => add(ctx, name, url, client_id, stdin, force),
        McpCommand::List => list(ctx),
        McpCommand::Config { name, host } => config(ctx, &name, host),
        McpCommand::Connect { name, connection } => connect(ctx, &name, connection),
    }
}

fn add(
    ctx: &Ctx,
    name: String,
    url: String,
    client_id: Option<String>,
    stdin: bool,
    force: bool,
) -> CliResult {
    let client_secret = if stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Io(format!("cannot read the client secret: {e}")))?;
        Some(s.trim().to_string())
    } else {
        None
    };
    let found: McpAddResponse = ctx.client()?.post(
        "/v1/mcp/servers",
        &json!({
            "name": name, "url": url, "client_id": client_id,
            "client_secret": client_secret, "force": force,
        }),
    )?;
    if ctx.json {
        return output::json(&found);
    }
    let registration = match found.registration {
        authsome_daemon::flows::mcp::Registration::Dynamic => format!(
            "dynamic client registration (RFC 7591) at {}, at the first login",
            found.registration_endpoint.as_deref().unwrap_or("-")
        ),
        authsome_daemon::flows::mcp::Registration::MetadataDocument => {
            "the Client ID Metadata Document you gave (its URL is the client ID)".to_string()
        }
        authsome_daemon::flows::mcp::Registration::ClientId => {
            "the client ID you gave (stored)".to_string()
        }
    };
    let mut text = format!(
        "Found the MCP server {}\n  resource:  {}\n  issuer:    {}\n  scopes:    {}\n  client:    {}\n  iss check: {}\n",
        found.url,
        found.resource,
        found.issuer,
        if found.scopes.is_empty() {
            "(none advertised)".to_string()
        } else {
            found.scopes.join(" ")
        },
        registration,
        if found.iss_parameter_supported {
            "every authorization response (RFC 9207)"
        } else {
            "when the server sends one"
        },
    );
    for w in &found.warnings {
        text.push_str(&format!("Warning: {w}\n"));
    }
    text.push_str(&format!(
        "Added {}. Next: `authsome login {}`, then `authsome mcp config {}`.\n",
        found.name, found.name, found.name
    ));
    output::emit(&text)
}

fn list(ctx: &Ctx) -> CliResult {
    let all: ListResponse = ctx.client()?.get("/v1/connections")?;
    let servers: Vec<_> = all
        .providers
        .iter()
        .filter(|p| p.mcp_url.is_some())
        .collect();
    if ctx.json {
        return output::json(&servers);
    }
    if servers.is_empty() {
        return output::line("No MCP servers. Add one with `authsome mcp add NAME URL`.");
    }
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.mcp_url.clone().unwrap_or_default(),
                p.auth_type.as_str().to_string(),
                p.status.as_str().to_string(),
            ]
        })
        .collect();
    output::emit(&output::table(&["NAME", "URL", "AUTH", "STATUS"], &rows))
}

fn config(ctx: &Ctx, name: &str, host: Host) -> CliResult {
    let info: InspectResponse = ctx.client()?.get(&format!("/v1/providers/{}", enc(name)))?;
    if info.definition.mcp_url.is_none() {
        return Err(CliError::usage(format!(
            "{name} has no MCP server (no mcp_url); add one with `authsome mcp add`"
        )));
    }
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "authsome".into());
    let entry = json!({"command": exe, "args": ["mcp", "connect", name]});
    let text = match host {
        Host::ClaudeDesktop | Host::Cursor => {
            let file = if host == Host::Cursor {
                "~/.cursor/mcp.json"
            } else {
                "claude_desktop_config.json (Settings ▸ Developer ▸ Edit Config)"
            };
            format!(
                "Add to {file}:\n{}\n",
                serde_json::to_string_pretty(&json!({"mcpServers": {name: entry}}))
                    .unwrap_or_default()
            )
        }
        Host::ClaudeCode => format!(
            "Run:\n  claude mcp add {name} -- {exe} mcp connect {name}\nor add to .mcp.json:\n{}\n",
            serde_json::to_string_pretty(&json!({"mcpServers": {name: entry}})).unwrap_or_default()
        ),
        Host::Codex => format!(
            "Add to ~/.codex/config.toml:\n[mcp_servers.{name}]\ncommand = {}\nargs = [\"mcp\", \"connect\", \"{name}\"]\n",
            serde_json::to_string(&exe).unwrap_or_default()
        ),
    };
    output::emit(&text)
}

/// A JSON-RPC error code for what the bridge itself reports.
const BRIDGE_ERROR: i64 = -32001;

/// Largest message read from the server.
const MAX_MESSAGE: u64 = 4 * 1024 * 1024;

/// How long requests still in flight may take once stdin has closed.
const DRAIN: Duration = Duration::from_secs(10);

/// The bridge between an MCP host (stdio) and a remote server.
struct Bridge {
    daemon: Client,
    name: String,
    connection: String,
    url: String,
    /// Header name and prefix of the credential.
    header: (String, String),
    http: ureq::Agent,
    token: Mutex<Option<(String, Option<DateTime<Utc>>)>>,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    out: Mutex<std::io::Stdout>,
}

/// Why a message could not be delivered; said to the host as a JSON-RPC error.
struct Failure {
    message: String,
    run: Option<String>,
}

impl Bridge {
    /// Writes one protocol message as one line.
    fn emit(&self, msg: &Value) {
        let mut out = self.out.lock().expect("stdout");
        let _ = writeln!(out, "{msg}");
        let _ = out.flush();
    }

    fn fail(&self, id: Option<&Value>, f: Failure) {
        eprintln!("authsome mcp: {}: {}", self.name, f.message);
        if let Some(id) = id {
            let mut error =
                json!({"code": BRIDGE_ERROR, "message": f.message, "data": {"server": self.name}});
            if let Some(run) = f.run {
                error["data"]["run"] = json!(run);
            }
            self.emit(&json!({"jsonrpc": "2.0", "id": id, "error": error}));
        }
    }

    /// A token from the daemon, reused until a minute before it expires
    /// (the daemon refreshes it, one flight for every caller).
    fn token(&self) -> Result<String, Failure> {
        let mut cached = self.token.lock().expect("token");
        if let Some((t, until)) = cached.as_ref() {
            if until.is_none_or(|u| u - chrono::Duration::seconds(60) > Utc::now()) {
                return Ok(t.clone());
            }
        }
        let path = format!(
            "/v1/connections/{}/{}?show_secret=true&fields=access_token,api_key",
            enc(&self.name),
            enc(&self.connection)
        );
        let fetched = self.daemon.get(&path).map_err(CliError::from);
        self.keep(&mut cached, fetched)
    }

    /// The token in a connection view the daemon sent, now the cached one.
    fn keep(
        &self,
        cached: &mut Option<(String, Option<DateTime<Utc>>)>,
        fetched: CliResult<ConnectionView>,
    ) -> Result<String, Failure> {
        let view = fetched.map_err(|e| Failure {
            message: format!("no credential: {}", e.message()),
            run: Some(format!("authsome login {} --force", self.name)),
        })?;
        let token = view
            .secrets
            .get("access_token")
            .or_else(|| view.secrets.get("api_key"))
            .cloned()
            .ok_or_else(|| Failure {
                message: "the connection holds no token".into(),
                run: Some(format!("authsome login {}", self.name)),
            })?;
        *cached = Some((token.clone(), view.expires_at));
        Ok(token)
    }

    /// A token to replace `refused`, which the server answered 401 to.
    fn token_after(&self, refused: &str) -> Result<String, Failure> {
        let path = format!(
            "/v1/connections/{}/{}/refresh",
            enc(&self.name),
            enc(&self.connection)
        );
        let fetched = self
            .daemon
            .post(
                &path,
                &json!({"rejected_sha256": authsome_daemon::secret::fingerprint(refused)}),
            )
            .map_err(CliError::from);
        let mut cached = self.token.lock().expect("token");
        self.keep(&mut cached, fetched)
    }

    fn request(&self, method: &str, token: &str) -> ureq::Request {
        let (name, prefix) = &self.header;
        let value = if prefix.is_empty() {
            token.to_string()
        } else {
            format!("{prefix} {token}")
        };
        let mut req = self
            .http
            .request(method, &self.url)
            .set(name, &value)
            .set("Accept", "application/json, text/event-stream");
        if let Some(s) = self.session.lock().expect("session").as_ref() {
            req = req.set("Mcp-Session-Id", s);
        }
        if let Some(v) = self.protocol.lock().expect("protocol").as_ref() {
            req = req.set("MCP-Protocol-Version", v);
        }
        req
    }

    /// Sends one message; answers go to stdout as they come.
    fn deliver(self: &Arc<Self>, msg: Value) {
        let id = msg
            .get("id")
            .filter(|_| msg.get("method").is_some())
            .cloned();
        let method = msg["method"].as_str().unwrap_or_default().to_string();
        let body = msg.to_string();
        let mut token = match self.token() {
            Ok(t) => t,
            Err(f) => return self.fail(id.as_ref(), f),
        };
        for attempt in 0..2 {
            let result = self
                .request("POST", &token)
                .set("Content-Type", "application/json")
                .send_string(&body);
            match result {
                Ok(resp) => {
                    if method == "initialize" {
                        if let Some(s) = resp.header("mcp-session-id") {
                            *self.session.lock().expect("session") = Some(s.to_string());
                        }
                    }
                    let initialized = method == "initialize";
                    let answered = self.read_answer(resp, initialized, id.as_ref());
                    if !answered {
                        self.fail(
                            id.as_ref(),
                            Failure {
                                message: "the server's answer held no response to this request"
                                    .into(),
                                run: None,
                            },
                        );
                    }
                    if initialized {
                        let me = self.clone();
                        std::thread::spawn(move || me.listen());
                    }
                    return;
                }
                Err(ureq::Error::Status(401, _)) if attempt == 0 => {
                    // The daemon refreshes a token a server refused (once for
                    // every bridge that met the same refusal).
                    match self.token_after(&token) {
                        Ok(t) if t != token => token = t,
                        Ok(_) => {
                            return self.fail(
                                id.as_ref(),
                                Failure {
                                    message: "the server refused the token (401)".into(),
                                    run: Some(format!("authsome login {} --force", self.name)),
                                },
                            )
                        }
                        Err(f) => return self.fail(id.as_ref(), f),
                    }
                }
                Err(ureq::Error::Status(401, _)) => {
                    return self.fail(
                        id.as_ref(),
                        Failure {
                            message: "the server refused a fresh token (401)".into(),
                            run: Some(format!("authsome login {} --force", self.name)),
                        },
                    )
                }
                Err(ureq::Error::Status(403, resp)) => {
                    let challenge = resp
                        .header("www-authenticate")
                        .unwrap_or_default()
                        .to_string();
                    let scope = authsome_daemon::flows::mcp::challenge_param(&challenge, "scope");
                    let insufficient =
                        authsome_daemon::flows::mcp::challenge_param(&challenge, "error")
                            .as_deref()
                            == Some("insufficient_scope");
                    return self.fail(
                        id.as_ref(),
                        if insufficient {
                            // Only scope characters: the hint is a command line.
                            let scope: String = scope
                                .unwrap_or_default()
                                .chars()
                                .filter(|c| c.is_ascii_alphanumeric() || ":._/- ".contains(*c))
                                .take(200)
                                .collect();
                            Failure {
                                message: format!(
                                    "the server needs scope {scope:?} (403 insufficient_scope)"
                                ),
                                run: Some(format!(
                                    "authsome login {} --force --scopes {}",
                                    self.name,
                                    scope.replace(' ', ",")
                                )),
                            }
                        } else {
                            Failure {
                                message: "the server refused the request (403)".into(),
                                run: None,
                            }
                        },
                    );
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let mut text = String::new();
                    let _ = resp.into_reader().take(2048).read_to_string(&mut text);
                    // A JSON-RPC error in the body is the server's answer.
                    if let Ok(mut v) = serde_json::from_str::<Value>(&text) {
                        if v.get("error").is_some() {
                            // The server's own error, answered to this request.
                            if let Some(id) = &id {
                                v["id"] = id.clone();
                            }
                            return self.emit(&v);
                        }
                    }
                    return self.fail(
                        id.as_ref(),
                        Failure {
                            message: format!("the server answered HTTP {code}"),
                            run: None,
                        },
                    );
                }
                Err(e) => {
                    return self.fail(
                        id.as_ref(),
                        Failure {
                            message: format!("the server could not be reached: {e}"),
                            run: None,
                        },
                    )
                }
            }
        }
    }

    /// Writes the messages of an answer (one JSON body, or an SSE stream);
    /// true when the response to `id` was among them (or none was due).
    fn read_answer(&self, resp: ureq::Response, initialized: bool, id: Option<&Value>) -> bool {
        let sse = resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if resp.status() == 202 || id.is_none() {
            return true;
        }
        if !(200..300).contains(&resp.status()) {
            eprintln!(
                "authsome mcp: {}: the server answered HTTP {}",
                self.name,
                resp.status()
            );
            return false;
        }
        if sse {
            return self.read_events(resp.into_reader(), initialized, id);
        }
        let mut text = String::new();
        if resp
            .into_reader()
            .take(MAX_MESSAGE)
            .read_to_string(&mut text)
            .is_err()
        {
            eprintln!("authsome mcp: {}: the answer could not be read", self.name);
            return false;
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                if initialized {
                    self.note_protocol(&v);
                }
                let answered = id.is_none_or(|id| v.get("id") == Some(id));
                self.emit(&v);
                answered
            }
            Err(_) => {
                eprintln!(
                    "authsome mcp: {}: the server answered something not JSON",
                    self.name
                );
                false
            }
        }
    }

    fn note_protocol(&self, v: &Value) {
        if let Some(p) = v["result"]["protocolVersion"].as_str() {
            *self.protocol.lock().expect("protocol") = Some(p.to_string());
        }
    }

    /// Server-Sent Events: each event's data is one JSON-RPC message. Ends
    /// once the response to `id` has come (the server may keep the stream
    /// open), or with the stream; true when that response came.
    fn read_events(&self, reader: impl Read, initialized: bool, id: Option<&Value>) -> bool {
        let mut data = String::new();
        let mut reader = BufReader::new(reader.take(u64::MAX));
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match (&mut reader).take(MAX_MESSAGE).read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() {
                    if let Ok(v) = serde_json::from_str::<Value>(&data) {
                        if initialized {
                            self.note_protocol(&v);
                        }
                        let done = id.is_some_and(|id| v.get("id") == Some(id));
                        self.emit(&v);
                        if done {
                            return true;
                        }
                    }
                    data.clear();
                }
                continue;
            }
            if let Some(d) = line.strip_prefix("data:") {
                if data.len() + d.len() > MAX_MESSAGE as usize {
                    eprintln!("authsome mcp: {}: an event is too large", self.name);
                    return false;
                }
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
    }

    /// The GET stream of messages the server starts, when it offers one.
    fn listen(self: Arc<Self>) {
        let Ok(token) = self.token() else { return };
        match self
            .request("GET", &token)
            .set("Accept", "text/event-stream")
            .call()
        {
            Ok(resp)
                if resp
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("text/event-stream")) =>
            {
                self.read_events(resp.into_reader(), false, None);
            }
            Ok(_) | Err(ureq::Error::Status(405, _)) => {}
            Err(e) => eprintln!("authsome mcp: {}: no server stream: {e}", self.name),
        }
    }

    /// Ends the session at the server (`DELETE`).
    fn close(&self) {
        if self.session.lock().expect("session").is_none() {
            return;
        }
        if let Ok(token) = self.token() {
            let _ = self.request("DELETE", &token).call();
        }
    }
}

fn connect(ctx: &Ctx, name: &str, connection: Option<String>) -> CliResult {
    let daemon = ctx.client()?;
    let info: InspectResponse = daemon.get(&format!("/v1/providers/{}", enc(name)))?;
    let url = info.definition.mcp_url.clone().ok_or_else(|| {
        CliError::usage(format!(
            "{name} has no MCP server (no mcp_url); add one with `authsome mcp add`"
        ))
    })?;
    let header = match &info.definition.api_key {
        Some(k) => (k.header_name.clone(), k.header_prefix.clone()),
        None => ("Authorization".into(), "Bearer".into()),
    };
    let bridge = Arc::new(Bridge {
        daemon,
        name: name.to_string(),
        connection: crate::connection_arg(connection.as_deref())?,
        url,
        header,
        http: ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(10))
            .build(),
        token: Mutex::new(None),
        session: Mutex::new(None),
        protocol: Mutex::new(None),
        out: Mutex::new(std::io::stdout()),
    });
    let mut handles = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(msg) => {
                let b = bridge.clone();
                // initialize goes first, alone: later messages need its
                // session. Notifications and answers to the server go in
                // order (`initialized` before the next request, a
                // cancellation after what it cancels); requests may overlap.
                let is_request = msg.get("id").is_some() && msg.get("method").is_some();
                if msg["method"] == "initialize" || !is_request {
                    b.deliver(msg);
                } else {
                    handles.push(std::thread::spawn(move || b.deliver(msg)));
                }
            }
            Err(_) => bridge.emit(&json!({
                "jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": "parse error: not JSON"}
            })),
        }
        handles.retain(|h| !h.is_finished());
    }
    // Requests still in flight get a moment; then the session ends.
    let deadline = std::time::Instant::now() + DRAIN;
    while handles.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    bridge.close();
    std::io::stdout().flush().ok();
    // Threads still reading a stream the server keeps open end with us.
    std::process::exit(0)
}
