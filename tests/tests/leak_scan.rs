//! Known secrets are stored (an API key; an OAuth client secret, access and
//! refresh tokens through a login and a rotating refresh; the master key),
//! every command runs, and no secret may appear anywhere but in the output
//! of the commands that asked for it: not in stderr, the audit log, the
//! debug log at trace level, any file of the home, any process's command
//! line while a run is active, or a `run` child's environment.

use std::time::Duration;

use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::{all_files, contains_bytes, echo, TestHome};

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
    // Moving in and moving house: import (the key is found again in a
    // .env file), backup and restore, and a key rotation.
    let envfile = t.dir().join("leak.env");
    std::fs::write(
        &envfile,
        format!("OPENAI_API_KEY={KEY}\nANTHROPIC_API_KEY=not-an-anthropic-key\n"),
    )
    .unwrap();
    let envfile = envfile.to_str().unwrap();
    for args in [
        vec!["--verbose", "import", "--dry-run", "--from", envfile],
        vec!["--verbose", "import", "--from", envfile],
        vec!["import", "--from", envfile, "--json"],
    ] {
        quiet.push(t.run(&args, None).code(8));
    }
    let backup = t.dir().join("leak.age");
    let backup_arg = backup.to_str().unwrap();
    quiet.push(
        t.run(
            &["--verbose", "backup", backup_arg, "--stdin"],
            Some("leak-check passphrase"),
        )
        .ok(),
    );
    quiet.push(
        t.run(
            &["--verbose", "restore", backup_arg, "--stdin", "--force"],
            Some("leak-check passphrase"),
        )
        .ok(),
    );
    quiet.push(t.run(&["--verbose", "rekey"], None).ok());
    assert!(
        !contains_bytes(&std::fs::read(&backup).unwrap(), KEY.as_bytes()),
        "the backup file holds the key in the clear"
    );
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

const CLIENT_SECRET: &str = "cs-leakcheck-Pz4Kq9Wd2Hn7Rv5Tx1Lb";
const MASTER_KEY: &str = "bGVha2NoZWNrLW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
const PROXY_KEY: &str = "sk-leakcheck-proxy-Gm3Zc8Ny6Qf1Js4Vk";

