//! The one-time bridge page a headless daemon serves when the CLI has no
//! terminal: the browser is a small program set as `BROWSER`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use authsome_tests::{eventually, http, send, TestHome};

const KEY: &str = "sk-bridge-abcdefghijklmnopqrstuvwx";

/// A "browser" that loads the page, reads the CSRF token and submits the
/// form the way a browser would (with an Origin header). It records the URL
/// it was given and the answers it got.
fn browser_script(t: &TestHome, key: &str) -> PathBuf {
    let log = t.dir().join("browser.log");
    let script = t.dir().join("browser.py");
    std::fs::write(
        &script,
        format!(
            r#"#!/usr/bin/env python3
import re, sys, urllib.request, urllib.parse, urllib.error
url = sys.argv[1]
log = open({log:?}, "a")
log.write("URL " + url + "\n")
page = urllib.request.urlopen(url).read().decode()
csrf = re.search(r'name=csrf value="([^"]+)"', page).group(1)
origin = "/".join(url.split("/")[:3])
body = urllib.parse.urlencode({{"csrf": csrf, "api_key": {key:?}}}).encode()
req = urllib.request.Request(url, data=body, headers={{"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}})
try:
    resp = urllib.request.urlopen(req)
    log.write("POST %d %s\n" % (resp.status, resp.read().decode()))
except urllib.error.HTTPError as e:
    log.write("POST %d %s\n" % (e.code, e.read().decode()))
"#,
            log = log.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn login_without_a_terminal_completes_through_the_bridge_page() {
    let t = TestHome::new();
    let script = browser_script(&t, KEY);
    let t = t.env("BROWSER", script.to_str().unwrap());
    let out = t.run(&["login", "openai"], None).ok();
    assert!(
        out.stdout
            .contains("Successfully logged in to openai (default)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("/bridge/"),
        "the URL is printed: {}",
        out.stderr
    );
    let log_path = t.dir().join("browser.log");
    // The browser runs on its own; wait for it to record the answer.
    eventually(10, || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("POST")
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("POST 200") && log.contains("is connected"),
        "{log}"
    );
    assert_eq!(t.secret("openai", "api_key"), KEY);
    // The page is single use: a second load finds nothing.
    let url = log
        .lines()
        .find_map(|l| l.strip_prefix("URL "))
        .unwrap()
        .to_string();
    let (code, body) = send(http().get(&url), None);
    assert_eq!(code, 404);
    assert!(body.contains("expired"), "{body}");
}

#[test]
fn a_rejected_key_on_the_bridge_page_shows_the_hint_and_keeps_the_page() {
    let t = TestHome::new();
    let script = browser_script(&t, "not-an-openai-key");
    let t = t.env("BROWSER", script.to_str().unwrap());
    // The login waits until the session expires; run it in the background.
    let mut child = t
        .cmd(&["login", "openai"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log_path = t.dir().join("browser.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("POST")
    {
        assert!(std::time::Instant::now() < deadline, "browser never posted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("POST 400") && log.contains("start with sk-"),
        "{log}"
    );
    let url = log
        .lines()
        .find_map(|l| l.strip_prefix("URL "))
        .unwrap()
        .to_string();
    let (code, page) = send(http().get(&url), None);
    assert_eq!(code, 200, "the page stays open after a rejected value");
    let csrf = page
        .split("name=csrf value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let origin = format!("http://127.0.0.1:{}", t.port);
    let form = |csrf: &str, key: &str| format!("csrf={csrf}&api_key={key}");

    let (code, _) = send(
        http()
            .post(&url)
            .set("Origin", &origin)
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form("wrong-token", KEY)),
    );
    assert_eq!(code, 403, "a wrong CSRF token is refused");
    let (code, _) = send(
        http()
            .post(&url)
            .set("Origin", "https://evil.example")
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form(&csrf, KEY)),
    );
    assert_eq!(code, 403, "a cross-origin post is refused");
    let (code, _) = send(
        http()
            .post(&url)
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form(&csrf, KEY)),
    );
    assert_eq!(code, 403, "a post without Origin or Referer is refused");
    for (body, content_type, why) in [
        (
            format!("csrf=wrong&csrf={csrf}&api_key={KEY}"),
            "application/x-www-form-urlencoded",
            "a repeated CSRF field",
        ),
        (
            format!("csrf={csrf}&api_key={KEY}&api_key=other"),
            "application/x-www-form-urlencoded",
            "a repeated value field",
        ),
        (form(&csrf, KEY), "text/plain", "a body that is not a form"),
        (
            format!("csrf={csrf}&api_key={}", "k".repeat(20_000)),
            "application/x-www-form-urlencoded",
            "an oversized value",
        ),
    ] {
        let (code, _) = send(
            http()
                .post(&url)
                .set("Origin", &origin)
                .set("Content-Type", content_type),
            Some(&body),
        );
        assert_eq!(code, 400, "{why} is refused");
    }
    t.run(&["get", "openai"], None).code(3);

    let (code, body) = send(
        http()
            .post(&url)
            .set("Origin", &origin)
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form(&csrf, KEY)),
    );
    assert_eq!(code, 200, "{body}");
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(t.field("openai", "status"), "connected");
    let (code, _) = send(
        http()
            .post(&url)
            .set("Origin", &origin)
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form(&csrf, KEY)),
    );
    assert_eq!(code, 404, "a used page is gone");
}

#[test]
fn unknown_bridge_ids_get_the_expired_page() {
    let t = TestHome::new();
    t.run(&["daemon", "start"], None).ok();
    let (code, body) = send(http().get(&t.url("/bridge/not-a-session")), None);
    assert_eq!(code, 404);
    assert!(body.contains("expired"));
}
