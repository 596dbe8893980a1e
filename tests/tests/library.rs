//! Library access: `authsome-client` (Rust) and `authsome_client` (Python)
//! against a real daemon, and the OpenAPI document of the `/v1` routes.

use std::path::Path;
use std::time::Duration;

use authsome_client::{Client, ErrorKind};
use authsome_daemon::home::Home;
use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::runs::{api_key_provider, register};
use authsome_tests::TestHome;

const OPENAI_KEY: &str = "sk-library-test-abcdefghijklmnopqrstuvwxyz";
const ACME_KEY: &str = "acme-library-key-7Hq2Wz";

/// A home with an OpenAI key, an `acme` key sent as `X-Api-Key`, and the
/// daemon running.
fn home_with_keys() -> TestHome {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    t.login_key("openai", OPENAI_KEY);
    register(&t, api_key_provider("acme", "api.acme.test"));
    t.login_key("acme", ACME_KEY);
    t
}

/// Registers the fake's provider as `name` and logs in to it (PKCE).
fn oauth_login(t: &TestHome, fake: &FakeOAuth, name: &str) {
    let file = t.dir().join(format!("{name}.json"));
    std::fs::write(&file, fake.provider(name, "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    t.run(
        &["login", name, "--client-id", "c", "--stdin"],
        Some("fake-client-secret"),
    )
    .ok();
}

fn client(t: &TestHome) -> Client {
    Client::connect(&Home::at(t.home()), None, false).expect("the daemon answers")
}

#[test]
fn the_rust_client_gets_keys_headers_connections_and_exports() {
    let t = home_with_keys();
    let c = client(&t);
    assert_eq!(
        c.get_access_token("openai", "default").unwrap().expose(),
        OPENAI_KEY
    );
    let headers = c.auth_headers("openai", "default").unwrap().headers;
    assert_eq!(
        headers.into_iter().collect::<Vec<_>>(),
        [("Authorization".to_string(), format!("Bearer {OPENAI_KEY}"))]
    );
    // The provider's own header, as the proxy would send it.
    let headers = c.auth_headers("acme", "default").unwrap().headers;
    assert_eq!(headers.get("X-Api-Key").map(String::as_str), Some(ACME_KEY));
    let view = c.connection("openai", "default").unwrap();
    assert_eq!(view.secrets.get("api_key").map(String::as_str), Some("***"));
    let list = c.connections().unwrap();
    let names: Vec<_> = list
        .providers
        .iter()
        .filter(|p| !p.connections.is_empty())
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["acme", "openai"]);
    let vars = c.export(Some("openai"), "default").unwrap().vars;
    assert_eq!(vars.len(), 1);
    assert_eq!(
        (vars[0].name.as_str(), vars[0].value.as_str()),
        ("OPENAI_API_KEY", OPENAI_KEY)
    );

    // Typed errors with the command line's exit codes.
    let e = c
        .get_access_token("no-such-provider", "default")
        .unwrap_err();
    assert_eq!((e.kind(), e.exit_code()), (ErrorKind::ProviderNotFound, 4));
    let e = c.auth_headers("no-such-provider", "default").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ProviderNotFound);
    let e = c.get_access_token("openai", "nope").unwrap_err();
    assert_eq!(
        (e.kind(), e.exit_code()),
        (ErrorKind::ConnectionNotFound, 3)
    );
    let e = c.auth_headers("openai", "nope").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionNotFound);

    // Nothing that holds a secret prints it.
    let token = c.get_access_token("openai", "default").unwrap();
    let headers = c.auth_headers("acme", "default").unwrap();
    let exported = c.export(None, "default").unwrap();
    let view = c.connection("openai", "default").unwrap();
    let printed = format!("{c:?} {token:?} {headers:?} {exported:?} {view:?} {e:?} {e}");
    let daemon_token = t.token();
    for secret in [OPENAI_KEY, ACME_KEY, daemon_token.as_str()] {
        assert!(!printed.contains(secret), "{printed}");
    }
    // Each read of a secret is audited, without the secret.
    let audit = std::fs::read_to_string(t.home().join("audit.log")).unwrap();
    assert!(audit.contains("auth headers shown"), "{audit}");
    assert!(!audit.contains(OPENAI_KEY) && !audit.contains(ACME_KEY));
}

