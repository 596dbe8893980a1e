//! A known key is stored, every command runs, and the key must appear
//! nowhere but in the output of the commands that asked for it.

use authsome_tests::{all_files, contains_bytes, TestHome};

const KEY: &str = "sk-leakcheck-7Hq2Vx9Lm4Tz0Rb6Yc1Nw8Ud";

#[test]
fn a_stored_key_appears_nowhere_it_was_not_asked_for() {
    let t = TestHome::new();
    let mut quiet = Vec::new();
    let mut revealing = Vec::new();
    quiet.push(
        t.run(&["--verbose", "login", "openai", "--stdin"], Some(KEY))
            .ok(),
    );
    quiet.push(
        t.run(&["--verbose", "login", "openai", "--stdin"], Some(KEY))
            .code(6),
    );
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["get", "openai"],
        vec!["get", "openai", "--json"],
        vec!["--verbose", "get", "openai", "--field", "api_key"],
        vec!["get", "openai", "--field", "status"],
        vec!["inspect", "openai"],
        vec!["inspect", "openai", "--json"],
        vec!["log", "-n", "100"],
        vec!["log", "-n", "100", "--json"],
        vec!["doctor"],
        vec!["doctor", "--json"],
        vec!["daemon", "status"],
        vec!["profile", "list"],
    ] {
        quiet.push(t.run(&args, None).ok());
    }
    revealing.push(
        t.run(
            &[
                "--verbose",
                "get",
                "openai",
                "--field",
                "api_key",
                "--show-secret",
            ],
            None,
        )
        .ok(),
    );
    revealing.push(
        t.run(
            &["--verbose", "get", "openai", "--show-secret", "--json"],
            None,
        )
        .ok(),
    );
    revealing.push(t.run(&["--verbose", "export", "openai"], None).ok());
    revealing.push(t.run(&["export", "--all", "--format", "json"], None).ok());
    for r in &revealing {
        assert!(
            r.stdout.contains(KEY),
            "the command that asked did not get the key"
        );
    }
    for r in quiet.iter().chain(&revealing) {
        assert!(!r.stderr.contains(KEY), "key on stderr: {}", r.stderr);
    }
    for r in &quiet {
        assert!(
            !r.stdout.contains(KEY),
            "key on stdout of a command that did not ask: {}",
            r.stdout
        );
    }
    // Stop the daemon so every file is flushed, then scan every byte of the home.
    t.run(&["daemon", "stop"], None).ok();
    let files = all_files(&t.home());
    assert!(files.iter().any(|f| f.ends_with("audit.log")));
    assert!(files.iter().any(|f| f.ends_with("authsome.log")));
    assert!(files.iter().any(|f| f.ends_with("store.db")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&bytes, KEY.as_bytes()),
            "{} holds the key",
            f.display()
        );
    }
    for args in [["revoke", "openai"], ["remove", "openai"]] {
        let r = t.run(&args, None).ok();
        assert!(!r.stdout.contains(KEY) && !r.stderr.contains(KEY));
    }
}
