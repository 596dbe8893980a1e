//! Browsers for tests: small Python programs set as `BROWSER`. Authsome
//! hands a browser a launch file (never a URL with a secret in it); these
//! programs read the file, claim the one-time launch URL and keep the
//! cookie it sets, as a real browser does.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use std::io::Write;

use crate::fake_oauth::FakeOAuth;
use crate::TestHome;

/// Python that every test browser starts with. It defines:
/// - `ARG`: what the browser was asked to open (`sys.argv[1]`);
/// - `launch_url(arg)`: the URL a launch file leads to (or `arg` itself);
/// - `fetch(url, data=None, headers=None)`: status and body, following
///   redirects, with the cookie jar;
/// - `step(url)`: status and `Location` of one request, not following.
pub const PRELUDE: &str = r#"
import html, http.cookiejar, re, sys, urllib.error, urllib.parse, urllib.request
ARG = sys.argv[1]
JAR = http.cookiejar.CookieJar()
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
_FOLLOW = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(JAR))
_STEP = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(JAR), _NoRedirect)
def launch_url(arg):
    path = arg[len("file://"):] if arg.startswith("file://") else arg
    if path.startswith("http"):
        return path
    text = open(urllib.parse.unquote(path)).read()
    return html.unescape(re.search(r'content="0;url=([^"]+)"', text).group(1))
def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        r = _FOLLOW.open(req)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
def step(url):
    try:
        r = _STEP.open(url)
        return r.status, None
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")
"#;

/// Writes an executable browser program `name` into the test's directory:
/// the prelude, then `body`.
pub fn program(t: &TestHome, name: &str, body: &str) -> PathBuf {
    let path = t.dir().join(name);
    std::fs::write(&path, format!("#!/usr/bin/env python3\n{PRELUDE}\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A browser that loads what it is given, following every redirect.
pub fn follower(t: &TestHome) -> PathBuf {
    program(t, "browser-follow.py", "fetch(launch_url(ARG))\n")
}

/// A browser that only notes what it was asked to open, one line each, in
/// `opened.log` in the test's directory.
pub fn recorder(t: &TestHome) -> PathBuf {
    program(
        t,
        "browser-record.py",
        &format!(
            "open({:?}, 'a').write(ARG + '\\n')\n",
            t.dir().join("opened.log").display().to_string()
        ),
    )
}

/// What the recording browser was asked to open, in order, waiting up to
/// 20 s for at least `n` entries.
pub fn opened(t: &TestHome, n: usize) -> Vec<String> {
    let log = t.dir().join("opened.log");
    let read = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert!(
        crate::eventually(20, || read().len() >= n),
        "the browser was not opened {n} time(s): {:?}",
        read()
    );
    read()
}

/// The one-time URL a launch file (given as a path or `file://` URL) leads to.
pub fn launch_url(arg: &str) -> String {
    let path = arg.strip_prefix("file://").unwrap_or(arg);
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("content=\"0;url=").unwrap() + "content=\"0;url=".len();
    let end = start + text[start..].find('"').unwrap();
    text[start..end].replace("&amp;", "&")
}

/// The answer to one request that is not followed if it redirects.
#[derive(Debug)]
pub struct Step {
    /// Status.
    pub status: u16,
    /// `Location`, if any.
    pub location: Option<String>,
    /// The `name=value` part of `Set-Cookie`, if any.
    pub cookie: Option<String>,
    /// The whole `Set-Cookie` header, if any.
    pub set_cookie: Option<String>,
    /// Body.
    pub body: String,
}

/// Sends one GET (with `cookie`, if given) and does not follow a redirect.
pub fn step(url: &str, cookie: Option<&str>) -> Step {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let mut req = agent.get(url);
    if let Some(c) = cookie {
        req = req.set("Cookie", c);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let set_cookie = resp.header("set-cookie").map(str::to_string);
    Step {
        status: resp.status(),
        location: resp.header("location").map(str::to_string),
        cookie: set_cookie
            .as_deref()
            .and_then(|c| c.split(';').next())
            .map(str::to_string),
        set_cookie,
        body: resp.into_string().unwrap_or_default(),
    }
}

/// A PKCE login waiting for its callback, launched in a browser.
#[derive(Debug)]
pub struct Pending {
    pub t: TestHome,
    pub fake: FakeOAuth,
    pub cli: std::process::Child,
    /// The login's `state`.
    pub state: String,
    /// The cookie that binds the browser to the login.
    pub cookie: String,
    /// The authorization URL the launch led to.
    pub authorize: String,
    /// What the browser was asked to open.
    pub opened: String,
    /// The one-time launch URL.
    pub launch: String,
    /// The whole `Set-Cookie` header of the launch.
    pub set_cookie: String,
    /// The launch file's permission bits, read before the launch was claimed.
    pub file_mode: u32,
}

/// Starts a PKCE login in the background with the recording browser and
/// claims its launch, as the person's browser would.
pub fn pending_login() -> Pending {
    let fake = FakeOAuth::start();
    let t = TestHome::new();
    let b = recorder(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    let mut cli = t
        .cmd(&["login", "fake", "--client-id", "c", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cli.stdin
        .take()
        .unwrap()
        .write_all(b"fake-client-secret")
        .unwrap();
    let opened = opened(&t, 1).remove(0);
    let launch = launch_url(&opened);
    let file_mode = {
        use std::os::unix::fs::MetadataExt;
        let path = opened.strip_prefix("file://").unwrap_or(&opened);
        std::fs::metadata(path).unwrap().mode() & 0o777
    };
    let launched = step(&launch, None);
    assert_eq!(launched.status, 303, "{launched:?}");
    let authorize = launched.location.unwrap();
    let state = authorize
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    Pending {
        t,
        fake,
        cli,
        state,
        cookie: launched.cookie.unwrap(),
        authorize,
        opened,
        launch,
        set_cookie: launched.set_cookie.unwrap(),
        file_mode,
    }
}