#[test]
fn the_rust_client_gets_a_refreshed_token_and_reports_a_failed_refresh() {
    let t = TestHome::new();
    let b = authsome_tests::browser::follower(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    t.run(&["init", "--key-backend", "file"], None).ok();
    let fake = FakeOAuth::start();
    fake.state().switches.expires_in = Some(2);
    oauth_login(&t, &fake, "fake");
    let c = client(&t);
    let first = c.get_access_token("fake", "default").unwrap();
    // What the client asks for reveals the access token, not the refresh token.
    let view: authsome_daemon::wire::ConnectionView = c
        .get("/v1/connections/fake/default?show_secret=true&fields=access_token,api_key")
        .unwrap();
    assert_eq!(
        view.secrets.get("access_token").map(String::as_str),
        Some(first.expose())
    );
    assert_eq!(
        view.secrets.get("refresh_token").map(String::as_str),
        Some("***")
    );
    let header = c.auth_headers("fake", "default").unwrap().headers;
    assert_eq!(
        header.get("Authorization").cloned(),
        Some(format!("Bearer {}", first.expose()))
    );
    let expires = c.connection("fake", "default").unwrap().expires_at.unwrap();
    let wait = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(500));
    let second = c.get_access_token("fake", "default").unwrap();
    assert_ne!(first.expose(), second.expose(), "the token was refreshed");
    assert!(fake.state().refresh_calls >= 1);
    assert!(fake.state().issued.iter().any(|t| t == second.expose()));

    // The server refuses the next refresh: the credential is unavailable.
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    let expires = c.connection("fake", "default").unwrap().expires_at.unwrap();
    let wait = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(500));
    let e = c.get_access_token("fake", "default").unwrap_err();
    assert_eq!(
        (e.kind(), e.exit_code()),
        (ErrorKind::CredentialUnavailable, 5),
        "{e}"
    );
    assert!(!e.message().is_empty());
}

#[test]
fn the_rust_client_sends_nothing_to_an_impostor_and_signals_no_process() {
    use std::io::{Read, Write};
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    // Something else listens on the port `daemon.json` names, and the pid
    // there is some other live process.
    let mut bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(
        t.home().join("daemon.json"),
        serde_json::json!({"pid": bystander.id(), "port": port, "version": "x"}).to_string(),
    )
    .unwrap();
    std::fs::write(t.home().join("daemon.token"), "library-test-daemon-token").unwrap();
    let seen = std::thread::spawn(move || {
        let mut requests = String::new();
        listener.set_nonblocking(false).unwrap();
        if let Ok((mut s, _)) = listener.accept() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            requests.push_str(&String::from_utf8_lossy(&buf[..n]));
            let body = r#"{"status":"ok","version":"x","proof":"00"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        requests
    });
    let e = Client::connect(&Home::at(t.home()), None, false).unwrap_err();
    assert_eq!(
        (e.kind(), e.exit_code()),
        (ErrorKind::DaemonUnavailable, 9),
        "{e}"
    );
    let requests = seen.join().unwrap();
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the client signalled the process daemon.json names"
    );
    let _ = bystander.kill();
    assert!(requests.starts_with("GET /health?challenge="), "{requests}");
    assert!(
        !requests.to_ascii_lowercase().contains("authorization")
            && !requests.contains("library-test-daemon-token"),
        "{requests}"
    );
}

/// A program that is not `authsome` starts the daemon through the library
/// with `authsome` found on the `PATH`, or says it cannot.
#[test]
fn a_program_using_the_rust_client_starts_the_daemon_from_the_path() {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    let demo = authsome_tests::authsome_bin().with_file_name("authsome-client-demo");
    // Without `authsome` on the PATH: no daemon, and it says so (exit 9).
    let out = t
        .program(&demo)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "error daemon_unavailable 9"
    );
    assert!(t.daemon_info().is_none());
    // With it: the daemon starts, and the key comes back.
    let bin_dir = demo.parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let out = t.program(&demo).env("PATH", &path).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "error connection_not_found 3"
    );
    assert!(t.daemon_pid().is_some(), "the library started the daemon");
    t.login_key("openai", OPENAI_KEY);
    let out = t.program(&demo).env("PATH", &path).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ok {} Authorization", OPENAI_KEY.len())
    );
}

