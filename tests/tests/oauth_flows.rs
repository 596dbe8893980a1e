//! OAuth logins, refresh and revoke through the real CLI and daemon against
//! the fake authorization server. The browser is a small program set as
//! `BROWSER` that follows the authorization redirect to the daemon's callback.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use authsome_tests::fake_oauth::{DeviceOutcome, FakeOAuth};
use authsome_tests::{all_files, contains_bytes, eventually, TestHome};

const SECRET: &str = "fake-client-secret";

/// Writes a browser program. Modes: `follow` (claim the launch, authorize,
/// then load the callback), `tamper` (change `state` first), `replay` (load
/// the callback twice), `record` (only note what it was given).
fn browser(t: &TestHome, mode: &str) -> PathBuf {
    let log = t.dir().join("browser.log");
    authsome_tests::browser::program(
        t,
        &format!("browser-{mode}.py"),
        &format!(
            r#"MODE = {mode:?}
log = open({log:?}, "a")
log.write("ARG " + ARG + "\n")
url = launch_url(ARG)
log.write("URL " + url + "\n"); log.flush()
if MODE == "record":
    sys.exit(0)
status, target = step(url)
log.write("LAUNCH %d %s\n" % (status, target)); log.flush()
if "/bridge/" in target:
    status, page = fetch(target)
    log.write("PAGE " + page + "\n")
    csrf = re.search(r'name=csrf value="([^"]+)"', page).group(1)
    origin = "/".join(target.split("/")[:3])
    body = urllib.parse.urlencode({{"csrf": csrf, "client_id": "bridge-client", "client_secret": "fake-client-secret"}}).encode()
    status, _ = fetch(target, data=body, headers={{"Origin": origin}})
    log.write("FORM %d\n" % status); log.flush()
    sys.exit(0)
status, loc = step(target)
if loc is None:
    sys.exit("no redirect")
if MODE == "tamper":
    loc = re.sub(r"state=[^&]+", "state=forged-state", loc)
status, body = fetch(loc)
log.write("CALLBACK %d %s\n" % (status, body)); log.flush()
if MODE == "replay":
    status, body = fetch(loc)
    log.write("REPLAY %d %s\n" % (status, body)); log.flush()
"#,
            log = log.display().to_string(),
        ),
    )
}

fn browser_log(t: &TestHome) -> String {
    std::fs::read_to_string(t.dir().join("browser.log")).unwrap_or_default()
}

/// A home with the fake server registered as provider `fake` and `mode` as its browser.
fn setup(flow: &str, mode: &str) -> (TestHome, FakeOAuth) {
    let fake = FakeOAuth::start();
    let t = TestHome::new();
    let b = browser(&t, mode);
    let t = t.env("BROWSER", b.to_str().unwrap());
    register(&t, &fake.provider("fake", flow));
    (t, fake)
}

fn register(t: &TestHome, def: &serde_json::Value) {
    let file = t.dir().join("provider.json");
    std::fs::write(&file, def.to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap(), "--force"], None)
        .ok();
}

fn login(t: &TestHome, extra: &[&str]) -> authsome_tests::Run {
    let mut args = vec!["login", "fake", "--client-id", "test-client", "--stdin"];
    args.extend_from_slice(extra);
    t.run(&args, Some(SECRET))
}

