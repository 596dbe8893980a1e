//! After an unclean stop `daemon.json` stays behind, and something else may
//! listen on the port it names. The CLI must send such a process nothing
//! but the identity challenge: never the token, never a key.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authsome_tests::TestHome;

const KEY: &str = "sk-impostor-abcdefghijklmnopqrstuvwx";
const TOKEN: &str = "token-left-behind-Jq2mV8xN4tLp0wZr";

/// A listener that answers every request like a daemon's `/health` (with
/// `proof` as given) and records every byte it is sent.
fn impostor(proof: Option<&'static str>) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 65536];
            let mut got = Vec::new();
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            log.lock().unwrap().extend_from_slice(&got);
            let body = match proof {
                Some(p) => format!(
                    r#"{{"status":"ok","version":"{}","proof":"{p}"}}"#,
                    env!("CARGO_PKG_VERSION")
                ),
                None => format!(
                    r#"{{"status":"ok","version":"{}"}}"#,
                    env!("CARGO_PKG_VERSION")
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

/// A home whose `daemon.json` names a live process of ours (a `sleep`,
/// returned) and `port`, as after a daemon was SIGKILLed and its port taken.
fn home_left_behind(port: u16) -> (TestHome, std::process::Child) {
    let t = TestHome::new();
    let stand_in = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    t.run(&["init", "--key-backend", "file"], None).ok();
    std::fs::write(
        t.home().join("daemon.json"),
        format!(
            r#"{{"pid":{},"port":{port},"version":"{}"}}"#,
            stand_in.id(),
            env!("CARGO_PKG_VERSION")
        ),
    )
    .unwrap();
    std::fs::write(t.home().join("daemon.token"), TOKEN).unwrap();
    (t, stand_in)
}

#[test]
fn the_cli_sends_an_impostor_nothing_but_the_challenge() {
    for proof in [None, Some("00".repeat(32).leak() as &'static str)] {
        let (port, seen) = impostor(proof);
        let (t, mut stand_in) = home_left_behind(port);
        let login = t.run(&["login", "openai", "--stdin"], Some(KEY)).code(9);
        assert!(
            login
                .stderr
                .contains(&format!("127.0.0.1:{port} is not this home's daemon")),
            "{}",
            login.stderr
        );
        t.run(&["list"], None).code(9);
        t.run(&["run", "--", "true"], None).code(9);
        let stop = t.run(&["daemon", "stop"], None);
        assert_ne!(stop.code, 0, "{stop:?}");
        std::thread::sleep(Duration::from_millis(200));
        let seen = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
        assert!(
            !seen.contains(TOKEN),
            "the token reached the impostor: {seen}"
        );
        assert!(!seen.contains(KEY), "the key reached the impostor: {seen}");
        let requests: Vec<&str> = seen
            .lines()
            .filter(|l| l.starts_with("GET ") || l.starts_with("POST "))
            .collect();
        assert!(!requests.is_empty());
        for r in requests {
            assert!(r.starts_with("GET /health?challenge="), "{r}");
        }
        let _ = stand_in.kill();
        let _ = stand_in.wait();
    }
}

#[test]
fn a_stale_daemon_json_with_nothing_listening_starts_a_fresh_daemon() {
    let free = authsome_tests::free_port();
    let (t, mut stand_in) = home_left_behind(free);
    // The port in daemon.json is free: the CLI starts the home's own daemon.
    t.login_key("openai", KEY);
    assert_eq!(t.secret("openai", "api_key"), KEY);
    assert_ne!(t.token(), TOKEN, "the new daemon wrote its own token");
    let _ = stand_in.kill();
    let _ = stand_in.wait();
}
