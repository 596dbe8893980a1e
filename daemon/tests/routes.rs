//! The API's routes, called in-process with tower's `oneshot` against a real
//! daemon in a temp home: the guard, error bodies, and the event stream.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use authsome_daemon::daemon::{Daemon, DaemonOptions};
use authsome_daemon::home::{Home, KeyBackendKind};
use authsome_daemon::vault::keys::MasterKeyLoader;

async fn daemon() -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    MasterKeyLoader::new(home.clone())
        .init(Some(KeyBackendKind::File))
        .unwrap();
    let mut opts = DaemonOptions::new(home);
    opts.port = Some(0);
    let (d, _listener, _) = Daemon::start(opts).await.unwrap();
    (d, dir)
}

/// A request as the CLI sends it; `token` adds the bearer token.
fn request(d: &Daemon, method: &str, path: &str, token: bool) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("127.0.0.1:{}", d.port()));
    if token {
        r = r.header("authorization", format!("Bearer {}", d.token().expose()));
    }
    r.body(Body::empty()).unwrap()
}

async fn json(resp: axum::response::Response) -> serde_json::Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn every_v1_route_refuses_a_request_without_the_token() {
    let (d, _dir) = daemon().await;
    for (method, path) in [
        ("GET", "/v1/status"),
        ("GET", "/v1/connections"),
        ("GET", "/v1/connections/openai/default"),
        ("POST", "/v1/connections/openai/default/revoke"),
        ("GET", "/v1/export"),
        ("GET", "/v1/providers"),
        ("POST", "/v1/providers"),
        ("GET", "/v1/providers/openai"),
        ("POST", "/v1/providers/openai/remove"),
        ("POST", "/v1/logins"),
        ("GET", "/v1/logins/x"),
        ("DELETE", "/v1/logins/x"),
        ("POST", "/v1/logins/x/input"),
        ("GET", "/v1/profiles"),
        ("POST", "/v1/profiles"),
        ("GET", "/v1/events"),
        ("POST", "/v1/runs"),
        ("GET", "/v1/runs"),
        ("POST", "/v1/runs/x/approve"),
        ("POST", "/v1/runs/x/deny"),
        ("POST", "/v1/runs/x/pid"),
        ("POST", "/v1/runs/x/end"),
        ("POST", "/v1/shutdown"),
    ] {
        let resp = authsome_daemon::api::router(d.services().clone())
            .oneshot(request(&d, method, path, false))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(json(resp).await["error"], "unauthorized", "{method} {path}");
    }
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_even_with_the_token() {
    let (d, _dir) = daemon().await;
    let app = authsome_daemon::api::router(d.services().clone());
    let mut r = request(&d, "GET", "/v1/status", true);
    r.headers_mut()
        .insert("host", "evil.example:7998".parse().unwrap());
    let resp = app.clone().oneshot(r).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let mut r = request(&d, "GET", "/v1/status", true);
    r.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let resp = app.clone().oneshot(r).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app
        .oneshot(request(&d, "GET", "/v1/status", true))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_used_launch_links_answer_plainly() {
    let (d, _dir) = daemon().await;
    let app = authsome_daemon::api::router(d.services().clone());
    let resp = app
        .clone()
        .oneshot(request(&d, "GET", "/v1/nothing-here", true))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(resp).await["error"], "not_found");
    let resp = app
        .oneshot(request(&d, "GET", "/bridge/launch/not-a-token", false))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn the_event_stream_carries_a_new_connection_as_it_is_stored() {
    let (d, _dir) = daemon().await;
    let resp = authsome_daemon::api::router(d.services().clone())
        .oneshot(request(&d, "GET", "/v1/events", true))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    // The subscription exists once the handler ran: log in now.
    let profile = d.home().default_profile().unwrap();
    let req: authsome_daemon::wire::LoginRequest = serde_json::from_value(serde_json::json!({
        "provider": "openai", "mode": "terminal",
        "inputs": {"api_key": "sk-routes-abcdefghijklmnopqrstuvwx"}
    }))
    .unwrap();
    d.logins().begin_login(&profile, req).await.unwrap();
    let mut text = String::new();
    while !text.contains("\n\n") || !text.contains("connection_status") {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(
        text.starts_with("event: connection_status\ndata: {"),
        "{text}"
    );
    assert!(text.contains("\"new\":\"connected\""), "{text}");
    assert!(!text.contains("sk-routes"), "no secret in an event: {text}");
}
