//! `authsome register` and `inspect` for custom providers.

use authsome_tests::TestHome;

fn write(t: &TestHome, name: &str, v: &serde_json::Value) -> String {
    let path = t.dir().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path.display().to_string()
}

fn acme() -> serde_json::Value {
    serde_json::json!({
        "name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
        "host_url": "api.acme.test", "docs_url": "https://acme.test/keys",
        "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "env_var": "ACME_API_KEY"},
        "export": {"ACME_API_KEY": "api_key"}
    })
}

#[test]
fn register_validates_stores_and_refuses_to_replace_without_force() {
    let t = TestHome::new();
    let file = write(&t, "acme.json", &acme());
    assert!(t
        .run(&["register", &file], None)
        .ok()
        .stdout
        .contains("Registered provider acme"));
    assert!(t.home().join("providers/acme.json").exists());
    let again = t.run(&["register", &file], None).code(1);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    let mut v = acme();
    v["display_name"] = "Acme Corp".into();
    let file2 = write(&t, "acme2.json", &v);
    assert!(t
        .run(&["register", &file2, "--force"], None)
        .ok()
        .stdout
        .contains("Replaced provider acme"));
    let inspect = t.run(&["inspect", "acme"], None).ok().stdout;
    assert!(
        inspect.contains("Acme Corp") && inspect.contains("custom"),
        "{inspect}"
    );
    t.run(&["login", "acme", "--stdin"], Some("acme-key-1"))
        .ok();
    assert_eq!(
        t.run(&["export", "acme"], None).ok().stdout,
        "ACME_API_KEY=acme-key-1\n"
    );
    // A bundled name needs --force too.
    let mut openai = acme();
    openai["name"] = "openai".into();
    let f = write(&t, "openai.json", &openai);
    t.run(&["register", &f], None).code(1);
    // Custom providers survive a daemon restart.
    t.run(&["daemon", "stop"], None).ok();
    assert!(t
        .run(&["inspect", "acme"], None)
        .ok()
        .stdout
        .contains("Acme Corp"));
}

#[test]
fn invalid_definitions_are_refused_with_the_reason() {
    let t = TestHome::new();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("flow", serde_json::json!("pkce"), "does not fit"),
        (
            "name",
            serde_json::json!("../evil"),
            "invalid provider name",
        ),
        ("name", serde_json::json!("a/b"), "invalid provider name"),
        (
            "docs_url",
            serde_json::json!("http://acme.test/keys"),
            "https",
        ),
        (
            "host_url",
            serde_json::json!("regex:(unclosed"),
            "does not compile",
        ),
        ("unknown_field", serde_json::json!(true), "unknown field"),
    ];
    for (field, value, expect) in cases {
        let mut v = acme();
        v[field] = value;
        let file = write(&t, "bad.json", &v);
        let out = t.run(&["register", &file], None).code(1);
        assert!(out.stderr.contains(expect), "{field}: {}", out.stderr);
    }
    let file = t.dir().join("broken.json");
    std::fs::write(&file, "{ not json").unwrap();
    assert!(t
        .run(&["register", file.to_str().unwrap()], None)
        .code(1)
        .stderr
        .contains("not valid JSON"));
    let huge = t.dir().join("huge.json");
    std::fs::write(&huge, format!("{{\"pad\": \"{}\"}}", "x".repeat(100_000))).unwrap();
    assert!(t
        .run(&["register", huge.to_str().unwrap()], None)
        .code(1)
        .stderr
        .contains("larger than"));
    t.run(&["register", "/nonexistent/file.json"], None).code(2);
    assert!(!t.home().join("providers/bad.json").exists());
}

#[test]
fn loopback_http_is_accepted_with_a_warning() {
    let t = TestHome::new();
    let v = serde_json::json!({
        "name": "localsrv", "display_name": "Local server", "auth_type": "oauth2", "flow": "pkce",
        "host_url": "127.0.0.1:9999",
        "oauth": {"authorization_url": "http://127.0.0.1:9999/authorize", "token_url": "http://127.0.0.1:9999/token",
                  "supports_device_code": false, "supports_dcr": false},
        "export": {"LOCAL_TOKEN": "access_token"}
    });
    let file = write(&t, "local.json", &v);
    let out = t.run(&["register", &file], None).ok();
    assert!(
        out.stderr.contains("Warning:") && out.stderr.contains("loopback"),
        "{}",
        out.stderr
    );
    let inspect = t.run(&["inspect", "localsrv"], None).ok().stdout;
    assert!(
        inspect.contains("supports_dcr") && inspect.contains("callback_url"),
        "{inspect}"
    );
}

#[test]
fn a_custom_file_replacing_a_bundled_provider_shows_in_doctor_and_the_log() {
    let t = TestHome::new();
    let doctor = t.run(&["doctor"], None).stdout;
    assert!(!doctor.contains("provider override"), "{doctor}");
    let mut openai = acme();
    openai["name"] = "openai".into();
    let f = write(&t, "openai.json", &openai);
    t.run(&["register", &f, "--force"], None).ok();
    let doctor = t.run(&["doctor"], None).stdout;
    let line = doctor
        .lines()
        .find(|l| l.contains("provider override"))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(
        line.contains("openai") && line.contains("replaces the bundled definition"),
        "{line}"
    );
    // The daemon says so in its log when it loads the file.
    t.run(&["daemon", "stop"], None).ok();
    t.run(&["list"], None).ok();
    let log = std::fs::read_to_string(t.home().join("logs/authsome.log")).unwrap();
    assert!(
        log.contains("replaces the bundled definition of openai"),
        "{log}"
    );
}
