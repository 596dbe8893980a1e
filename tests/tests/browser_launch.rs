//! Nothing secret on a browser's command line. Every user of the machine can
//! read a browser's argv, so Authsome opens a private launch file that leads
//! to a one-time URL; the login then answers only the browser that claimed
//! it. The browser here is a program set as `BROWSER` that records its
//! arguments, and the test plays the person's browser.

use std::io::Read;

use authsome_tests::browser::{self, pending_login, Pending};
use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::TestHome;

/// The path a browser argument names (a path or a `file://` URL).
fn path_of(arg: &str) -> std::path::PathBuf {
    arg.strip_prefix("file://").unwrap_or(arg).into()
}

#[test]
fn an_oauth_login_hands_the_browser_only_a_private_launch_file_that_works_once() {
    let Pending {
        t,
        fake,
        mut cli,
        state,
        cookie,
        authorize,
        opened,
        launch,
        set_cookie,
        file_mode,
    } = pending_login();
    // The command line names a file in the home, nothing more.
    let file = path_of(&opened);
    assert_eq!(file.parent().unwrap(), t.home().join("launch"), "{opened}");
    assert_eq!(file_mode, 0o600);
    let token = launch.rsplit('/').next().unwrap();
    let challenge = authorize
        .split("code_challenge=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    for secret in [state.as_str(), challenge, token, "authorize"] {
        assert!(!opened.contains(secret), "{opened} holds {secret}");
    }
    // Claiming the launch led to the provider and bound the browser.
    assert!(authorize.starts_with(&format!("{}/authorize?", fake.base)));
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(!file.exists(), "a claimed launch file is removed");
    let again = browser::step(&launch, None);
    assert_eq!(again.status, 404, "{again:?}");
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(again.location.is_none() && again.cookie.is_none());
    // The person's browser completes the login.
    let callback = browser::step(&authorize, None).location.unwrap();
    let answer = browser::step(&callback, Some(&cookie));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(cli.wait().unwrap().code(), Some(0));
    let mut stderr = String::new();
    cli.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains(&launch),
        "the launch URL is printed: {stderr}"
    );
    assert_eq!(t.secret("fake", "access_token"), fake.state().issued[0]);
}

#[test]
fn a_device_code_reaches_the_browser_only_through_the_launch_file() {
    let fake = FakeOAuth::start();
    fake.state().switches.device_pending_polls = 1000;
    let t = TestHome::new();
    let b = browser::recorder(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    let mut cli = t
        .cmd(&[
            "login",
            "fake",
            "--client-id",
            "c",
            "--stdin",
            "--flow",
            "device_code",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    cli.stdin
        .take()
        .unwrap()
        .write_all(b"fake-client-secret")
        .unwrap();
    let opened = browser::opened(&t, 1).remove(0);
    assert!(!opened.contains("WDJB-MJHT"), "{opened}");
    assert_eq!(path_of(&opened).parent().unwrap(), t.home().join("launch"));
    let launched = browser::step(&browser::launch_url(&opened), None);
    assert_eq!(launched.status, 303, "{launched:?}");
    let page = launched.location.unwrap();
    assert!(
        page.starts_with("https://fake.example/device") && page.contains("WDJB-MJHT"),
        "{page}"
    );
    assert!(
        launched.cookie.is_none(),
        "a device login ends at the provider: no binding"
    );
    let _ = cli.kill();
    let _ = cli.wait();
}