#[test]
fn pkce_login_stores_tokens_and_reuses_the_client() {
    let (t, fake) = setup("pkce", "follow");
    let out = login(&t, &[]).ok();
    assert!(
        out.stdout
            .contains("Successfully logged in to fake (default)"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains(&format!("http://127.0.0.1:{}/bridge/launch/", t.port)),
        "the one-time launch URL is printed: {}",
        out.stderr
    );
    assert!(
        eventually(10, || browser_log(&t).contains("CALLBACK 200")),
        "{}",
        browser_log(&t)
    );
    {
        let st = fake.state();
        let q = &st.authorize_requests[0];
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(
            q["redirect_uri"],
            format!("http://127.0.0.1:{}/auth/callback/oauth", t.port)
        );
        assert_eq!(q["scope"], "read write");
        assert_eq!(t.secret("fake", "access_token"), st.issued[0]);
        assert_eq!(st.client_auth_seen, vec!["body"]);
    }
    assert_eq!(t.field("fake", "status"), "connected");
    assert_eq!(t.field("fake", "scopes"), "read,write");
    assert!(!t.field("fake", "expires_at").is_empty());
    assert_eq!(
        t.run(&["export", "fake"], None).ok().stdout.trim(),
        format!("FAKE_TOKEN={}", fake.state().issued[0])
    );

    // A later login needs no client input: the stored client is reused.
    t.run(&["login", "fake"], None).code(6);
    let again = t.run(&["login", "fake", "--force"], None).ok();
    assert!(again.stdout.contains("Successfully logged in"), "{again:?}");
    assert_eq!(fake.state().authorize_requests.len(), 2);

    // The client secret and tokens appear in no file of the home.
    t.run(&["daemon", "stop"], None).ok();
    let st = fake.state();
    for f in all_files(&t.home()) {
        let bytes = std::fs::read(&f).unwrap();
        for needle in [SECRET, &st.issued[0], &st.issued[1]] {
            assert!(
                !contains_bytes(&bytes, needle.as_bytes()),
                "{} holds a secret",
                f.display()
            );
        }
    }
}

#[test]
fn basic_client_authentication_is_used_when_the_provider_asks() {
    let fake = FakeOAuth::start();
    let t = TestHome::new();
    let b = browser(&t, "follow");
    let t = t.env("BROWSER", b.to_str().unwrap());
    let mut def = fake.provider("fake", "pkce");
    def["oauth"]["client_auth"] = "basic".into();
    register(&t, &def);
    login(&t, &[]).ok();
    assert_eq!(fake.state().client_auth_seen, vec!["basic"]);
}

#[test]
fn a_forged_state_fails_the_login_with_the_state_error() {
    let (t, _fake) = setup("pkce", "tamper");
    let out = login(&t, &[]).code(1);
    assert!(
        out.stderr
            .contains("Error: OAuth state parameter does not match"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("authsome login fake --force"),
        "{}",
        out.stderr
    );
    assert!(
        eventually(10, || browser_log(&t).contains("CALLBACK 400")),
        "{}",
        browser_log(&t)
    );
    t.run(&["get", "fake"], None).code(3);
}

#[test]
fn a_replayed_callback_is_refused() {
    let (t, fake) = setup("pkce", "replay");
    login(&t, &[]).ok();
    assert!(eventually(10, || browser_log(&t).contains("REPLAY")));
    let log = browser_log(&t);
    assert!(
        log.contains("CALLBACK 200") && log.contains("REPLAY 400") && log.contains("already used"),
        "{log}"
    );
    assert_eq!(fake.state().issued.len(), 1, "the code was exchanged once");
}

#[test]
fn denied_consent_and_rejected_exchange_are_reported_as_such() {
    let (t, fake) = setup("pkce", "follow");
    fake.state().switches.deny = true;
    let out = login(&t, &[]).code(1);
    assert!(out.stderr.contains("access_denied"), "{}", out.stderr);
    fake.state().switches.deny = false;
    fake.state().switches.exchange_error = Some("invalid_client".into());
    let out = login(&t, &[]).code(1);
    assert!(
        out.stderr
            .contains("Error: token exchange failed: invalid_client"),
        "{}",
        out.stderr
    );
    let log = t.run(&["log", "-n", "20", "--json"], None).ok().stdout;
    assert!(log.contains("login_failed"), "{log}");
}

#[test]
fn device_code_login_polls_and_slows_down() {
    let (t, fake) = setup("pkce", "record");
    {
        let mut st = fake.state();
        st.switches.device_slow_down_once = true;
        st.switches.device_pending_polls = 2;
    }
    let started = Instant::now();
    let out = login(&t, &["--flow", "device_code"]).ok();
    let took = started.elapsed();
    assert!(
        out.stderr.contains("WDJB-MJHT") && out.stderr.contains("https://fake.example/device"),
        "{}",
        out.stderr
    );
    assert!(out
        .stdout
        .contains("Successfully logged in to fake (default)"));
    // The first poll goes at once; slow_down makes the 1 s interval 6 s:
    // polls at 0, 6 and 12 s.
    assert!(
        took >= Duration::from_secs(12),
        "slow_down was not obeyed: {took:?}"
    );
    assert_eq!(fake.state().device_polls_total, 3);
    assert_eq!(t.secret("fake", "access_token"), fake.state().issued[0]);
}

/// Provider quirks, each as the provider that has it sends it, through a
/// real login: the answer is read, or refused with the provider's error.
#[test]
fn provider_quirks_in_token_answers_are_read_as_the_provider_means_them() {
    let (t, fake) = setup("pkce", "follow");
    // GitHub without `Accept: application/json` answers form-encoded, and
    // with comma-separated scopes.
    fake.state().switches.exchange_raw = Some((
        200,
        "access_token=gho_formEncoded123&scope=repo%2Cread%3Auser&token_type=bearer".into(),
    ));
    login(&t, &[]).ok();
    assert_eq!(t.secret("fake", "access_token"), "gho_formEncoded123");
    let view: serde_json::Value =
        serde_json::from_str(&t.run(&["get", "fake", "--json"], None).ok().stdout).unwrap();
    assert_eq!(
        view["scopes"],
        serde_json::json!(["repo", "read:user"]),
        "{view}"
    );
    // GitHub sends a failed exchange with HTTP 200 and an `error`.
    fake.state().switches.exchange_raw = Some((
        200,
        r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#.into(),
    ));
    let out = login(&t, &["--force"]).code(1);
    assert!(
        out.stderr.contains("bad_verification_code"),
        "{}",
        out.stderr
    );
    assert_eq!(t.secret("fake", "access_token"), "gho_formEncoded123");
    // Azure AD v1 sends `expires_in` as a string; others leave out
    // `token_type` (the hostile-input test has more shapes).
    fake.state().switches.exchange_raw = Some((
        200,
        r#"{"access_token":"azure-at","expires_in":"3599","ext_expires_in":"3599"}"#.into(),
    ));
    let before = chrono_now();
    login(&t, &["--force"]).ok();
    let expires = t
        .run(&["get", "fake", "--field", "expires_at"], None)
        .ok()
        .stdout;
    // RFC 3339, read by date(1).
    let secs = std::process::Command::new("date")
        .args(["-d", expires.trim(), "+%s"])
        .output()
        .unwrap();
    let at: i64 = String::from_utf8_lossy(&secs.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("expires_at {expires:?}"));
    assert!(
        (before + 3590..=before + 3610).contains(&at),
        "expires_in \"3599\" gave {expires}"
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Postiz wants device token requests as a JSON object.
#[test]
fn a_provider_that_wants_json_device_token_requests_gets_json() {
    let (t, fake) = setup("pkce", "record");
    let mut def = fake.provider("fake", "pkce");
    def["oauth"]["device_token_format"] = "json".into();
    register(&t, &def);
    fake.state().switches.device_pending_polls = 1;
    login(&t, &["--flow", "device_code"]).ok();
    let st = fake.state();
    assert_eq!(t.secret("fake", "access_token"), st.issued[0]);
    let polls: Vec<&String> = st
        .token_content_types
        .iter()
        .filter(|c| !c.is_empty())
        .collect();
    assert!(polls.len() >= 2, "{polls:?}");
    assert!(
        polls.iter().all(|c| c.starts_with("application/json")),
        "{polls:?}"
    );
}

#[test]
fn device_code_denial_and_expiry_stop_with_a_clear_message() {
    let (t, fake) = setup("pkce", "record");
    fake.state().switches.device_pending_polls = 0;
    fake.state().switches.device_outcome = DeviceOutcome::Deny;
    let out = login(&t, &["--flow", "device_code"]).code(1);
    assert!(out.stderr.contains("access_denied"), "{}", out.stderr);
    fake.state().switches.device_outcome = DeviceOutcome::Expire;
    let out = login(&t, &["--flow", "device_code"]).code(1);
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
}

#[test]
fn a_cancelled_device_code_login_stops_polling_the_provider() {
    let (t, fake) = setup("pkce", "record");
    fake.state().switches.device_pending_polls = 1000;
    t.run(&["daemon", "start"], None).ok();
    let auth = format!("Bearer {}", t.token());
    let begun: serde_json::Value = authsome_tests::http()
        .post(&t.url("/v1/logins"))
        .set("Authorization", &auth)
        .send_json(serde_json::json!({
            "provider": "fake", "flow": "device_code", "mode": "terminal",
            "client_id": "c", "inputs": {"client_secret": SECRET}
        }))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(begun["state"], "device_code", "{begun}");
    assert!(eventually(10, || fake.state().device_polls_total >= 1));
    let id = begun["id"].as_str().unwrap();
    authsome_tests::http()
        .delete(&t.url(&format!("/v1/logins/{id}")))
        .set("Authorization", &auth)
        .call()
        .unwrap();
    // A poll already on its way may still land.
    std::thread::sleep(Duration::from_millis(500));
    let polls = fake.state().device_polls_total;
    // Four of the provider's 1 s intervals.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        fake.state().device_polls_total,
        polls,
        "the provider is still polled for a cancelled login"
    );
}

#[test]
fn dcr_registers_a_client_once_and_reuses_it() {
    let (t, fake) = setup("dcr_pkce", "follow");
    fake.state().switches.client_secret = None;
    let out = t.run(&["login", "fake"], None).ok();
    assert!(out.stdout.contains("Successfully logged in"), "{out:?}");
    {
        let st = fake.state();
        assert_eq!(st.registrations.len(), 1);
        assert_eq!(
            st.registrations[0]["redirect_uris"][0],
            format!("http://127.0.0.1:{}/auth/callback/oauth", t.port)
        );
        assert!(st.authorize_requests[0]["client_id"].starts_with("dcr-client"));
    }
    t.run(&["login", "fake", "--force"], None).ok();
    assert_eq!(
        fake.state().registrations.len(),
        1,
        "the registered client is reused"
    );
    let inspect = t.run(&["inspect", "fake"], None).ok().stdout;
    assert!(
        inspect.contains("supports_dcr              true"),
        "{inspect}"
    );
}

#[test]
fn dcr_finds_the_authorization_server_through_the_protected_resource_document() {
    let (t, fake) = setup("dcr_pkce", "follow");
    let mut def = fake.provider("fake", "dcr_pkce");
    def["oauth"]["resource"] = serde_json::json!(format!("{}/mcp", fake.base));
    register(&t, &def);
    {
        let mut st = fake.state();
        st.switches.client_secret = None;
        st.switches.metadata_only_via_resource = true;
    }
    let out = t.run(&["login", "fake"], None).ok();
    assert!(out.stdout.contains("Successfully logged in"), "{out:?}");
    let st = fake.state();
    assert_eq!(st.protected_resource_requests, 1);
    assert_eq!(
        st.registrations.len(),
        1,
        "registered at the discovered server"
    );
    assert_eq!(
        st.authorize_requests[0].get("resource"),
        Some(&format!("{}/mcp", fake.base)),
        "RFC 8707 resource indicator"
    );
}

#[test]
fn dcr_without_any_metadata_says_so() {
    let (t, fake) = setup("dcr_pkce", "follow");
    fake.state().switches.metadata_only_via_resource = true;
    let out = t.run(&["login", "fake"], None);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("no authorization server metadata was found"),
        "{}",
        out.stderr
    );
}

#[test]
fn refresh_rotates_the_refresh_token_before_handing_out_the_new_access_token() {
    let (t, fake) = setup("pkce", "follow");
    // Due at 3 s (half the lifetime): the reads below have 3 s, and the
    // sleep ends past due.
    short_lived(&fake, 6);
    login(&t, &[]).ok();
    let (first_at, first_rt) = (
        t.secret("fake", "access_token"),
        t.secret("fake", "refresh_token"),
    );
    std::thread::sleep(Duration::from_millis(3300));
    let new_at = t.secret("fake", "access_token");
    assert_ne!(
        new_at, first_at,
        "a token inside its window is refreshed on read"
    );
    let new_rt = t.secret("fake", "refresh_token");
    assert_ne!(new_rt, first_rt, "the rotated refresh token was stored");
    assert_eq!(fake.state().refresh_tokens.get(&first_rt), Some(&false));
    assert_eq!(t.field("fake", "status"), "connected");
    let log = t.run(&["log", "-n", "50", "--json"], None).ok().stdout;
    assert!(log.contains("\"event\":\"refresh\""), "{log}");
}

/// Holds SQLite's write lock on the default profile's store (from another
/// process, python3's sqlite3) until dropped: the daemon's next write waits
/// (its busy timeout is 10 s).
struct StoreWriteLock(std::process::Child);

impl StoreWriteLock {
    fn take(t: &TestHome) -> StoreWriteLock {
        use std::io::BufRead;
        let db = t.home().join("profiles/default/store.db");
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n\
                 c.execute('BEGIN IMMEDIATE')\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n\
                 c.execute('ROLLBACK')\n",
            )
            .arg(&db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        StoreWriteLock(child)
    }
}

impl Drop for StoreWriteLock {
    fn drop(&mut self) {
        // End of input: the holder rolls back and the lock is released.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn a_new_access_token_is_handed_out_only_after_its_rotated_refresh_token_is_committed() {
    let (t, fake) = setup("pkce", "follow");
    short_lived(&fake, 2);
    fake.state().switches.refresh_status = Some(503);
    login(&t, &[]).ok();
    let old_rt = fake.state().refresh_tokens.keys().next().unwrap().clone();
    // The scheduler's attempt at half the lifetime fails: it backs off for
    // 5 s, while a read of the then expired token may retry after 1 s.
    assert!(eventually(10, || fake.state().refresh_calls >= 1));
    {
        let mut st = fake.state();
        st.switches.refresh_status = None;
        st.switches.hold_refresh_answers = true;
    }
    std::thread::sleep(Duration::from_millis(1500));
    let sent = fake.state().refresh_answers_sent;
    let mut reader = t
        .cmd(&["get", "fake", "--field", "access_token", "--show-secret"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The refresh is out: the provider has rotated and holds its answer.
    assert!(eventually(10, || fake.state().refresh_tokens.get(&old_rt)
        == Some(&false)));
    let new_at = fake.state().issued.last().unwrap().clone();
    let lock = StoreWriteLock::take(&t);
    fake.state().switches.hold_refresh_answers = false;
    assert!(eventually(10, || fake.state().refresh_answers_sent > sent));
    // The daemon has the new pair and cannot store it: nobody may have the
    // new access token yet.
    std::thread::sleep(Duration::from_secs(3));
    if reader.try_wait().unwrap().is_some() {
        let out = reader.wait_with_output().unwrap();
        panic!(
            "the reader was answered while the rotated refresh token could not be stored: {out:?} (new {new_at})"
        );
    }
    drop(lock);
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), new_at);
    let rt = t.secret("fake", "refresh_token");
    assert_ne!(rt, old_rt);
    assert_eq!(fake.state().refresh_tokens.get(&rt), Some(&true));
}

#[test]
fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let (t, fake) = setup("pkce", "follow");
    short_lived(&fake, 6);
    fake.state().switches.rotate = false;
    login(&t, &[]).ok();
    let rt = t.secret("fake", "refresh_token");
    std::thread::sleep(Duration::from_millis(3300));
    t.secret("fake", "access_token");
    assert_eq!(t.secret("fake", "refresh_token"), rt);
}

/// Tokens from the login live `secs` (due for refresh at half that); tokens
/// from a refresh live an hour. Set before the login, so nothing races a flip.
fn short_lived(fake: &FakeOAuth, secs: i64) {
    let mut st = fake.state();
    st.switches.expires_in = Some(secs);
    st.switches.refresh_expires_in = Some(3600);
}

fn notifications(t: &TestHome) -> usize {
    let log = std::fs::read_to_string(t.home().join("logs/authsome.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains("notification:")).count()
}

#[test]
fn a_rejected_refresh_marks_the_connection_invalid_and_notifies_once() {
    let (t, fake) = setup("pkce", "follow");
    short_lived(&fake, 6);
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    login(&t, &[]).ok();
    std::thread::sleep(Duration::from_millis(3300));
    let out = t
        .run(
            &["get", "fake", "--field", "access_token", "--show-secret"],
            None,
        )
        .code(5);
    assert!(
        out.stderr
            .contains("Error: refresh failed for fake (default): invalid_grant"),
        "{}",
        out.stderr
    );
    assert_eq!(t.field("fake", "status"), "invalid");
    let calls = fake.state().refresh_calls;
    // Reads keep failing, even before the old token's expiry, without calling the provider again.
    t.run(&["export", "fake"], None).code(5);
    t.run(&["get", "fake", "--show-secret"], None).code(5);
    // Three scheduler ticks and more.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        fake.state().refresh_calls,
        calls,
        "an invalid connection is not refreshed again"
    );
    assert_eq!(notifications(&t), 1, "exactly one notification");
    let log = t.run(&["log", "-n", "50", "--json"], None).ok().stdout;
    assert!(log.contains("refresh_failed"), "{log}");
}

#[test]
fn a_provider_outage_serves_the_old_token_then_expires_then_recovers() {
    let (t, fake) = setup("pkce", "follow");
    // Due at 6 s, expired at 12 s: the read after 6.5 s has 5.5 s to land
    // before expiry; the one after 12.5 s is surely past it.
    short_lived(&fake, 12);
    fake.state().switches.refresh_status = Some(503);
    login(&t, &[]).ok();
    let first = t.secret("fake", "access_token");
    std::thread::sleep(Duration::from_millis(6500));
    assert_eq!(
        t.secret("fake", "access_token"),
        first,
        "the old token is served while valid"
    );
    assert_eq!(t.field("fake", "status"), "connected");
    std::thread::sleep(Duration::from_millis(6000));
    let out = t
        .run(
            &["get", "fake", "--field", "access_token", "--show-secret"],
            None,
        )
        .code(5);
    assert!(
        out.stderr.contains("refresh failed for fake (default)"),
        "{}",
        out.stderr
    );
    assert!(eventually(5, || t.field("fake", "status") == "expired"));
    assert_eq!(notifications(&t), 1);
    // An agent retrying in a loop: the provider is asked at most once a second.
    let (calls, started) = (fake.state().refresh_calls, Instant::now());
    for _ in 0..20 {
        t.run(
            &["get", "fake", "--field", "access_token", "--show-secret"],
            None,
        )
        .code(5);
    }
    let allowed = started.elapsed().as_secs() as u32 + 1;
    assert!(
        fake.state().refresh_calls - calls <= allowed,
        "{} provider calls for 20 reads in {:?}",
        fake.state().refresh_calls - calls,
        started.elapsed()
    );
    fake.state().switches.refresh_status = None;
    let mut recovered = String::new();
    assert!(eventually(5, || {
        let out = t.run(
            &["get", "fake", "--field", "access_token", "--show-secret"],
            None,
        );
        recovered = out.stdout;
        out.code == 0
    }));
    assert_ne!(recovered.trim(), first);
    assert_eq!(t.field("fake", "status"), "connected");
    assert_eq!(notifications(&t), 2, "one notification for the recovery");
}

#[test]
fn revoke_calls_the_revocation_endpoint_and_forgets_the_client() {
    let (t, fake) = setup("pkce", "follow");
    login(&t, &[]).ok();
    let (at, rt) = (
        t.secret("fake", "access_token"),
        t.secret("fake", "refresh_token"),
    );
    let out = t.run(&["revoke", "fake"], None).ok();
    assert!(
        out.stdout.contains("client credentials forgotten"),
        "{}",
        out.stdout
    );
    assert_eq!(
        fake.state().revoked,
        vec![
            ("refresh_token".to_string(), rt),
            ("access_token".to_string(), at)
        ],
        "refresh token first, then the access token"
    );
    t.run(&["get", "fake"], None).code(3);
    assert!(t
        .run(&["inspect", "fake"], None)
        .ok()
        .stdout
        .contains("client_configured         false"));
}

#[test]
fn revoke_still_succeeds_locally_when_the_provider_is_unreachable() {
    let (t, fake) = setup("pkce", "follow");
    login(&t, &[]).ok();
    let mut def = fake.provider("fake", "pkce");
    def["oauth"]["revocation_url"] =
        format!("http://127.0.0.1:{}/revoke", authsome_tests::free_port()).into();
    register(&t, &def);
    let out = t.run(&["revoke", "fake"], None).ok();
    assert!(
        out.stderr.contains("Warning:") && out.stderr.contains("could not reach"),
        "{}",
        out.stderr
    );
    t.run(&["get", "fake"], None).code(3);
}

#[test]
fn base_url_fills_the_templates_and_is_kept_for_refresh() {
    let fake = FakeOAuth::start();
    let t = TestHome::new();
    let b = browser(&t, "follow");
    let t = t.env("BROWSER", b.to_str().unwrap());
    let mut def = fake.provider("fake", "pkce");
    for (k, path) in [
        ("authorization_url", "/authorize"),
        ("token_url", "/token"),
        ("revocation_url", "/revoke"),
        ("device_authorization_url", "/device/code"),
    ] {
        def["oauth"][k] = format!("{{base_url}}{path}").into();
    }
    register(&t, &def);
    let out = t
        .run(
            &["login", "fake", "--client-id", "c", "--stdin"],
            Some(SECRET),
        )
        .code(2);
    assert!(out.stderr.contains("--base-url"), "{}", out.stderr);
    short_lived(&fake, 6);
    login(&t, &["--base-url", &fake.base]).ok();
    assert_eq!(t.field("fake", "base_url"), fake.base);
    std::thread::sleep(Duration::from_millis(3300));
    t.secret("fake", "access_token");
    assert_eq!(
        fake.state().refresh_calls,
        1,
        "the refresh went to the stored base URL"
    );
}

#[test]
fn requested_scopes_are_sent_and_stored() {
    let (t, fake) = setup("pkce", "follow");
    login(&t, &["--scopes", "repo,read:user"]).ok();
    assert_eq!(
        fake.state().authorize_requests[0]["scope"],
        "repo read:user"
    );
    assert_eq!(t.field("fake", "scopes"), "repo,read:user");
}

#[test]
fn the_client_secret_never_reaches_argv_logs_or_the_audit_log() {
    let (t, _fake) = setup("pkce", "follow");
    let out = t
        .run(
            &[
                "--verbose",
                "login",
                "fake",
                "--client-id",
                "test-client",
                "--stdin",
            ],
            Some(SECRET),
        )
        .ok();
    assert!(!out.stderr.contains(SECRET) && !out.stdout.contains(SECRET));
    // The secret is refused as an argument: there is no flag for it.
    t.run(&["login", "fake", "--client-secret", SECRET], None)
        .code(2);
    for f in ["audit.log", "logs/authsome.log"] {
        let text = std::fs::read_to_string(t.home().join(f)).unwrap();
        assert!(!text.contains(SECRET), "{f} holds the client secret");
    }
}

#[test]
fn a_refresh_storm_makes_exactly_one_token_call() {
    let (t, fake) = setup("pkce", "follow");
    short_lived(&fake, 6);
    // The refresh's answer is held until the readers have piled up.
    fake.state().switches.hold_refresh_answers = true;
    login(&t, &[]).ok();
    std::thread::sleep(Duration::from_millis(3300));
    let token = t.token();
    let url = t.url("/v1/connections/fake/default?show_secret=true");
    let started = Instant::now();
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                let v: serde_json::Value = agent
                    .get(&url)
                    .set("Authorization", &format!("Bearer {token}"))
                    .call()
                    .unwrap()
                    .into_json()
                    .unwrap();
                v["secrets"]["access_token"].as_str().unwrap().to_string()
            })
        })
        .collect();
    assert!(eventually(10, || fake.state().refresh_calls >= 1));
    std::thread::sleep(Duration::from_secs(1));
    fake.state().switches.hold_refresh_answers = false;
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let took = started.elapsed();
    let st = fake.state();
    assert_eq!(
        st.refresh_calls, 1,
        "one token-endpoint call for 1000 readers"
    );
    let newest = st.issued.last().unwrap();
    assert!(
        tokens.iter().all(|t| t == newest),
        "every reader got the new token"
    );
    eprintln!(
        "refresh storm: 1000 concurrent reads, {} token call(s), {took:?}",
        st.refresh_calls
    );
}

