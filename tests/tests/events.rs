//! `authsome events` and `GET /v1/events`: what happens in the daemon, as
//! it happens, as JSON lines.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use authsome_tests::runs::{api_key_provider, register};
use authsome_tests::TestHome;

const KEY: &str = "sk-events-abcdefghijklmnopqrstuvwx";

/// `authsome events` running, its lines arriving on a channel.
struct Follower {
    child: std::process::Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Follower {
    /// Starts `authsome events` and returns once it surely receives events:
    /// it registers a provider until the follower reports it.
    fn start(t: &TestHome) -> Follower {
        let mut child = t
            .cmd(&["events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).expect("a JSON line"));
            }
        });
        let f = Follower { child, lines };
        for _ in 0..100 {
            register(t, api_key_provider("sentinel", "sentinel.example.com"));
            if let Ok(e) = f.lines.recv_timeout(Duration::from_millis(300)) {
                assert_eq!(e["type"], "provider_registered", "{e}");
                while f.lines.recv_timeout(Duration::from_millis(300)).is_ok() {}
                return f;
            }
        }
        panic!("authsome events never showed an event");
    }

    /// The next event that is not about the sentinel.
    fn next(&self) -> serde_json::Value {
        loop {
            let e = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("an event within 20 s");
            if e["name"] != "sentinel" {
                return e;
            }
        }
    }
}

#[test]
fn authsome_events_shows_logins_status_changes_revokes_and_runs_as_they_happen() {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    let f = Follower::start(&t);

    t.login_key("openai", KEY);
    // The connection is stored, then the login completes.
    let status = f.next();
    assert_eq!(status["type"], "connection_status", "{status}");
    assert_eq!(
        (
            &status["provider"],
            &status["connection"],
            &status["old"],
            &status["new"]
        ),
        (
            &"openai".into(),
            &"default".into(),
            &serde_json::Value::Null,
            &"connected".into()
        )
    );
    let login = f.next();
    assert_eq!(login["type"], "login", "{login}");
    assert_eq!(login["login"]["provider"], "openai");
    assert_eq!(login["login"]["state"], "completed");

    t.run(&["run", "--no-contain", "--", "true"], None).ok();
    let started = f.next();
    assert_eq!(started["type"], "run_started", "{started}");
    assert_eq!(started["command"], "true");
    let ended = f.next();
    assert_eq!(ended["type"], "run_ended", "{ended}");
    assert_eq!(ended["id"], started["id"]);
    assert_eq!(ended["exit"], 0);

    t.run(&["revoke", "openai"], None).ok();
    let revoked = f.next();
    assert_eq!(revoked["type"], "connection_status", "{revoked}");
    assert_eq!(revoked["old"], "connected");
    assert_eq!(revoked["new"], serde_json::Value::Null);

    // No secret in any of it.
    for e in [&login, &status, &started, &ended, &revoked] {
        assert!(!e.to_string().contains(KEY), "{e}");
    }

    // The stream ends with the daemon; the command says so.
    let Follower { mut child, .. } = f;
    t.run(&["daemon", "stop"], None).ok();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("the daemon stopped"), "{stderr}");
}
