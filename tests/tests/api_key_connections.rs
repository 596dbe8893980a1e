//! API-key connections through the real CLI and daemon.

use authsome_tests::TestHome;

const KEY: &str = "sk-test-Zq8d3VbP0aLr7Yw2Kc5Hn1Mx";

#[test]
fn login_list_get_export_revoke_round_trip() {
    let t = TestHome::new();
    let out = t
        .run(&["login", "openai", "--stdin"], Some(&format!("{KEY}\n")))
        .ok();
    assert_eq!(
        out.stdout.trim(),
        "Successfully logged in to openai (default)"
    );

    let list = t.run(&["list"], None).ok().stdout;
    let first = list.lines().nth(1).unwrap();
    assert!(
        first.starts_with("openai") && first.contains("connected"),
        "connected providers come first:\n{list}"
    );
    assert!(list.contains("available"));

    let json: serde_json::Value =
        serde_json::from_str(&t.run(&["list", "--json"], None).ok().stdout).unwrap();
    assert_eq!(json["providers"][0]["name"], "openai");
    assert_eq!(
        json["providers"][0]["connections"][0]["status"],
        "connected"
    );
    assert!(json["providers"].as_array().unwrap().len() >= 80);

    let get = t.run(&["get", "openai"], None).ok().stdout;
    assert!(
        get.contains("api_key") && get.contains("***") && !get.contains(KEY),
        "{get}"
    );
    assert_eq!(t.field("openai", "api_key"), "***");
    assert_eq!(
        t.run(
            &["get", "openai", "--field", "api_key", "--show-secret"],
            None
        )
        .ok()
        .stdout,
        format!("{KEY}\n")
    );
    assert_eq!(t.field("openai", "status"), "connected");
    let view: serde_json::Value =
        serde_json::from_str(&t.run(&["get", "openai", "--json"], None).ok().stdout).unwrap();
    assert_eq!(view["secrets"]["api_key"], "***");

    assert_eq!(
        t.run(&["export", "openai", "--format", "env"], None)
            .ok()
            .stdout,
        format!("OPENAI_API_KEY={KEY}\n")
    );
    assert_eq!(
        t.run(&["export", "openai", "--format", "shell"], None)
            .ok()
            .stdout,
        format!("export OPENAI_API_KEY='{KEY}'\n")
    );
    let exported: serde_json::Value = serde_json::from_str(
        &t.run(&["export", "openai", "--format", "json"], None)
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(exported["OPENAI_API_KEY"], KEY);

    t.login_key(
        "anthropic",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    );
    let all = t.run(&["export", "--all"], None).ok().stdout;
    assert!(
        all.contains("OPENAI_API_KEY=") && all.contains("ANTHROPIC_API_KEY="),
        "{all}"
    );

    let revoke = t.run(&["revoke", "openai"], None).ok().stdout;
    assert!(revoke.contains("Revoked openai (default)"), "{revoke}");
    t.run(&["get", "openai"], None).code(3);
    assert_eq!(t.field("anthropic", "status"), "connected");
}

#[test]
fn exit_codes_follow_the_contract() {
    let t = TestHome::new();
    t.login_key("openai", KEY);
    let again = t.run(&["login", "openai", "--stdin"], Some(KEY)).code(6);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    t.run(
        &["login", "openai", "--stdin", "--force"],
        Some("sk-replaced-abcdefghijklmnopqrstuvwx"),
    )
    .ok();
    assert_eq!(
        t.secret("openai", "api_key"),
        "sk-replaced-abcdefghijklmnopqrstuvwx"
    );
    t.run(&["get", "no-such-provider"], None).code(4);
    t.run(&["login", "no-such-provider", "--stdin"], Some("x"))
        .code(4);
    t.run(&["get", "openai", "--connection", "work"], None)
        .code(3);
    t.run(&["get", "anthropic"], None).code(3);
    t.run(&["get", "openai", "--field", "access_token"], None)
        .code(5);
    t.run(&["get", "../etc"], None).code(2);
    t.run(&["get", "openai", "--connection", "a/b"], None)
        .code(2);
    t.run(&["get", "openai", "--field", "nonsense"], None)
        .code(2);
    t.run(&["frobnicate"], None).code(2);
}

#[test]
fn key_pattern_mismatch_shows_the_hint_and_stores_nothing() {
    let t = TestHome::new();
    let out = t
        .run(&["login", "openai", "--stdin"], Some("not-a-key"))
        .code(1);
    assert!(out.stderr.contains("start with sk-"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("not-a-key"),
        "the rejected value is echoed: {}",
        out.stderr
    );
    t.run(&["get", "openai"], None).code(3);
    let cr = t
        .run(
            &["login", "groq", "--stdin"],
            Some("gsk_abc\r\ninjected: 1"),
        )
        .code(2);
    assert_eq!(
        cr.stderr.trim(),
        "Error: the API key contains control characters (such as a line break); paste the key alone",
    );
    assert!(!cr.stderr.contains("injected"));
}

#[test]
fn named_connections_are_independent() {
    let t = TestHome::new();
    t.login_key("openai", KEY);
    t.run(
        &["login", "openai", "--stdin", "--connection", "work"],
        Some("sk-work-abcdefghijklmnopqrstuvwxyz"),
    )
    .ok();
    assert_eq!(
        t.run(
            &[
                "get",
                "openai",
                "--connection",
                "work",
                "--field",
                "api_key",
                "--show-secret"
            ],
            None
        )
        .ok()
        .stdout
        .trim(),
        "sk-work-abcdefghijklmnopqrstuvwxyz"
    );
    let inspect = t.run(&["inspect", "openai"], None).ok().stdout;
    assert!(
        inspect.contains("default") && inspect.contains("work"),
        "{inspect}"
    );
    let removed = t.run(&["remove", "openai"], None).ok().stdout;
    assert!(removed.contains("2 connection(s)"), "{removed}");
    t.run(&["get", "openai", "--connection", "work"], None)
        .code(3);
    // The definition stays.
    t.run(&["inspect", "openai"], None).ok();
}

#[test]
fn profiles_keep_connections_apart() {
    let t = TestHome::new();
    t.login_key("openai", KEY);
    t.run(&["profile", "create", "ci"], None).ok();
    t.run(&["--profile", "ci", "get", "openai"], None).code(3);
    t.run(
        &["--profile", "ci", "login", "openai", "--stdin"],
        Some("sk-ci-abcdefghijklmnopqrstuvwxyz12"),
    )
    .ok();
    t.run(&["--profile", "nope", "list"], None).code(2);
    t.run(&["profile", "use", "ci"], None).ok();
    assert_eq!(
        t.secret("openai", "api_key"),
        "sk-ci-abcdefghijklmnopqrstuvwxyz12"
    );
    let list = t.run(&["profile", "list"], None).ok().stdout;
    assert!(
        list.contains("* ci") && list.contains("  default"),
        "{list}"
    );
    t.run(&["profile", "use", "missing"], None).code(2);
}

#[test]
fn audit_log_records_events_as_json_lines() {
    let t = TestHome::new();
    t.login_key("openai", KEY);
    t.run(
        &["get", "openai", "--field", "api_key", "--show-secret"],
        None,
    )
    .ok();
    t.run(&["export", "openai"], None).ok();
    t.run(
        &["login", "openai", "--stdin", "--connection", "bad"],
        Some("wrong"),
    )
    .code(1);
    t.run(&["revoke", "openai"], None).ok();
    let out = t.run(&["log", "-n", "50", "--json"], None).ok().stdout;
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in ["daemon_start", "login", "get", "export", "revoke"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for e in &events {
        for key in ["ts", "event", "provider", "connection", "status"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    assert!(events
        .iter()
        .any(|e| e["event"] == "login" && e["status"] == "failure"));
    assert_eq!(
        t.run(&["log", "-n", "2", "--json"], None)
            .ok()
            .stdout
            .lines()
            .count(),
        2
    );
    let human = t.run(&["log", "-n", "3"], None).ok().stdout;
    assert!(human.contains("revoke"), "{human}");
}