#[test]
fn without_a_terminal_the_client_credentials_come_from_the_bridge_page() {
    let (t, fake) = setup("pkce", "follow");
    let out = t.run(&["login", "fake"], None).ok();
    assert!(
        out.stdout
            .contains("Successfully logged in to fake (default)"),
        "{out:?}"
    );
    // The browser is its own process: wait for it to record the callback's answer.
    eventually(10, || browser_log(&t).contains("CALLBACK"));
    let log = browser_log(&t);
    assert!(
        log.contains("FORM 200") && log.contains("CALLBACK 200"),
        "{log}"
    );
    assert!(
        log.contains(&format!("http://127.0.0.1:{}/auth/callback/oauth", t.port)),
        "the page shows the callback URL: {log}"
    );
    assert!(
        log.contains(&format!("{}/docs", fake.base)),
        "the page links the provider's docs"
    );
    assert_eq!(
        fake.state().authorize_requests[0]["client_id"],
        "bridge-client"
    );
}

/// Logs in, then SIGKILLs the daemon while its scheduled refresh is out: the
/// provider has issued a new pair and retired the old refresh token, but the
/// answer has not arrived. Returns the retired refresh token.
fn kill_mid_refresh(t: &TestHome, fake: &FakeOAuth, reuse: Option<Duration>) -> String {
    short_lived(fake, 2);
    {
        let mut st = fake.state();
        st.switches.reuse_interval = reuse;
        // The refresh's answer waits until the daemon is dead.
        st.switches.hold_refresh_answers = true;
    }
    login(t, &[]).ok();
    let old_rt = {
        let st = fake.state();
        let issued: Vec<&String> = st.refresh_tokens.keys().collect();
        assert_eq!(issued.len(), 1, "one refresh token issued by the login");
        issued[0].clone()
    };
    // The scheduler refreshes at half the 2 s lifetime.
    assert!(
        eventually(10, || fake.state().refresh_tokens.get(&old_rt)
            == Some(&false)),
        "the provider never rotated"
    );
    t.signal_daemon(nix::sys::signal::Signal::SIGKILL);
    fake.state().switches.hold_refresh_answers = false;
    old_rt
}

