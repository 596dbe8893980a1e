//! Hostile input through the real daemon and CLI: each case asserts a clear
//! error, the right status or exit code, and that nothing changed.

use std::io::{Read, Write};

use authsome_tests::browser::{self, pending_login, Pending};
use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::{http, send, TestHome};

fn started() -> TestHome {
    let t = TestHome::new();
    t.run(&["daemon", "start"], None).ok();
    t
}

fn nothing_stored(t: &TestHome) {
    let out = t.run(&["list", "--json"], None).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["connections"].as_array().unwrap().is_empty()),
        "state changed: {out}"
    );
}

#[test]
fn api_requests_with_bad_credentials_hosts_origins_and_bodies_are_refused() {
    let t = started();
    let auth = format!("Bearer {}", t.token());
    let cases: Vec<(&str, ureq::Request, Option<String>, u16)> = vec![
        ("no token", http().get(&t.url("/v1/connections")), None, 401),
        (
            "wrong token",
            http()
                .get(&t.url("/v1/connections"))
                .set("Authorization", "Bearer nope"),
            None,
            401,
        ),
        (
            "basic auth instead of bearer",
            http()
                .get(&t.url("/v1/connections"))
                .set("Authorization", "Basic Zm9vOmJhcg=="),
            None,
            401,
        ),
        (
            "token in the query",
            http().get(&t.url(&format!("/v1/connections?access_token={}", t.token()))),
            None,
            401,
        ),
        (
            "foreign Host",
            http()
                .get(&t.url("/v1/connections"))
                .set("Authorization", &auth)
                .set("Host", "evil.test"),
            None,
            403,
        ),
        (
            "rebinding Host with our port",
            http()
                .get(&t.url("/health"))
                .set("Host", &format!("evil.test:{}", t.port)),
            None,
            403,
        ),
        (
            "foreign Origin on a state change",
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Origin", "https://evil.test")
                .set("Content-Type", "application/json"),
            Some(r#"{"provider":"openai"}"#.into()),
            403,
        ),
        (
            "null Origin",
            http()
                .post(&t.url("/v1/providers/openai/remove"))
                .set("Authorization", &auth)
                .set("Origin", "null"),
            Some(String::new()),
            403,
        ),
        (
            "body over the cap",
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json"),
            Some(format!(
                r#"{{"provider":"openai","x":"{}"}}"#,
                "a".repeat(400 * 1024)
            )),
            413,
        ),
        (
            "malformed JSON",
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json"),
            Some("{\"provider\": ".into()),
            400,
        ),
        (
            "wrong content type",
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", "text/plain"),
            Some(r#"{"provider":"openai"}"#.into()),
            415,
        ),
        (
            "unknown field types",
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json"),
            Some(r#"{"provider":["openai"]}"#.into()),
            422,
        ),
    ];
    for (name, req, body, status) in cases {
        let (code, text) = send(req, body.as_deref());
        assert_eq!(code, status, "{name}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{name}: not a JSON error: {text}"));
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{name}: {text}"
        );
    }
    nothing_stored(&t);
}

#[test]
fn traversal_and_control_characters_in_names_are_refused() {
    let t = started();
    let auth = format!("Bearer {}", t.token());
    let long = "a".repeat(10_000);
    for name in [
        "../etc", "..", "%2e%2e", "a/b", "a\\b", "a\u{0}b", "a\nb", " openai", &long,
    ] {
        let body = serde_json::json!({"provider": name}).to_string();
        let (code, text) = send(
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json"),
            Some(&body),
        );
        assert!(
            code == 400 || code == 422,
            "provider {name:?}: {code} {text}"
        );
        let body = serde_json::json!({"provider": "openai", "connection": name}).to_string();
        let (code, _) = send(
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json"),
            Some(&body),
        );
        assert!(code == 400 || code == 422, "connection {name:?}: {code}");
    }
    for path in [
        "/v1/connections/openai/..%2F..%2Fx",
        "/v1/connections/..%2F/default",
        "/v1/connections/openai/%00",
        &format!("/v1/connections/openai/{long}"),
    ] {
        let (code, _) = send(http().get(&t.url(path)).set("Authorization", &auth), None);
        assert!(code == 400 || code == 404, "{path}: {code}");
    }
    for profile in ["../x", "a b", "%2e%2e", &long] {
        let (code, _) = send(
            http()
                .get(&t.url("/v1/connections"))
                .set("Authorization", &auth)
                .set("X-Authsome-Profile", profile),
            None,
        );
        assert_eq!(code, 400, "profile {profile:?}");
        t.run(&["--profile", profile, "list"], None).code(2);
    }
    t.run(&["get", "../../etc/passwd"], None).code(2);
    t.run(
        &["login", "openai", "--connection", "../x", "--stdin"],
        Some("sk-abcdefghijklmnopqrstuvwxyz"),
    )
    .code(2);
    assert!(!t.home().join("etc").exists() && !t.dir().join("x").exists());
    nothing_stored(&t);
}

#[test]
fn oauth_callbacks_that_do_not_belong_to_a_login_are_refused() {
    let t = started();
    let cases = [
        (
            "/auth/callback/oauth",
            "OAuth state parameter does not match",
        ),
        (
            "/auth/callback/oauth?code=abc",
            "OAuth state parameter does not match",
        ),
        (
            "/auth/callback/oauth?code=abc&state=unknown",
            "OAuth state parameter does not match",
        ),
        (
            "/auth/callback/oauth?error=access_denied&state=unknown",
            "OAuth state parameter does not match",
        ),
        (
            "/auth/callback/oauth?code=abc&state=one&state=two",
            "the callback repeats the parameter",
        ),
        (
            "/auth/callback/oauth?code=abc&code=def&state=x",
            "the callback repeats the parameter",
        ),
        (
            "/auth/callback/oauth?%ff%fe=1&state=%00",
            "OAuth state parameter does not match",
        ),
    ];
    for (path, expect) in cases {
        let (code, body) = send(http().get(&t.url(path)), None);
        assert_eq!(code, 400, "{path}");
        assert!(body.contains(expect), "{path}: {body}");
    }
    let huge = format!("/auth/callback/oauth?code={}&state=x", "a".repeat(8000));
    let (code, body) = send(http().get(&t.url(&huge)), None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("oversized"), "{body}");
    nothing_stored(&t);
}

/// Sends a hostile callback (built from the waiting login's `state`) from
/// the browser the login was launched in, and checks it is refused with
/// 400, ends the waiting CLI with `exit` and a message naming `reason`, and
/// exchanges no code.
fn hostile_callback_ends_the_login(query: impl Fn(&str) -> String, exit: i32, reason: &str) {
    let Pending {
        t,
        fake,
        mut cli,
        state,
        cookie,
        ..
    } = pending_login();
    let (code, body) = send(
        http()
            .get(&t.url(&format!("/auth/callback/oauth?{}", query(&state))))
            .set("Cookie", &cookie),
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains(reason), "{body}");
    let mut stderr = String::new();
    cli.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(cli.wait().unwrap().code(), Some(exit));
    assert!(stderr.contains(reason), "{stderr}");
    assert!(fake.state().issued.is_empty(), "no code was exchanged");
    t.run(&["get", "fake"], None).code(3);
}

#[test]
fn callbacks_from_a_browser_the_login_was_not_launched_in_are_refused_and_end_nothing() {
    let Pending {
        t,
        fake,
        mut cli,
        state,
        cookie,
        authorize,
        ..
    } = pending_login();
    let forged = [
        // The <img src=...> any web page can embed: no state it knows.
        (
            "code=abc&state=x".to_string(),
            400,
            "state parameter does not match",
        ),
        // The real state, read off a command line or guessed: still refused.
        (
            format!("code=attacker-code&state={state}"),
            403,
            "did not come from the browser",
        ),
        (
            format!("error=access_denied&state={state}"),
            403,
            "did not come from the browser",
        ),
        (
            format!("code=abc&state={state}&state={state}"),
            400,
            "repeats the parameter",
        ),
    ];
    let other_browser = "authsome-login-x=not-the-binding";
    for (query, status, reason) in &forged {
        for cookie in [None, Some(other_browser)] {
            let mut req = http().get(&t.url(&format!("/auth/callback/oauth?{query}")));
            if let Some(c) = cookie {
                req = req.set("Cookie", c);
            }
            let (code, body) = send(req, None);
            assert_eq!(code, *status, "{query}: {body}");
            assert!(body.contains(reason), "{query}: {body}");
        }
    }
    assert!(cli.try_wait().unwrap().is_none(), "the login still waits");
    assert!(fake.state().issued.is_empty(), "no code was exchanged");
    t.run(&["get", "fake"], None).code(3);
    // The person's own browser finishes the login with the same state.
    let callback = browser::step(&authorize, None).location.unwrap();
    let answer = browser::step(&callback, Some(&cookie));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(cli.wait().unwrap().code(), Some(0));
    assert_eq!(fake.state().issued.len(), 1);
}

#[test]
fn a_callback_with_both_code_and_error_ends_the_login_as_an_error() {
    hostile_callback_ends_the_login(
        |state| format!("code=abc&error=access_denied&state={state}"),
        1,
        "access_denied",
    );
}

#[test]
fn a_callback_with_a_repeated_state_ends_the_waiting_login() {
    // Exit code 2: the login ended on invalid input.
    hostile_callback_ends_the_login(
        |state| format!("code=abc&state={state}&state={state}"),
        2,
        "repeats the parameter",
    );
}

#[test]
fn hostile_provider_files_are_refused() {
    let t = TestHome::new();
    let base = serde_json::json!({
        "name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key", "host_url": "api.acme.test",
        "api_key": {"header_name": "X-Key", "header_prefix": ""}, "export": {"ACME_KEY": "api_key"}
    });
    let mut cases: Vec<(&str, String)> = vec![
        ("malformed JSON", "{\"name\": \"acme\",".into()),
        ("not an object", "[1, 2, 3]".into()),
        ("empty file", String::new()),
    ];
    let mut edit = |name: &'static str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        cases.push((name, v.to_string()));
    };
    edit("missing host_url", &|v| {
        v.as_object_mut().unwrap().remove("host_url");
    });
    edit("missing api_key block", &|v| {
        v.as_object_mut().unwrap().remove("api_key");
    });
    edit("flow does not fit auth_type", &|v| {
        v["flow"] = "device_code".into()
    });
    edit("oauth block on an api_key provider", &|v| {
        v["oauth"] = serde_json::json!({"token_url": "https://a.test/t"})
    });
    edit("non-loopback http", &|v| {
        v["docs_url"] = "http://acme.test/docs".into()
    });
    edit("javascript URL", &|v| {
        v["docs_url"] = "javascript:alert(1)".into()
    });
    edit("name with a separator", &|v| v["name"] = "acme/evil".into());
    edit("name with traversal", &|v| v["name"] = "../acme".into());
    edit("header injection in the header name", &|v| {
        v["api_key"]["header_name"] = "X-Key\r\nX-Evil: 1".into()
    });
    edit("control characters in the prefix", &|v| {
        v["api_key"]["header_prefix"] = "Bearer\r\n".into()
    });
    edit("a regex that does not compile", &|v| {
        v["host_url"] = "regex:(((".into()
    });
    edit("a regex too big to compile", &|v| {
        v["host_url"] = "regex:(?:\\w{1000}){1000}".into()
    });
    edit("unknown export field", &|v| {
        v["export"] = serde_json::json!({"ACME_KEY": "master_key"})
    });
    cases.push((
        "huge file",
        format!(
            "{{\"name\": \"acme\", \"pad\": \"{}\"}}",
            "x".repeat(200_000)
        ),
    ));
    for (name, text) in cases {
        let file = t.dir().join("case.json");
        std::fs::write(&file, &text).unwrap();
        let out = t.run(&["register", file.to_str().unwrap()], None);
        assert_ne!(out.code, 0, "{name} was accepted");
        assert!(out.stderr.contains("Error:"), "{name}: {}", out.stderr);
    }
    assert!(!t.home().join("providers/acme.json").exists());
    // A catastrophic-backtracking pattern elsewhere is fine here: matching is linear.
    let mut v = base.clone();
    v["host_url"] = "regex:^(a+)+$".into();
    let file = t.dir().join("ok.json");
    std::fs::write(&file, v.to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
}

#[test]
fn hostile_token_responses_end_the_login_cleanly() {
    let fake = FakeOAuth::start();
    let t = TestHome::new();
    let b = browser::follower(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    let refused: Vec<(u16, String, &str)> = vec![
        (
            200,
            r#"{"token_type":"bearer","expires_in":3600}"#.into(),
            "no access_token",
        ),
        (
            200,
            "<html><body>Sign in</body></html>".into(),
            "did not answer with JSON",
        ),
        (
            200,
            format!(r#"{{"access_token":"{}"}}"#, "a".repeat(2 * 1024 * 1024)),
            "too large",
        ),
        (
            400,
            r#"{"error": 42, "error_description": {"nested": true}}"#.into(),
            "HTTP 400",
        ),
        (
            400,
            r#"{"error": "invalid_grant\r\nX-Injected: yes"}"#.into(),
            "token exchange failed: invalid_grant",
        ),
        (200, r#"{"access_token":"line\nbreak"}"#.into(), "malformed"),
        (500, "upstream exploded".into(), "HTTP 500"),
    ];
    for (status, body, expect) in refused {
        fake.state().switches.exchange_raw = Some((status, body.clone()));
        let out = t.run(
            &["login", "fake", "--client-id", "c", "--stdin"],
            Some("fake-client-secret"),
        );
        assert_eq!(out.code, 1, "{expect}: {out:?}");
        assert!(out.stderr.contains(expect), "{expect}: {}", out.stderr);
        assert!(
            !out.stderr.contains('\r') && !out.stderr.lines().any(|l| l.starts_with("X-Injected")),
            "control characters reached the message: {:?}",
            out.stderr
        );
        t.run(&["get", "fake"], None).code(3);
    }
    let accepted: Vec<(&str, &str)> = vec![
        (
            r#"{"access_token":"t1","expires_in":-5}"#,
            "negative expires_in",
        ),
        (
            r#"{"access_token":"t2","expires_in":1e30}"#,
            "huge expires_in",
        ),
        (
            r#"{"access_token":"t3","expires_in":"3600"}"#,
            "expires_in as a string",
        ),
        (
            r#"{"access_token":"t4","expires_in":"soon","extra":{"a":[1,2]}}"#,
            "non-numeric expires_in and odd fields",
        ),
    ];
    for (body, name) in accepted {
        fake.state().switches.exchange_raw = Some((200, body.into()));
        let out = t.run(
            &["login", "fake", "--client-id", "c", "--stdin", "--force"],
            Some("fake-client-secret"),
        );
        assert_eq!(out.code, 0, "{name}: {out:?}");
    }
    let expires = t
        .run(&["get", "fake", "--field", "expires_at"], None)
        .ok()
        .stdout;
    assert!(
        expires.trim().is_empty(),
        "a non-numeric expires_in means no known expiry: {expires}"
    );
}

#[test]
fn the_proxy_refuses_wrong_credentials_and_smuggling_framing() {
    let t = started();
    let status = t.run(&["daemon", "status", "--json"], None).ok().stdout;
    let port = serde_json::from_str::<serde_json::Value>(&status).unwrap()["proxy_port"]
        .as_u64()
        .unwrap();
    let raw = |request: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let raw_all = |request: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).to_string()
    };
    let wrong = "Basic cnVuLXg6bm9wZQ=="; // run-x:nope
    for (name, req) in [
        ("no credentials", "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n".to_string()),
        ("wrong credentials", format!("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: {wrong}\r\n\r\n")),
        ("plain request, no credentials", "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n".to_string()),
    ] {
        let answer = raw(&req);
        assert!(answer.starts_with("HTTP/1.1 407"), "{name}: {answer}");
    }
    // Conflicting framing, sent with a live run's valid credentials so that
    // only the framing can be what the proxy refuses.
    let live = authsome_tests::runs::LiveRun::start(&t);
    let auth = live.auth.clone();
    let ok = raw(&format!("GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: {auth}\r\n\r\n"));
    assert!(
        ok.starts_with("HTTP/1.1 502"),
        "valid credentials reach the forwarding step: {ok}"
    );
    // Both framings: the answer (here 502, nothing listens) closes the
    // connection, so the request smuggled behind the chunked body is never
    // read. What reaches a live upstream: proxy_framing.rs.
    let answer = raw_all(&format!(
        "POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: {auth}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://127.0.0.1:1/smuggled HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: {auth}\r\n\r\n"
    ));
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "the smuggled request was answered: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let answer = raw_all(&format!(
        "POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: {auth}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
    ));
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "two Content-Lengths: {answer}"
    );
    drop(live);
}