/// Inside a contained run the home is hidden: the library says so (exit 9)
/// instead of trying to start a daemon there.
#[test]
fn the_rust_client_inside_a_contained_run_says_the_home_is_hidden() {
    let t = home_with_keys();
    let demo = authsome_tests::authsome_bin().with_file_name("authsome-client-demo");
    let out = t
        .cmd(&["run", "--", demo.to_str().unwrap(), "openai"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "error daemon_unavailable 9",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(9));
}

/// Each documented route is served (its method is routed, another method
/// on its path is 405), and the document needs the token.
#[test]
fn the_openapi_document_covers_every_v1_route_and_needs_the_token() {
    let t = home_with_keys();
    let url = t.url("/v1/openapi.json");
    let (status, _) = authsome_tests::send(authsome_tests::http().get(&url), None);
    assert_eq!(status, 401);
    let auth = format!("Bearer {}", t.token());
    let (status, body) = authsome_tests::send(
        authsome_tests::http().get(&url).set("Authorization", &auth),
        None,
    );
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut probed = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{provider}", "openai")
            .replace("{connection}", "default")
            .replace("{id}", "nope");
        let target = t.url(&concrete);
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() || concrete == "/v1/shutdown" {
                continue;
            }
            let req = authsome_tests::http()
                .request(&method.to_uppercase(), &target)
                .set("Authorization", &auth);
            let (status, body) = if concrete == "/v1/events" {
                // A stream: the status line is enough.
                let resp = req.call().unwrap();
                (resp.status(), String::new())
            } else if method == "post" {
                authsome_tests::send(req.set("Content-Type", "application/json"), Some("{}"))
            } else {
                authsome_tests::send(req, None)
            };
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                // Runs, logins and grants answer an unknown id with not_found
                // too; every other route has a code of its own.
                !body.contains("\"error\":\"not_found\"") || path.contains("{id}"),
                "{method} {path} fell through to the fallback: {body}"
            );
            probed += 1;
        }
        let (status, _) = authsome_tests::send(
            authsome_tests::http()
                .request("PATCH", &target)
                .set("Authorization", &auth),
            None,
        );
        assert_eq!(
            status, 405,
            "{path} is documented but the router has no such path"
        );
    }
    assert!(probed >= 28, "{probed} operations probed");
    // The last one stops the daemon.
    let (status, _) = authsome_tests::send(
        authsome_tests::http()
            .post(&t.url("/v1/shutdown"))
            .set("Authorization", &auth),
        None,
    );
    assert_eq!(status, 202);
}

/// The Python package's own tests, against this home's daemon: an API key,
/// an OAuth token refreshed across its expiry, a refused refresh, each
/// error, and the leak checks of its reprs and logs.
#[test]
fn the_python_client_passes_its_tests_against_a_real_daemon() {
    let t = home_with_keys();
    let b = authsome_tests::browser::follower(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    let fake = FakeOAuth::start();
    fake.state().switches.expires_in = Some(3);
    oauth_login(&t, &fake, "fake");
    let broken = FakeOAuth::start();
    broken.state().switches.expires_in = Some(1);
    oauth_login(&t, &broken, "broken");
    broken.state().switches.refresh_error = Some("invalid_grant".into());
    std::thread::sleep(Duration::from_millis(1500));

    // Installed with pip from a copy of the source (the build leaves files
    // behind), and tested as installed.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python");
    let source = t.dir().join("python-src");
    let installed = t.dir().join("python-lib");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(&root)
        .arg(&source)
        .status()
        .unwrap();
    assert!(copied.success());
    let pip = t
        .program("python3")
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
        .arg(&installed)
        .arg(&source)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
        .output()
        .unwrap();
    assert!(
        pip.status.success(),
        "pip install failed: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    assert!(installed.join("authsome_client/__init__.py").exists());
    let bin_dir = authsome_tests::authsome_bin()
        .parent()
        .unwrap()
        .to_path_buf();
    let out = t
        .program("python3")
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(root.join("tests"))
        .env("PYTHONPATH", &installed)
        .env(
            "AUTHSOME_CLIENT_UNDER_TEST",
            installed.join("authsome_client"),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("AUTHSOME_TEST_API_KEY", OPENAI_KEY)
        .env("AUTHSOME_TEST_OAUTH_PROVIDER", "fake")
        .env("AUTHSOME_TEST_BROKEN_PROVIDER", "broken")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("skipped"), "a test was skipped:\n{report}");
    assert!(fake.state().refresh_calls >= 1, "the token was refreshed");

    // Inside a contained run the home is hidden: DaemonUnavailable, saying why.
    let script = "import authsome_client as a\n\
                  try:\n    a.AuthLayer().get_access_token('openai'); print('no error')\n\
                  except a.DaemonUnavailable as e:\n    print('unavailable', 'authsome run' in str(e))";
    let out = t
        .cmd(&["run", "--", "python3", "-c", script])
        .env("PYTHONPATH", &installed)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "unavailable True",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