#[test]
fn a_kill_mid_refresh_is_recovered_inside_the_providers_reuse_interval() {
    let (t, fake) = setup("pkce", "follow");
    // A reuse interval of 60 s (Okta's longest), well beyond the 10 s the
    // retry is given below.
    let old_rt = kill_mid_refresh(&t, &fake, Some(Duration::from_secs(60)));
    let calls = fake.state().refresh_calls;
    // Any command starts a new daemon; nobody reads the connection, the
    // daemon retries the interrupted refresh by itself.
    t.run(&["daemon", "start"], None).ok();
    assert!(
        eventually(10, || fake.state().refresh_calls > calls),
        "the interrupted refresh was not retried"
    );
    assert!(eventually(10, || {
        let rt = t.secret("fake", "refresh_token");
        rt != old_rt && fake.state().refresh_tokens.get(&rt) == Some(&true)
    }));
    assert_eq!(t.field("fake", "status"), "connected");
    let at = t.secret("fake", "access_token");
    assert!(fake.state().issued.contains(&at));
    let log = std::fs::read_to_string(t.home().join("logs/authsome.log")).unwrap_or_default();
    assert!(
        log.contains("an earlier refresh got no stored answer"),
        "{log}"
    );
    assert!(fake.state().rejected_refresh_tokens.is_empty());
}