#[test]
fn oauth_tokens_client_secrets_and_the_master_key_stay_where_they_belong() {
    let fake = FakeOAuth::start();
    let t = TestHome::new()
        .env("AUTHSOME_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "trace");
    {
        let mut st = fake.state();
        st.switches.client_secret = Some(CLIENT_SECRET.into());
        st.switches.device_pending_polls = 0;
        st.switches.expires_in = Some(6);
        st.switches.refresh_expires_in = Some(3600);
    }
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "device_code").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    let echo = echo::https(t.dir(), "127.0.0.3".parse().unwrap(), "echo");
    t.append_config(&format!(
        "[proxy]\nextra_ca_file = {:?}\n",
        echo.ca_file.as_ref().unwrap().display().to_string()
    ));
    let def = serde_json::json!({
        "name": "echo", "display_name": "Echo", "auth_type": "api_key", "flow": "api_key",
        "host_url": echo.host_port(),
        "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "env_var": "ECHO_API_KEY"},
        "export": {"ECHO_API_KEY": "api_key"}
    });
    let file = t.dir().join("echo.json");
    std::fs::write(&file, def.to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();

    let mut quiet = Vec::new();
    let mut revealing = Vec::new();
    quiet.push(
        t.run(
            &[
                "--verbose",
                "login",
                "fake",
                "--client-id",
                "leak-client",
                "--stdin",
            ],
            Some(CLIENT_SECRET),
        )
        .ok(),
    );
    quiet.push(
        t.run(&["--verbose", "login", "echo", "--stdin"], Some(PROXY_KEY))
            .ok(),
    );
    // Past half of the 6 s lifetime: reads refresh and the token rotates.
    std::thread::sleep(Duration::from_millis(3300));
    revealing.push(
        t.run(
            &[
                "--verbose",
                "get",
                "fake",
                "--field",
                "access_token",
                "--show-secret",
            ],
            None,
        )
        .ok(),
    );
    assert!(fake.state().refresh_calls >= 1, "no refresh happened");
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["--verbose", "get", "fake"],
        vec!["get", "fake", "--json"],
        vec!["get", "fake", "--field", "refresh_token"],
        vec!["get", "echo", "--field", "api_key"],
        vec!["inspect", "fake", "--json"],
        vec!["log", "-n", "200", "--json"],
        vec!["doctor", "--json"],
        vec!["daemon", "status"],
    ] {
        quiet.push(t.run(&args, None).ok());
    }
    revealing.push(
        t.run(&["get", "fake", "--show-secret", "--json"], None)
            .ok(),
    );
    revealing.push(t.run(&["export", "fake"], None).ok());

    // A run: the child's environment and every command line on the machine
    // while it is active.
    let ps_file = t.dir().join("ps.txt");
    let script = format!(
        "env; curl -sS --fail -o /dev/null {}; ps -eo args > {}",
        echo.url("/v1/x"),
        ps_file.display()
    );
    let run = t.run(&["run", "--", "sh", "-c", &script], None).ok();
    quiet.push(run);
    let ps = std::fs::read_to_string(&ps_file).unwrap();
    assert!(ps.contains("ps -eo args"), "{ps}");

    let st = fake.state();
    let mut secrets: Vec<String> = st.issued.clone();
    secrets.extend(st.refresh_tokens.keys().cloned());
    drop(st);
    assert!(secrets.len() >= 4, "login and refresh issued tokens");
    secrets.extend([CLIENT_SECRET, MASTER_KEY, PROXY_KEY].map(String::from));

    for secret in &secrets {
        assert!(!ps.contains(secret.as_str()), "a secret on a command line");
        for r in quiet.iter().chain(&revealing) {
            assert!(
                !r.stderr.contains(secret.as_str()),
                "secret on stderr: {}",
                r.stderr
            );
        }
        for r in &quiet {
            assert!(
                !r.stdout.contains(secret.as_str()),
                "secret on stdout of a command that did not ask: {}",
                r.stdout
            );
        }
    }
    let current_at = revealing[0].stdout.trim().to_string();
    assert!(revealing.iter().all(|r| r.stdout.contains(&current_at)));

    t.run(&["daemon", "stop"], None).ok();
    let files = all_files(&t.home());
    let log = std::fs::read_to_string(t.home().join("logs/authsome.log")).unwrap();
    assert!(
        log.contains("TRACE") && log.contains("refresh"),
        "the debug log ran at trace level"
    );
    use base64::Engine;
    let raw_key = base64::engine::general_purpose::STANDARD
        .decode(MASTER_KEY)
        .unwrap();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for secret in &secrets {
            assert!(
                !contains_bytes(&bytes, secret.as_bytes()),
                "{} holds a secret",
                f.display()
            );
        }
        assert!(
            !contains_bytes(&bytes, &raw_key),
            "{} holds the raw master key",
            f.display()
        );
    }
}

#[test]
fn the_master_key_reaches_no_process_authsome_starts() {
    // A home whose master key is given in the environment, as in CI.
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    let master = std::fs::read_to_string(t.home().join("master.key"))
        .unwrap()
        .trim()
        .to_string();
    std::fs::remove_file(t.home().join("master.key")).unwrap();
    let t = t.env("AUTHSOME_MASTER_KEY", &master);
    // A browser that records its environment.
    let env_file = t.dir().join("browser.env");
    let browser = t.dir().join("browser.sh");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nenv > {0}.tmp && mv {0}.tmp {0}\n",
            env_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = t.env("BROWSER", browser.to_str().unwrap());

    // The CLI starts the daemon, which works with the key it was handed.
    t.login_key("openai", KEY);
    assert_eq!(t.secret("openai", "api_key"), KEY);
    let doctor = t.run(&["doctor"], None).stdout;
    assert!(doctor.contains("master key from env"), "{doctor}");
    // The daemon's environment never held it (readable by root only: the
    // daemon is not dumpable).
    if nix::unistd::geteuid().is_root() {
        let pid = t.daemon_pid().unwrap();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            !contains_bytes(&environ, master.as_bytes())
                && !contains_bytes(&environ, b"AUTHSOME_MASTER_KEY"),
            "the daemon's environment holds the master key"
        );
    }
    // A browser opened for a login does not get it either.
    let mut login = t
        .cmd(&["login", "openai", "--connection", "second"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let opened = authsome_tests::eventually(20, || env_file.exists());
    let _ = login.kill();
    let _ = login.wait();
    assert!(opened, "the browser was not opened");
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("BROWSER="), "{env}");
    assert!(
        !env.contains("AUTHSOME_MASTER_KEY") && !env.contains(&master),
        "{env}"
    );
    // Nor does a run's command.
    let out = t.run(&["run", "--", "env"], None).ok();
    assert!(!out.stdout.contains("AUTHSOME_MASTER_KEY") && !out.stdout.contains(&master));
}
