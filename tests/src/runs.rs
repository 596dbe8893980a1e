//! Shared setup for `authsome run` tests: a home whose provider `echo`
//! points at a local HTTPS echo server the daemon trusts.

use std::net::IpAddr;

use crate::echo::{self, Echo};
use crate::TestHome;

/// The API key stored for `echo`.
pub const KEY: &str = "echo-secret-key-5Jq8Lm2Vx7Nc";

/// Registers a custom provider definition.
pub fn register(t: &TestHome, def: serde_json::Value) {
    let file = t
        .dir()
        .join(format!("{}.json", def["name"].as_str().unwrap()));
    std::fs::write(&file, def.to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap(), "--force"], None)
        .ok();
}

/// An API-key provider sending `X-Api-Key` to `host_url`.
pub fn api_key_provider(name: &str, host_url: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "display_name": name, "auth_type": "api_key", "flow": "api_key",
        "host_url": host_url,
        "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "env_var": format!("{}_API_KEY", name.to_uppercase())},
        "export": {format!("{}_API_KEY", name.to_uppercase()): "api_key"}
    })
}

/// A home trusting an HTTPS echo server on 127.0.0.2, with provider `echo`
/// (host_url `ip:port` + `path_prefix`) connected with [`KEY`].
pub fn echo_home_with_prefix(path_prefix: &str) -> (TestHome, Echo) {
    let t = TestHome::new();
    let ip: IpAddr = "127.0.0.2".parse().unwrap();
    let echo = echo::https(t.dir(), ip, "echo");
    t.run(&["init", "--key-backend", "file"], None).ok();
    t.append_config(&format!(
        "[proxy]\nextra_ca_file = {:?}\n",
        echo.ca_file.as_ref().unwrap().display().to_string()
    ));
    register(
        &t,
        api_key_provider("echo", &format!("{}{path_prefix}", echo.host_port())),
    );
    t.login_key("echo", KEY);
    (t, echo)
}

/// [`echo_home_with_prefix`] without a path prefix.
pub fn echo_home() -> (TestHome, Echo) {
    echo_home_with_prefix("")
}

/// The `headers` object of the first JSON line the echo server answered.
pub fn headers_of(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {out:?}"));
    serde_json::from_str::<serde_json::Value>(line).unwrap()["headers"].clone()
}

/// A Node client that tunnels through `HTTPS_PROXY` itself (Node 20 has no
/// proxy support of its own) and prints the answer to `argv[2]`.
pub const NODE_CLIENT: &str = r#"const http = require('http'), https = require('https'), tls = require('tls');
const proxy = new URL(process.env.HTTPS_PROXY), target = new URL(process.argv[2]);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64');
class TunnelAgent extends https.Agent {
  createConnection(options, cb) {
    const c = http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: `${options.host}:${options.port}`, headers: {'Proxy-Authorization': auth}});
    c.on('connect', (res, socket) => {
      if (res.statusCode !== 200) return cb(new Error('proxy answered ' + res.statusCode));
      cb(null, super.createConnection({...options, socket}));
    });
    c.on('error', cb);
    c.end();
  }
}
https.get(target, {agent: new TunnelAgent()}, (resp) => {
  let body = ''; resp.on('data', (d) => body += d); resp.on('end', () => console.log(body));
}).on('error', (e) => { console.error(e.message); process.exit(1); });
"#;

/// A Python client (urllib, which honours the proxy variables) printing the
/// answer to `argv[1]`.
pub const PYTHON_CLIENT: &str =
    "import sys, urllib.request\nprint(urllib.request.urlopen(sys.argv[1]).read().decode())\n";

/// An `authsome run` kept alive so a test can speak to its proxy directly.
#[derive(Debug)]
pub struct LiveRun {
    child: std::process::Child,
    /// The proxy's port.
    pub port: u16,
    /// The run's `Proxy-Authorization` value (`Basic ...`).
    pub auth: String,
    /// The run's proxy password.
    pub password: String,
}

impl LiveRun {
    /// Starts `authsome run` with a command that notes `HTTPS_PROXY` and sleeps.
    pub fn start(t: &TestHome) -> LiveRun {
        let file = t.dir().join("live-run-proxy-url");
        let child = t
            .cmd(&[
                "run",
                "--",
                "sh",
                "-c",
                &format!(
                    "printf %s \"$HTTPS_PROXY\" > {:?}; exec sleep 120",
                    file.display().to_string()
                ),
            ])
            .spawn()
            .unwrap();
        assert!(crate::eventually(10, || std::fs::read_to_string(&file)
            .is_ok_and(|s| s.contains('@'))));
        let url = url::Url::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let password = url.password().unwrap().to_string();
        use base64::Engine;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                url.username(),
                password
            ))
        );
        LiveRun {
            child,
            port: url.port().unwrap(),
            auth,
            password,
        }
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        // SIGTERM reaches the command through `authsome run`, which then exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
