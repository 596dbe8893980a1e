//! The one-time bridge page a headless daemon serves when the CLI has no
//! terminal: the browser is a small program set as `BROWSER`.

use std::path::PathBuf;

use authsome_tests::{eventually, http, send, TestHome};

const KEY: &str = "sk-bridge-abcdefghijklmnopqrstuvwx";

/// A "browser" that claims the launch file it is given, loads the page,
/// reads the CSRF token and submits the form the way a browser would (with
/// an Origin header and the launch's cookie). It records what it was given,
/// the page's URL, the cookie and the answers it got.
fn browser_script(t: &TestHome, key: &str) -> PathBuf {
    let log = t.dir().join("browser.log");
    authsome_tests::browser::program(
        t,
        "browser.py",
        &format!(
            r#"log = open({log:?}, "a")
log.write("ARG " + ARG + "\n")
status, url = step(launch_url(ARG))
log.write("URL " + url + "\n")
for c in JAR:
    log.write("COOKIE %s=%s\n" % (c.name, c.value))
log.flush()
status, page = fetch(url)
csrf = re.search(r'name=csrf value="([^"]+)"', page).group(1)
origin = "/".join(url.split("/")[:3])
body = urllib.parse.urlencode({{"csrf": csrf, "api_key": {key:?}}}).encode()
status, answer = fetch(url, data=body, headers={{"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}})
log.write("POST %d %s\n" % (status, answer))
"#,
            log = log.display().to_string(),
        ),
    )
}

/// The value after `prefix` on the first line of `log` that has it.
fn logged(log: &str, prefix: &str) -> String {
    log.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {log}"))
        .to_string()
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
    // The browser's command line named the launch file, not the page.
    let url = logged(&log, "URL ");
    let arg = logged(&log, "ARG ");
    let bridge_id = url.rsplit('/').next().unwrap();
    assert!(
        arg.contains("/launch/") && arg.ends_with(".html") && !arg.contains(bridge_id),
        "{arg}"
    );
    // The page is single use: a second load finds nothing.
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
    let url = logged(&log, "URL ");
    let cookie = logged(&log, "COOKIE ");
    // Only the browser the login was launched in sees the page.
    let (code, page) = send(http().get(&url), None);
    assert_eq!(code, 403, "{page}");
    assert!(page.contains("Open the link Authsome gave you"), "{page}");
    let (code, page) = send(http().get(&url).set("Cookie", "authsome-login-x=y"), None);
    assert_eq!(code, 403, "{page}");
    let (code, page) = send(http().get(&url).set("Cookie", &cookie), None);
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
            .set("Cookie", &cookie)
            .set("Origin", &origin)
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form("wrong-token", KEY)),
    );
    assert_eq!(code, 403, "a wrong CSRF token is refused");
    let (code, _) = send(
        http()
            .post(&url)
            .set("Cookie", &cookie)
            .set("Origin", "https://evil.example")
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form(&csrf, KEY)),
    );
    assert_eq!(code, 403, "a cross-origin post is refused");
    let (code, _) = send(
        http()
            .post(&url)
            .set("Cookie", &cookie)
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
                .set("Cookie", &cookie)
                .set("Origin", &origin)
                .set("Content-Type", content_type),
            Some(&body),
        );
        assert_eq!(code, 400, "{why} is refused");
    }
    // The right form from another browser: refused, and nothing stored.
    let (code, answer) = send(
        http()
            .post(&url)
            .set("Origin", &origin)
            .set("Content-Type", "application/x-www-form-urlencoded"),
        Some(&form(&csrf, KEY)),
    );
    assert_eq!(
        code, 403,
        "a post without the launch cookie is refused: {answer}"
    );
    t.run(&["get", "openai"], None).code(3);

    let (code, body) = send(
        http()
            .post(&url)
            .set("Cookie", &cookie)
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
            .set("Cookie", &cookie)
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
