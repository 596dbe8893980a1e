//! The API's trust boundary over a real socket: token, Host, Origin, body
//! limits and JSON errors.

use authsome_tests::{http, send, TestHome};

fn started() -> TestHome {
    let t = TestHome::new();
    t.run(&["daemon", "start"], None).ok();
    t
}

#[test]
fn health_is_open_and_everything_under_v1_needs_the_token() {
    let t = started();
    let (code, body) = send(http().get(&t.url("/health")), None);
    assert_eq!(code, 200);
    assert!(body.contains("\"version\""));
    for path in [
        "/v1/connections",
        "/v1/status",
        "/v1/providers",
        "/v1/export?provider=openai",
        "/v1/events",
    ] {
        let (code, body) = send(http().get(&t.url(path)), None);
        assert_eq!(code, 401, "{path}");
        let err: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(err["error"], "unauthorized");
        let (code, _) = send(
            http()
                .get(&t.url(path))
                .set("Authorization", "Bearer wrong-token"),
            None,
        );
        assert_eq!(code, 401, "{path} with a wrong token");
    }
    let (code, _) = send(
        http().get(&t.url(&format!("/v1/connections?token={}", t.token()))),
        None,
    );
    assert_eq!(code, 401, "a token in the query string is not a credential");
    let (code, _) = send(
        http()
            .get(&t.url("/v1/connections"))
            .set("Authorization", &format!("Bearer {}", t.token())),
        None,
    );
    assert_eq!(code, 200);
    let (code, _) = send(http().post(&t.url("/v1/shutdown")), None);
    assert_eq!(code, 401);
}

#[test]
fn foreign_host_and_origin_are_refused() {
    let t = started();
    let auth = format!("Bearer {}", t.token());
    let (code, _) = send(
        http().get(&t.url("/health")).set("Host", "evil.example"),
        None,
    );
    assert_eq!(code, 403, "DNS rebinding: a foreign Host is refused");
    let (code, _) = send(
        http()
            .get(&t.url("/v1/connections"))
            .set("Authorization", &auth)
            .set("Host", "attacker.test:80"),
        None,
    );
    assert_eq!(code, 403);
    let (code, _) = send(
        http()
            .post(&t.url("/v1/logins"))
            .set("Authorization", &auth)
            .set("Origin", "https://evil.example")
            .set("Content-Type", "application/json"),
        Some(r#"{"provider":"openai"}"#),
    );
    assert_eq!(code, 403, "cross-origin state change refused");
    let (code, _) = send(
        http()
            .get(&t.url("/v1/connections"))
            .set("Authorization", &auth)
            .set("Host", &format!("localhost:{}", t.port)),
        None,
    );
    assert_eq!(code, 200);
}

#[test]
fn bad_bodies_get_json_errors_and_change_nothing() {
    let t = started();
    let auth = format!("Bearer {}", t.token());
    let post = |body: &str, ctype: &str| {
        send(
            http()
                .post(&t.url("/v1/logins"))
                .set("Authorization", &auth)
                .set("Content-Type", ctype),
            Some(body),
        )
    };
    let (code, body) = post("{not json", "application/json");
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        "invalid_input"
    );
    let (code, _) = post(r#"{"provider":"openai"}"#, "text/plain");
    assert_eq!(code, 415);
    // A body over the limit gets 413. The server answers before it has read
    // the rest and closes, so the client can meet a broken pipe while it
    // still writes: then it tries again; any answer must be 413.
    let big = format!(
        r#"{{"provider":"openai","pad":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let mut answered = None;
    for _ in 0..10 {
        let result = http()
            .post(&t.url("/v1/logins"))
            .set("Authorization", &auth)
            .set("Content-Type", "application/json")
            .send_string(&big);
        match result {
            Err(ureq::Error::Status(code, _)) => {
                answered = Some(code);
                break;
            }
            Ok(r) => panic!("an oversized body was taken: {}", r.status()),
            Err(_) => continue,
        }
    }
    assert_eq!(answered, Some(413));
    for name in ["../etc", "%2e%2e", "a\u{0}b", &"a".repeat(10_000)] {
        let body = serde_json::json!({"provider": name}).to_string();
        let (code, _) = post(&body, "application/json");
        assert!(code == 400 || code == 422, "{name:?} gave {code}");
    }
    let (code, _) = send(
        http()
            .get(&t.url("/v1/connections/openai/..%2F.."))
            .set("Authorization", &auth),
        None,
    );
    assert_eq!(code, 400);
    let (code, _) = send(
        http()
            .get(&t.url("/v1/connections"))
            .set("Authorization", &auth)
            .set("X-Authsome-Profile", "../x"),
        None,
    );
    assert_eq!(code, 400);
    let (_, body) = send(
        http()
            .get(&t.url("/v1/connections"))
            .set("Authorization", &auth),
        None,
    );
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "available"));
}
