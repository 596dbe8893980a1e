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

/// What bash offers at TAB for the words typed so far (the script that
/// `authsome completions bash` prints, sourced in a real bash).
fn bash_completes(t: &TestHome, words: &[&str]) -> Vec<String> {
    let script = t.run(&["completions", "bash"], None).ok().stdout;
    let file = t.dir().join("authsome.bash");
    std::fs::write(&file, script).unwrap();
    let bin_dir = authsome_tests::authsome_bin()
        .parent()
        .unwrap()
        .to_path_buf();
    let line = words.join(" ");
    let current = words.last().copied().unwrap_or("");
    let prev = words
        .get(words.len().wrapping_sub(2))
        .copied()
        .unwrap_or("");
    let program = format!(
        "source {file}\nread -ra COMP_WORDS <<< \"$LINE\"\n[[ \"$LINE\" == *' ' ]] && COMP_WORDS+=('')\n\
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\nCOMP_LINE=\"$LINE\"; COMP_POINT=${{#LINE}}; COMP_TYPE=9\n\
         _clap_complete_authsome authsome \"$CUR\" \"$PREV\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file = file.display()
    );
    let out = t
        .program("bash")
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("LINE", &line)
        .env("CUR", current)
        .env("PREV", prev)
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_commands_providers_and_the_running_daemons_connections() {
    let t = TestHome::new();
    let commands = bash_completes(&t, &["authsome", "gr"]);
    assert_eq!(commands, ["grants"]);
    let providers = bash_completes(&t, &["authsome", "login", "gi"]);
    assert_eq!(providers, ["github", "github-mcp", "gitlab"]);
    // Completion never starts a daemon: nothing runs, so no connections.
    assert!(bash_completes(&t, &["authsome", "get", "openai", "--connection", ""]).is_empty());
    assert!(t.daemon_info().is_none(), "completion started a daemon");

    // A custom provider completes as well as the bundled ones.
    let file = t.dir().join("acme.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "name": "acme-internal", "display_name": "Acme", "auth_type": "api_key",
            "flow": "api_key", "host_url": "api.acme.test",
            "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "env_var": "ACME_API_KEY"},
            "export": {"ACME_API_KEY": "api_key"}
        })
        .to_string(),
    )
    .unwrap();
    t.run(&["init", "--key-backend", "file"], None).ok();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    assert_eq!(
        bash_completes(&t, &["authsome", "inspect", "acme"]),
        ["acme-internal"]
    );

    // With the daemon up, connection names come from it.
    t.login_key("openai", "sk-complete-test-abcdefghijklmnopqrstuvwxyz");
    t.run(
        &["login", "openai", "--connection", "work", "--stdin"],
        Some("sk-complete-work-abcdefghijklmnopqrstuvwxyz"),
    )
    .ok();
    assert_eq!(
        bash_completes(&t, &["authsome", "get", "openai", "--connection", ""]),
        ["default", "work"]
    );
    assert_eq!(
        bash_completes(&t, &["authsome", "run", "--allow", "openai=w"]),
        ["openai=work"]
    );
    // A flag's values and the shells.
    assert_eq!(
        bash_completes(&t, &["authsome", "completions", "f"]),
        ["fish"]
    );
    let zsh = t.run(&["completions", "zsh"], None).ok().stdout;
    assert!(zsh.contains("#compdef authsome"), "{zsh}");
    let fish = t.run(&["completions", "fish"], None).ok().stdout;
    assert!(
        fish.contains("complete") && fish.contains("authsome"),
        "{fish}"
    );
    t.run(&["completions", "tcsh"], None).code(2);
    // A COMPLETE variable set for another tool does not turn authsome into
    // a completer: the scripts use a name of its own.
    let out = t
        .cmd(&["--version"])
        .env("COMPLETE", "bash")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("authsome "));
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
