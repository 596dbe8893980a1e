//! The keychain key backend against a real Secret Service: gnome-keyring on
//! a private D-Bus session started by `scripts/with-session.sh` (which
//! `make test` uses). Outside such a session these tests are ignored.

use authsome_tests::{all_files, contains_bytes, TestHome};

const KEY: &str = "sk-keychain-abcdefghijklmnopqrstuvw";

fn bus() -> String {
    std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .expect("run inside scripts/with-session.sh (a private session bus)")
}

fn lookup_master_key(t: &TestHome) -> Option<String> {
    lookup(&format!("master-key:{}", t.home().display()))
}

/// The new key `rekey` staged, while a rotation is under way.
fn lookup_staged_key(t: &TestHome) -> Option<String> {
    lookup(&format!("master-key:{}:next", t.home().display()))
}

fn lookup(username: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "authsome", "username", username])
        .env("DBUS_SESSION_BUS_ADDRESS", bus())
        .output()
        .expect("secret-tool");
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[test]
#[ignore = "needs a Secret Service; run through scripts/with-session.sh (make test does)"]
fn a_new_home_keeps_its_master_key_in_the_keychain() {
    let t = TestHome::new().env("DBUS_SESSION_BUS_ADDRESS", &bus());
    let out = t.run(&["login", "openai", "--stdin"], Some(KEY)).ok();
    assert!(!out.stderr.contains("not available"), "{}", out.stderr);
    assert!(
        !t.home().join("master.key").exists(),
        "no key file with the keychain backend"
    );
    let config = std::fs::read_to_string(t.home().join("config.toml")).unwrap();
    assert!(config.contains("key_backend = \"keychain\""), "{config}");
    let stored = lookup_master_key(&t).expect("the master key is in the Secret Service");
    assert_eq!(stored.len(), 44, "base64 of 32 bytes");

    // A restarted daemon reads the key back from the keychain.
    t.run(&["daemon", "stop"], None).ok();
    assert_eq!(t.secret("openai", "api_key"), KEY);
    let doctor = t.run(&["doctor"], None).ok().stdout;
    assert!(
        doctor.contains("master key from keychain") && doctor.contains("persists"),
        "{doctor}"
    );

    t.run(&["daemon", "stop"], None).ok();
    for f in all_files(&t.home()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&bytes, stored.as_bytes()),
            "{} holds the master key",
            f.display()
        );
        assert!(
            !contains_bytes(&bytes, KEY.as_bytes()),
            "{} holds the API key",
            f.display()
        );
    }
}

#[test]
#[ignore = "needs a Secret Service; run through scripts/with-session.sh (make test does)"]
fn a_keychain_home_without_its_keychain_fails_clearly_and_never_switches() {
    let t = TestHome::new().env("DBUS_SESSION_BUS_ADDRESS", &bus());
    t.run(&["init", "--key-backend", "keychain"], None).ok();
    t.login_key("openai", KEY);
    t.run(&["daemon", "stop"], None).ok();

    let mut c = t.cmd(&["list"]);
    c.env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/authsome-test-bus",
    );
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("keychain is unavailable"), "{stderr}");
    assert!(
        stderr.contains("AUTHSOME_MASTER_KEY") && stderr.contains("--key-backend file"),
        "ways out named: {stderr}"
    );
    assert!(
        !t.home().join("master.key").exists(),
        "the backend did not switch to the file by itself"
    );

    // Back with its keychain, everything is there.
    assert_eq!(t.secret("openai", "api_key"), KEY);
}

#[test]
#[ignore = "needs a Secret Service; run through scripts/with-session.sh (make test does)"]
fn init_keychain_without_a_keychain_is_refused() {
    let t = TestHome::new().env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/authsome-test-bus",
    );
    let out = t.run(&["init", "--key-backend", "keychain"], None).code(1);
    assert!(
        out.stderr.contains("keychain is unavailable"),
        "{}",
        out.stderr
    );
    assert!(
        !t.home().join("config.toml").exists()
            || !std::fs::read_to_string(t.home().join("config.toml"))
                .unwrap()
                .contains("keychain")
    );
}

#[test]
#[ignore = "needs a Secret Service; run through scripts/with-session.sh (make test does)"]
fn rekey_replaces_the_keychain_key_and_finishes_after_a_kill() {
    let t = TestHome::new().env("DBUS_SESSION_BUS_ADDRESS", &bus());
    t.run(&["init", "--key-backend", "keychain"], None).ok();
    t.run(&["login", "openai", "--stdin"], Some(KEY)).ok();
    let first = lookup_master_key(&t).unwrap();
    let out = t.run(&["rekey"], None).ok();
    assert!(
        out.stdout.contains("the new key is in the OS keychain"),
        "{}",
        out.stdout
    );
    let second = lookup_master_key(&t).unwrap();
    assert_ne!(first, second);
    assert!(lookup_staged_key(&t).is_none(), "the staged entry is gone");
    assert_eq!(t.secret("openai", "api_key"), KEY);

    // Killed once the new key is staged (after its first two steps): the
    // keychain holds both, and the next daemon start finishes.
    t.run(&["daemon", "stop"], None).ok();
    let mut child = t
        .cmd(&["rekey", "-v"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for _ in 0..2 {
        lines.next();
    }
    let _ = child.kill();
    let _ = child.wait();
    let staged = lookup_staged_key(&t).expect("the new key was staged");
    assert_eq!(lookup_master_key(&t).unwrap(), second);
    assert_eq!(t.secret("openai", "api_key"), KEY);
    assert_eq!(
        lookup_master_key(&t).unwrap(),
        staged,
        "the staged key took over"
    );
    assert!(lookup_staged_key(&t).is_none());
}
