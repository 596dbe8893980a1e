//! `authsome run`: real clients (curl, Python's urllib, Node's https) behind
//! the daemon's proxy, against local HTTPS and HTTP echo servers.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use authsome_tests::echo;
use authsome_tests::eventually;
use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::runs::{api_key_provider, echo_home, headers_of, register, KEY};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn curl_gets_the_header_and_the_child_sees_only_a_placeholder() {
    let (t, echo) = echo_home();
    let out = t
        .run(
            &[
                "run",
                "--",
                "curl",
                "-sS",
                "--fail",
                &echo.url("/v1/models"),
            ],
            None,
        )
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], KEY);
    let env = t.run(&["run", "--", "env"], None).ok().stdout;
    assert!(
        !env.contains(KEY),
        "the secret is in the child's environment"
    );
    assert!(env.contains("ECHO_API_KEY=authsome-proxy-managed"), "{env}");
    for var in [
        "HTTPS_PROXY=",
        "https_proxy=",
        "HTTP_PROXY=",
        "ALL_PROXY=",
        "all_proxy=",
        "NO_PROXY=localhost,127.0.0.1,::1",
        "SSL_CERT_FILE=",
        "REQUESTS_CA_BUNDLE=",
        "CURL_CA_BUNDLE=",
        "NODE_EXTRA_CA_CERTS=",
        "GIT_SSL_CAINFO=",
        "DENO_CERT=",
        "NODE_USE_ENV_PROXY=1",
    ] {
        assert!(env.contains(var), "{var} missing");
    }
    let mut with_key = t.cmd(&["run", "--", "env"]);
    with_key.env(
        "AUTHSOME_MASTER_KEY",
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    );
    let env = String::from_utf8(with_key.output().unwrap().stdout).unwrap();
    assert!(
        env.contains("HTTPS_PROXY=") && !env.contains("AUTHSOME_MASTER_KEY"),
        "the master key reached the child"
    );
    let ps = t.run(&["run", "--", "ps", "-eo", "args"], None).ok().stdout;
    assert!(!ps.contains(KEY), "the secret is on a command line");
    // The placeholder the SDK sends is replaced.
    let out = t
        .run(
            &[
                "run",
                "--",
                "curl",
                "-sS",
                "-H",
                "X-Api-Key: authsome-proxy-managed",
                &echo.url("/"),
            ],
            None,
        )
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], KEY);
    let log = t.run(&["log", "-n", "5", "--json"], None).ok().stdout;
    assert!(
        log.contains("\"event\":\"run\"")
            && log.contains("command curl, exit 0")
            && log.contains("injected echo=1"),
        "{log}"
    );
}

#[test]
fn python_and_node_clients_work_through_the_proxy() {
    let (t, echo) = echo_home();
    let py = t.dir().join("client.py");
    std::fs::write(&py, authsome_tests::runs::PYTHON_CLIENT).unwrap();
    let out = t
        .run(
            &[
                "run",
                "--",
                "python3",
                py.to_str().unwrap(),
                &echo.url("/py"),
            ],
            None,
        )
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], KEY);

    let js = t.dir().join("client.js");
    std::fs::write(&js, authsome_tests::runs::NODE_CLIENT).unwrap();
    let out = t
        .run(
            &[
                "run",
                "--",
                "node",
                js.to_str().unwrap(),
                &echo.url("/node"),
            ],
            None,
        )
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], KEY, "{out:?}");
}

#[test]
fn an_unmatched_host_is_tunnelled_untouched() {
    let (t, _echo) = echo_home();
    let other = echo::https(t.dir(), ip("127.0.0.3"), "other");
    // The client trusts only the other server's own CA: it would refuse Authsome's certificate.
    let ca = other
        .ca_file
        .as_ref()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let out = t
        .run(
            &[
                "run",
                "--",
                "curl",
                "-sS",
                "--fail",
                "--cacert",
                &ca,
                &other.url("/x"),
            ],
            None,
        )
        .ok();
    let headers = headers_of(&out.stdout);
    assert!(headers.get("x-api-key").is_none(), "{headers}");
    assert!(headers.get("authorization").is_none());
}

