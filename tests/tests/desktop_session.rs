//! Living in the desktop and the shell: the autostart entry, completion
//! scripts, and `authsome status`.

use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::TestHome;

#[test]
fn autostart_on_writes_the_entry_with_the_tray_and_this_home_and_off_removes_it() {
    let t = TestHome::new();
    let file = t.dir().join("xdg-config/autostart/authsome.desktop");
    assert_eq!(
        t.run(&["tray", "autostart"], None).ok().stdout.trim(),
        "off"
    );
    let out = t.run(&["tray", "autostart", "on"], None).ok();
    assert!(
        out.stdout.contains("starts with your desktop session"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let tray = authsome_tests::authsome_bin().with_file_name("authsome-tray");
    let exec = format!(
        "Exec=env AUTHSOME_HOME={} {}",
        t.home().display(),
        tray.display()
    );
    assert!(text.contains(&format!("\n{exec}\n")), "{text}");
    assert!(
        text.starts_with("[Desktop Entry]\nType=Application\n"),
        "{text}"
    );
    let status = t.run(&["tray", "autostart", "status"], None).ok().stdout;
    assert_eq!(
        status.trim(),
        format!("on: {}", exec.trim_start_matches("Exec="))
    );
    t.run(&["tray", "autostart", "off"], None).ok();
    assert!(!file.exists(), "the entry stays");
    let again = t.run(&["tray", "autostart", "off"], None).ok().stdout;
    assert!(again.contains("was not starting"), "{again}");
}

#[test]
fn completion_scripts_name_the_commands_for_each_shell() {
    let t = TestHome::new();
    let bash = t.run(&["completions", "bash"], None).ok().stdout;
    assert!(
        bash.contains("_authsome()") && bash.contains("complete -F _authsome"),
        "{bash}"
    );
    for sub in ["login", "mcp", "grants", "approve", "status"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    let zsh = t.run(&["completions", "zsh"], None).ok().stdout;
    assert!(zsh.starts_with("#compdef authsome"), "{zsh}");
    let fish = t.run(&["completions", "fish"], None).ok().stdout;
    assert!(fish.contains("complete -c authsome"), "{fish}");
    t.run(&["completions", "tcsh"], None).code(2);
}

#[test]
fn status_shows_the_daemon_and_connections_and_fails_when_one_needs_attention() {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    t.login_key("openai", "sk-status-test-abcdefghijklmnopqrstuvwxyz");
    let out = t.run(&["status"], None).ok();
    for part in [
        "headless on port",
        "Master key  from file",
        "Connections 1 connected",
        "Runs        0 live",
    ] {
        assert!(out.stdout.contains(part), "{part} missing:\n{}", out.stdout);
    }
    // An OAuth connection whose refresh is refused: status says so and exits 5.
    let fake = FakeOAuth::start();
    {
        let mut st = fake.state();
        st.switches.expires_in = Some(1);
    }
    let b = authsome_tests::browser::follower(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    t.run(
        &["login", "fake", "--client-id", "c", "--stdin"],
        Some("fake-client-secret"),
    )
    .ok();
    let out = t.run(&["status"], None).ok();
    assert!(
        out.stdout.contains("Next expiry fake (default)"),
        "{}",
        out.stdout
    );
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    std::thread::sleep(std::time::Duration::from_millis(1200));
    t.run(
        &["get", "fake", "--field", "access_token", "--show-secret"],
        None,
    )
    .code(5);
    let out = t.run(&["status"], None).code(5);
    assert!(
        out.stdout.contains("Attention   fake (default) is invalid"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Last error") && out.stdout.contains("invalid_grant"),
        "{}",
        out.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"], None).code(5).stdout).unwrap();
    assert_eq!(json["connections"]["invalid"], 1, "{json}");
    assert_eq!(json["daemon"]["tray"], false);
}