#[test]
fn a_kill_mid_refresh_against_a_strict_provider_ends_invalid_with_the_reason() {
    let (t, fake) = setup("pkce", "follow");
    let old_rt = kill_mid_refresh(&t, &fake, None);
    t.run(&["daemon", "start"], None).ok();
    assert!(
        eventually(10, || fake
            .state()
            .rejected_refresh_tokens
            .contains(&old_rt)),
        "the interrupted refresh was not retried"
    );
    assert!(eventually(10, || t.field("fake", "status") == "invalid"));
    let out = t
        .run(
            &["get", "fake", "--field", "access_token", "--show-secret"],
            None,
        )
        .code(5);
    assert!(
        out.stderr.contains("invalid_grant")
            && out.stderr.contains("an earlier refresh got no answer")
            && out.stderr.contains("log in again"),
        "{}",
        out.stderr
    );
    assert_eq!(notifications(&t), 1, "exactly one notification");
}

#[test]
fn a_login_during_a_refresh_is_not_overwritten_by_the_refresh() {
    let (t, fake) = setup("pkce", "follow");
    {
        let mut st = fake.state();
        st.switches.expires_in = Some(2);
        // Every refresh answer waits until the test lets it go.
        st.switches.hold_refresh_answers = true;
    }
    login(&t, &[]).ok();
    fake.state().switches.expires_in = Some(3600);
    // The scheduler's refresh is sent at half the lifetime and held.
    assert!(eventually(10, || fake.state().refresh_calls >= 1));
    // The login commits while that refresh is surely in flight.
    login(&t, &["--force"]).ok();
    let login_token = fake.state().issued.last().unwrap().clone();
    assert_eq!(
        fake.state().refresh_answers_sent,
        0,
        "the refresh is still held"
    );
    fake.state().switches.hold_refresh_answers = false;
    // The refresh's answer arrives after the login and is dropped.
    let log = t.home().join("logs/authsome.log");
    assert!(
        eventually(10, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("refresh answer dropped")),
        "the held refresh was not dealt with"
    );
    assert_eq!(
        t.secret("fake", "access_token"),
        login_token,
        "the refresh that started before the login replaced it"
    );
    let rt = t.secret("fake", "refresh_token");
    assert_eq!(fake.state().refresh_tokens.get(&rt), Some(&true));
}