#[test]
fn the_proxy_answers_407_without_a_live_runs_credentials() {
    let (t, echo) = echo_home();
    let status = t.run(&["daemon", "status", "--json"], None).ok().stdout;
    let port = serde_json::from_str::<serde_json::Value>(&status).unwrap()["proxy_port"]
        .as_u64()
        .unwrap();
    let bare = format!("http://127.0.0.1:{port}");
    let out = t
        .program("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-x",
            &bare,
            &echo.url("/").replace("https", "http"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "407");
    let out = t
        .program("curl")
        .args(["-sS", "-x", &bare, "--proxy-insecure", &echo.url("/")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "CONNECT without credentials must fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("407"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A finished run's credentials stop working.
    let proxy = t
        .run(
            &["run", "--", "sh", "-c", "printf %s \"$HTTPS_PROXY\""],
            None,
        )
        .ok()
        .stdout;
    assert!(proxy.starts_with("http://run-"), "{proxy}");
    let out = t
        .program("curl")
        .args([
            "-sS",
            "-x",
            &proxy,
            "--cacert",
            &t.home().join("ca/bundle.pem").display().to_string(),
            &echo.url("/"),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("407"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_ambiguous_match_injects_nothing_and_is_logged() {
    let (t, echo) = echo_home();
    register(&t, api_key_provider("echotwin", &echo.host_port()));
    t.login_key("echotwin", "twin-key");
    let out = t
        .run(&["run", "--", "curl", "-sS", &echo.url("/amb")], None)
        .ok();
    assert!(headers_of(&out.stdout).get("x-api-key").is_none());
    let log = std::fs::read_to_string(t.home().join("logs/authsome.log")).unwrap();
    assert!(log.contains("ambiguous"), "the tie is logged");
    // Choosing connections does not break the tie between providers, but a
    // more specific pattern does.
    register(
        &t,
        api_key_provider("echopath", &format!("{}/amb", echo.host_port())),
    );
    t.login_key("echopath", "path-key");
    let out = t
        .run(&["run", "--", "curl", "-sS", &echo.url("/amb/x")], None)
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], "path-key");
}

#[test]
fn exit_codes_and_signals_pass_through() {
    let (t, _echo) = echo_home();
    t.run(&["run", "--", "true"], None).code(0);
    t.run(&["run", "--", "sh", "-c", "exit 3"], None).code(3);
    t.run(&["run", "--", "sh", "-c", "kill -TERM $$"], None)
        .code(143);
    t.run(&["run", "--", "no-such-program-here"], None)
        .code(127);
    t.run(&["run"], None).code(2);
    // SIGTERM to authsome reaches the command.
    let mut child = t.cmd(&["run", "--", "sleep", "30"]).spawn().unwrap();
    assert!(eventually(10, || {
        let s = t.run(&["daemon", "status", "--json"], None);
        serde_json::from_str::<serde_json::Value>(&s.stdout)
            .map(|v| v["runs"] == 1)
            .unwrap_or(false)
    }));
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
}

#[test]
fn plain_http_gets_credentials_only_on_loopback() {
    let (t, _echo) = echo_home();
    let plain = echo::http(ip("127.0.0.2"));
    register(&t, api_key_provider("plain", &plain.host_port()));
    t.login_key("plain", "plain-key");
    // NO_PROXY covers 127.0.0.1 only; 127.0.0.2 goes through the proxy.
    let out = t
        .run(&["run", "--", "curl", "-sS", &plain.url("/p")], None)
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], "plain-key");
}

#[test]
fn an_unverifiable_upstream_gives_the_child_a_502_with_the_reason() {
    let (t, _echo) = echo_home();
    let rogue = echo::https(t.dir(), ip("127.0.0.4"), "rogue");
    register(&t, api_key_provider("rogue", &rogue.host_port()));
    t.login_key("rogue", "rogue-key");
    let out = t
        .run(
            &[
                "run",
                "--",
                "curl",
                "-sS",
                "-w",
                "\n%{http_code}",
                &rogue.url("/"),
            ],
            None,
        )
        .ok();
    assert!(out.stdout.trim_end().ends_with("502"), "{}", out.stdout);
    assert!(
        out.stdout.contains("could not be verified") && out.stdout.contains("extra_ca_file"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_token_refreshed_during_a_run_is_the_one_injected() {
    let (t, echo) = echo_home();
    let fake = FakeOAuth::start();
    let mut def = fake.provider("fakeapi", "pkce");
    def["host_url"] = format!("{}/oauth-api", echo.host_port()).into();
    register(&t, def);
    {
        // Due at 3 s: the first request has 3 s to be injected with the
        // login's token; the second, 3.5 s later, is surely past due.
        let mut st = fake.state();
        st.switches.expires_in = Some(6);
        st.switches.refresh_expires_in = Some(3600);
        st.switches.device_pending_polls = 0;
    }
    t.run(
        &[
            "login",
            "fakeapi",
            "--flow",
            "device_code",
            "--client-id",
            "c",
            "--stdin",
        ],
        Some("fake-client-secret"),
    )
    .ok();
    let script = t.dir().join("twice.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncurl -sS {0}\necho\nsleep 3.5\ncurl -sS {0}\n",
            echo.url("/oauth-api/me")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = t.run(&["run", "--", script.to_str().unwrap()], None).ok();
    let tokens: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["headers"]["authorization"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let issued = fake.state().issued.clone();
    assert_eq!(
        tokens,
        vec![
            format!("Bearer {}", issued[0]),
            format!("Bearer {}", issued[1])
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_shows_the_ca_fingerprint() {
    let (t, _echo) = echo_home();
    let doctor = t.run(&["doctor"], None).ok().stdout;
    let line = doctor
        .lines()
        .find(|l| l.contains("proxy CA"))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(
        line.contains("SHA-256") && line.matches(':').count() >= 31,
        "{line}"
    );
}

/// This machine's first non-loopback IPv4 address (traffic to it stays on
/// the machine).
fn own_address() -> Option<IpAddr> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[test]
fn plain_http_to_a_non_loopback_address_gets_no_credential() {
    let (t, _echo) = echo_home();
    let addr = own_address().expect("a non-loopback IPv4 address on this machine");
    let plain = echo::http(addr);
    register(&t, api_key_provider("lan", &plain.host_port()));
    t.login_key("lan", "lan-key-never-in-clear");
    // NO_PROXY covers loopback only: the request goes through the proxy,
    // which forwards it but adds nothing in clear text.
    let out = t
        .run(
            &["run", "--", "curl", "-sS", "--fail", &plain.url("/clear")],
            None,
        )
        .ok();
    assert!(
        out.stdout.contains("\"path\":\"/clear\""),
        "it reached the server: {}",
        out.stdout
    );
    assert!(
        headers_of(&out.stdout).get("x-api-key").is_none(),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("lan-key-never-in-clear"));
}
