//! Moving in and moving house: `import` from .env files, `rekey` (killed at
//! every step and at random moments), and encrypted `backup` / `restore`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use authsome_tests::runs::{api_key_provider, register};
use authsome_tests::{Lcg, TestHome};

const PROFILES: [&str; 4] = ["default", "work", "home", "ci"];
const PROVIDERS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// Each profile's exported variables, read through the daemon.
fn all_secrets(t: &TestHome) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for profile in PROFILES {
        let run = t.run(
            &["--profile", profile, "export", "--all", "--format", "json"],
            None,
        );
        assert_eq!(run.code, 0, "{profile}: {}", run.stderr);
        let vars: BTreeMap<String, String> = serde_json::from_str(&run.stdout).unwrap();
        for (k, v) in vars {
            out.insert(format!("{profile}/{k}"), v);
        }
    }
    out
}

/// Four profiles with four API keys each, and the proxy CA.
fn home_with_profiles() -> (TestHome, BTreeMap<String, String>) {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    for p in PROVIDERS {
        register(&t, api_key_provider(p, &format!("api.{p}.test")));
    }
    for profile in PROFILES {
        if profile != "default" {
            t.run(&["profile", "create", profile], None).ok();
        }
        for p in PROVIDERS {
            t.run(
                &["--profile", profile, "login", p, "--stdin"],
                Some(&format!("{profile}-{p}-key-4Rt9Wq")),
            )
            .ok();
        }
    }
    t.run(&["run", "--no-contain", "--", "true"], None).ok();
    assert!(t.home().join("ca/ca.key.sealed").exists());
    let expected = all_secrets(&t);
    assert_eq!(expected.len(), PROFILES.len() * PROVIDERS.len());
    (t, expected)
}

/// Kills `authsome rekey` after its `step`-th progress line, or after
/// `delay` when `step` is `None`. True when it was killed before it ended.
fn kill_rekey(t: &TestHome, step: Option<usize>, delay: Duration) -> bool {
    let mut child = t
        .cmd(&["rekey", "-v"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    match step {
        Some(n) => {
            let mut seen = 0;
            while seen < n {
                match lines.next() {
                    Some(Ok(l)) if l.starts_with("DEBUG ") => seen += 1,
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        }
        None => std::thread::sleep(delay),
    }
    let killed = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok();
    let status = child.wait().unwrap();
    killed && status.code().is_none()
}

/// `authsome rekey` killed with SIGKILL after each of its steps and at
/// random moments: every time, the next command (whose daemon finishes an
/// interrupted rotation) reads every secret of every profile, the home ends
/// with one key and no staged one, and the key changed.
///
/// Run with `--ignored`; `make test` runs it.
#[test]
#[ignore = "kills rekey 40 times (about a minute); make test runs it"]
fn rekey_killed_at_any_moment_leaves_every_secret_readable() {
    let (t, expected) = home_with_profiles();
    // One whole rotation, to time it.
    t.run(&["daemon", "stop"], None).ok();
    let started = Instant::now();
    t.run(&["rekey"], None).ok();
    let whole = started.elapsed();
    assert_eq!(all_secrets(&t), expected);
    // Steps: checked, staged, one per profile, the CA key, stored.
    let steps = 2 + PROFILES.len() + 1 + 1;
    let mut rng = Lcg(0x5eed_4e4b);
    let (mut interrupted, mut staged_left, mut rotated) = (0, 0, 0);
    for i in 0..40 {
        t.run(&["daemon", "stop"], None).ok();
        let key_before = std::fs::read_to_string(t.home().join("master.key")).unwrap();
        let (step, delay) = if i % 2 == 0 {
            (Some(i / 2 % steps), Duration::ZERO)
        } else {
            let micros = rng.draw() % (whole.as_micros() as u64 + 1);
            (None, Duration::from_micros(micros))
        };
        if kill_rekey(&t, step, delay) {
            interrupted += 1;
        }
        if t.home().join("master.key.next").exists() {
            staged_left += 1;
        }
        // The next command starts the daemon, which finishes the rotation.
        assert_eq!(
            all_secrets(&t),
            expected,
            "kill {i} (step {step:?}, delay {delay:?})"
        );
        assert!(
            !t.home().join("master.key.next").exists(),
            "kill {i}: the staged key is still there after the daemon started"
        );
        // A kill before the new key was staged leaves the old key; any later
        // one ends with the new key in place.
        let key_after = std::fs::read_to_string(t.home().join("master.key")).unwrap();
        if key_after != key_before {
            rotated += 1;
        }
    }
    assert!(rotated >= 20, "{rotated} rotations took effect");
    // The kills did land inside rotations, with a staged key left behind.
    assert!(
        interrupted >= 25,
        "{interrupted} kills interrupted a rotation"
    );
    assert!(staged_left >= 10, "{staged_left} kills left a staged key");
    let doctor = t.run(&["doctor"], None).stdout;
    assert!(doctor.contains("last rotated"), "{doctor}");
    let integrity = t.run(&["doctor"], None);
    assert!(
        integrity.stdout.contains("integrity ok"),
        "{}",
        integrity.stdout
    );
}

/// True when a line of the table has these cells (the last may hold spaces).
fn has_row(out: &str, cells: &[&str]) -> bool {
    let (last, first) = cells.split_last().unwrap();
    out.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.len() > first.len()
            && words[..first.len()] == *first
            && line.trim_end().ends_with(last)
    })
}

/// `authsome import` in a project directory, as a person runs it.
fn import(t: &TestHome, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = t
        .cmd(&[&["import"], args].concat())
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OPENAI: &str = "sk-import-test-abcdefghijklmnopqrstuvwx";
const OPENAI_OTHER: &str = "sk-import-other-abcdefghijklmnopqrstu";
const GROQ: &str = "gsk_importtestabcdefghijklmnopqrstuv";
const MISTRAL: &str = "mistral-import-test-key-8Jd3Kq";

#[test]
fn import_reads_env_files_and_the_environment_and_never_prints_a_value() {
    let t = TestHome::new().env("MISTRAL_API_KEY", MISTRAL);
    t.run(&["init", "--key-backend", "file"], None).ok();
    let project = t.dir().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        project.join(".env"),
        format!(
            "# keys\nexport OPENAI_API_KEY=\"{OPENAI}\"\nANTHROPIC_API_KEY=not-an-anthropic-key # old\nUNRELATED=1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        project.join(".env.local"),
        format!("GROQ_API_KEY='{GROQ}'\nPERPLEXITY_API_KEY=${{PPLX_KEY}}\n"),
    )
    .unwrap();
    std::fs::write(
        project.join(".env.production"),
        format!("OPENAI_API_KEY={OPENAI}\n"),
    )
    .unwrap();

    // The dry run says what would happen, stores nothing, and exits 8
    // because the Anthropic key fails its pattern.
    let (code, out, err) = import(&t, &project, &["--dry-run"]);
    assert_eq!(code, 8, "{out}{err}");
    for row in [
        [
            "anthropic",
            "ANTHROPIC_API_KEY",
            ".env:3",
            "fails the key pattern: skipped",
        ],
        ["groq", "GROQ_API_KEY", ".env.local:1", "new: would import"],
        [
            "mistral",
            "MISTRAL_API_KEY",
            "environment",
            "new: would import",
        ],
        ["openai", "OPENAI_API_KEY", ".env:2", "new: would import"],
        [
            "perplexity",
            "PERPLEXITY_API_KEY",
            ".env.local:2",
            "refers to another variable: skipped",
        ],
    ] {
        assert!(has_row(&out, &row), "{row:?} missing:\n{out}");
    }
    assert!(out.contains("Nothing was stored (--dry-run)."), "{out}");
    assert!(!out.contains("UNRELATED"));
    let list: serde_json::Value =
        serde_json::from_str(&t.run(&["list", "--json"], None).ok().stdout).unwrap();
    assert!(
        list["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["connections"].as_array().unwrap().is_empty()),
        "the dry run stored something: {list}"
    );

    let (code, out, err) = import(&t, &project, &[]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(out.contains("new: imported"), "{out}");
    // Which lines can go, file by file; the files themselves are untouched.
    for line in [
        ".env.local:1  GROQ_API_KEY",
        ".env.production:1  OPENAI_API_KEY",
        ".env:2  OPENAI_API_KEY",
        "Also set in your environment: MISTRAL_API_KEY",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    assert!(std::fs::read_to_string(project.join(".env"))
        .unwrap()
        .contains(OPENAI));
    for (provider, key) in [("openai", OPENAI), ("groq", GROQ), ("mistral", MISTRAL)] {
        assert_eq!(t.secret(provider, "api_key"), key);
    }
    let audit = std::fs::read_to_string(t.home().join("audit.log")).unwrap();
    assert_eq!(audit.matches("\"event\":\"import\"").count(), 3, "{audit}");
    assert!(audit.contains("GROQ_API_KEY from .env.local:1"), "{audit}");

    // Again: the same keys are "same as stored"; a different one is skipped
    // until --force; two places that disagree are a conflict.
    std::fs::write(
        project.join(".env"),
        format!("OPENAI_API_KEY={OPENAI_OTHER}\n"),
    )
    .unwrap();
    std::fs::remove_file(project.join(".env.production")).unwrap();
    std::fs::write(project.join(".env.local"), format!("GROQ_API_KEY={GROQ}\n")).unwrap();
    let (code, out, _) = import(&t, &project, &[]);
    assert_eq!(code, 8);
    assert!(
        out.contains("same as stored") && out.contains("different from stored: skipped"),
        "{out}"
    );
    let (code, out, _) = import(&t, &project, &["--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("different: replaced"), "{out}");
    assert_eq!(t.secret("openai", "api_key"), OPENAI_OTHER);
    std::fs::write(
        project.join(".env.test"),
        format!("OPENAI_API_KEY={OPENAI}\n"),
    )
    .unwrap();
    let (code, out, _) = import(&t, &project, &["--force"]);
    assert_eq!(code, 8);
    assert!(out.contains("different values found: skipped"), "{out}");
    assert!(out.contains("pick one with --from"), "{out}");

    // --from reads only the files given, into the connection asked for.
    let (code, out, _) = import(
        &t,
        &project,
        &["--from", ".env.test", "--connection", "work"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(".env.test:1") && out.contains("new: imported"),
        "{out}"
    );
    assert!(!out.contains("MISTRAL"), "{out}");
    let got = t
        .run(
            &[
                "get",
                "openai",
                "--connection",
                "work",
                "--field",
                "api_key",
                "--show-secret",
            ],
            None,
        )
        .ok()
        .stdout;
    assert_eq!(got.trim(), OPENAI);

    // The stand-in `authsome run` gives its commands is never imported as
    // a key, even with --force and a provider without a key pattern.
    let stand_in = project.join("stand-in.env");
    std::fs::write(&stand_in, "MISTRAL_API_KEY=authsome-proxy-managed\n").unwrap();
    let (code, out, _) = import(&t, &project, &["--from", "stand-in.env", "--force"]);
    assert_eq!(code, 8, "{out}");
    assert!(
        out.contains("is the stand-in `authsome run` gives"),
        "{out}"
    );
    assert_eq!(t.secret("mistral", "api_key"), MISTRAL);

    // No value ever on screen.
    for key in [OPENAI, OPENAI_OTHER, GROQ, MISTRAL] {
        for (_, out, err) in [
            import(&t, &project, &["--dry-run"]),
            import(&t, &project, &["--json"]),
        ] {
            assert!(!out.contains(key) && !err.contains(key), "{out}{err}");
        }
    }
}

#[test]
fn backup_and_restore_move_every_profile_to_a_new_home_with_its_own_key() {
    use authsome_tests::fake_oauth::FakeOAuth;
    let old = TestHome::new();
    let b = authsome_tests::browser::follower(&old);
    let old = old.env("BROWSER", b.to_str().unwrap());
    old.run(&["init", "--key-backend", "file"], None).ok();
    old.login_key("openai", OPENAI);
    old.run(&["profile", "create", "work"], None).ok();
    old.run(
        &["--profile", "work", "login", "groq", "--stdin"],
        Some(GROQ),
    )
    .ok();
    register(&old, api_key_provider("acme", "api.acme.test"));
    old.run(&["login", "acme", "--stdin"], Some("acme-backup-key-6Tg2"))
        .ok();
    std::fs::write(
        old.home().join("rules.toml"),
        "[[rule]]\nprovider = \"acme\"\nmethods = [\"DELETE\"]\naction = \"deny\"\n",
    )
    .unwrap();
    // An OAuth connection with its refresh token and client secret.
    let fake = FakeOAuth::start();
    fake.state().switches.expires_in = Some(3600);
    let file = old.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    old.run(&["register", file.to_str().unwrap()], None).ok();
    old.run(
        &["login", "fake", "--client-id", "c", "--stdin"],
        Some("fake-client-secret"),
    )
    .ok();

    let backup = old.dir().join("moving.age");
    let backup_arg = backup.to_str().unwrap();
    let pass = "moving house passphrase";
    let out = old.run(&["backup", backup_arg, "--stdin"], Some(pass)).ok();
    assert!(
        out.stdout
            .contains("2 profiles, 4 connections, 1 client credentials, 2 custom providers"),
        "{}",
        out.stdout
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is private");
    // Not twice to the same file without --force, and never from an argument.
    old.run(&["backup", backup_arg, "--stdin"], Some(pass))
        .code(2);
    let fresh_path = old.dir().join("other.age");
    let short = old
        .run(
            &["backup", fresh_path.to_str().unwrap(), "--stdin"],
            Some("short"),
        )
        .code(2);
    assert!(
        short.stderr.contains("shorter than 10 characters"),
        "{}",
        short.stderr
    );
    assert!(!fresh_path.exists());
    old.run(&["backup", backup_arg, "--stdin", "--force"], Some(pass))
        .ok();
    // The old machine is left behind.
    old.run(&["daemon", "stop"], None).ok();

    // A new machine: an empty home with another master key.
    let new = TestHome::new();
    new.run(&["init", "--key-backend", "file"], None).ok();
    let wrong = new
        .run(
            &["restore", backup_arg, "--stdin"],
            Some("not the passphrase"),
        )
        .code(2);
    assert!(
        wrong.stderr.contains("wrong passphrase"),
        "{}",
        wrong.stderr
    );
    let cut = new.dir().join("cut.age");
    let bytes = std::fs::read(&backup).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let damaged = new
        .run(&["restore", cut.to_str().unwrap(), "--stdin"], Some(pass))
        .code(2);
    assert!(
        damaged.stderr.contains("damaged or truncated"),
        "{}",
        damaged.stderr
    );
    let list = new.run(&["list", "--json"], None).ok().stdout;
    assert!(
        !list.contains("\"connection\""),
        "a failed restore changed the home: {list}"
    );
    new.run(&["inspect", "acme"], None).code(4);
    assert!(!new.home().join("rules.toml").exists());
    // The passphrase comes from a prompt or --stdin, nothing else.
    let piped = new.run(&["restore", backup_arg], Some(pass)).code(2);
    assert!(piped.stderr.contains("--stdin"), "{}", piped.stderr);

    let out = new
        .run(&["restore", backup_arg, "--stdin"], Some(pass))
        .ok();
    assert!(
        out.stdout
            .contains("4 connections and 1 client credentials in 2 profiles, 2 custom providers"),
        "{}",
        out.stdout
    );
    assert_ne!(
        std::fs::read(new.home().join("master.key")).unwrap(),
        std::fs::read(old.home().join("master.key")).unwrap(),
        "the new home keeps its own key"
    );
    let get = |t: &TestHome, args: &[&str]| t.run(args, None).ok().stdout.trim().to_string();
    assert_eq!(new.secret("openai", "api_key"), OPENAI);
    assert_eq!(
        get(
            &new,
            &[
                "--profile",
                "work",
                "get",
                "groq",
                "--field",
                "api_key",
                "--show-secret"
            ]
        ),
        GROQ
    );
    assert_eq!(new.secret("acme", "api_key"), "acme-backup-key-6Tg2");
    assert!(new.home().join("rules.toml").exists());
    // The OAuth connection refreshes on the new machine with the refresh
    // token it brought (forced: the server "refused" the access token).
    let before = fake.state().refresh_calls;
    let token = new.secret("fake", "access_token");
    let client =
        authsome_client::Client::connect(&authsome_daemon::home::Home::at(new.home()), None, false)
            .unwrap();
    let refreshed: authsome_daemon::wire::ConnectionView = client
        .post(
            "/v1/connections/fake/default/refresh",
            &serde_json::json!({"rejected_sha256": authsome_daemon::secret::fingerprint(&token)}),
        )
        .unwrap();
    assert_eq!(
        fake.state().refresh_calls,
        before + 1,
        "one refresh on the new machine"
    );
    let fresh = refreshed
        .secrets
        .get("access_token")
        .cloned()
        .unwrap_or_default();
    // The refresh answer carries the access token, never the refresh token.
    assert_eq!(
        refreshed.secrets.get("refresh_token").map(String::as_str),
        Some("***")
    );
    assert_ne!(fresh, token);
    assert!(fake.state().issued.contains(&fresh));

    // Restoring again keeps what the home has, unless --force.
    let again = new
        .run(&["restore", backup_arg, "--stdin"], Some(pass))
        .ok();
    assert!(again.stdout.contains("0 connections"), "{}", again.stdout);
    assert!(
        again
            .stdout
            .contains("openai (default) is connected here already"),
        "{}",
        again.stdout
    );
    let forced = new
        .run(&["restore", backup_arg, "--stdin", "--force"], Some(pass))
        .ok();
    assert!(forced.stdout.contains("4 connections"), "{}", forced.stdout);

    // A file from a newer Authsome: a clear error, nothing changed.
    let newer = new.dir().join("newer.age");
    let payload =
        r#"{"format":"authsome-backup","version":99,"authsome_version":"9.0.0","created_at":"x"}"#;
    std::fs::write(&newer, age_encrypt(payload.as_bytes(), pass)).unwrap();
    let err = new
        .run(&["restore", newer.to_str().unwrap(), "--stdin"], Some(pass))
        .code(2);
    assert!(
        err.stderr
            .contains("made by a newer Authsome (9.0.0, backup format 99)"),
        "{}",
        err.stderr
    );
    // The age tool opens the file with the passphrase too.
    let opened = age_tool_decrypt(&new, &backup, pass);
    assert!(
        opened.starts_with("{\"format\":\"authsome-backup\""),
        "{opened:.80}"
    );
}

/// An age file encrypted with `pass`, made the way the `age` tool would.
fn age_encrypt(plain: &[u8], pass: &str) -> Vec<u8> {
    use std::io::Write;
    let enc =
        age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(pass.to_string()));
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

/// `age -d FILE` with the passphrase typed at its prompt (it reads only a
/// terminal, so it gets one through `script`).
fn age_tool_decrypt(t: &TestHome, file: &std::path::Path, pass: &str) -> String {
    use std::io::Write;
    let out_file = t.dir().join("opened.json");
    let mut child = t
        .program("script")
        .args(["-qec"])
        .arg(format!(
            "age -d -o {} {}",
            out_file.display(),
            file.display()
        ))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (bsdutils) and age are installed by make deps");
    std::thread::sleep(Duration::from_millis(500));
    writeln!(child.stdin.take().unwrap(), "{pass}").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    std::fs::read_to_string(&out_file).unwrap_or_default()
}

/// Another user who can write where the backup goes (`/tmp`) plants
/// symlinks to the person's files: under the temp name the old writer used
/// (`.<file>.<daemon pid>.tmp`), and as the backup's own name. The backup
/// never writes through either; the planted file stays as it was.
#[test]
fn a_backup_into_a_shared_directory_never_writes_through_a_planted_symlink() {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    t.login_key("openai", OPENAI);
    let pid = t.daemon_pid().expect("a daemon");
    let shared = t.dir().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let victim = t.dir().join("victim.txt");
    std::fs::write(&victim, "the person's own file\n").unwrap();
    let planted = shared.join(format!(".moving.age.{pid}.tmp"));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let backup = shared.join("moving.age");
    let pass = "shared directory passphrase";
    t.run(&["backup", backup.to_str().unwrap(), "--stdin"], Some(pass))
        .ok();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the person's own file\n"
    );
    assert!(std::fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    // The backup's own name made a symlink to the victim: --force replaces
    // the link, and the victim is untouched.
    std::fs::remove_file(&backup).unwrap();
    std::os::unix::fs::symlink(&victim, &backup).unwrap();
    t.run(
        &["backup", backup.to_str().unwrap(), "--stdin", "--force"],
        Some(pass),
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the person's own file\n"
    );
    assert!(!std::fs::symlink_metadata(&backup)
        .unwrap()
        .file_type()
        .is_symlink());
    let leftovers: Vec<_> = std::fs::read_dir(&shared)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") && !n.contains(&pid.to_string()))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// The payload inside an age file encrypted with `pass`.
fn age_decrypt(sealed: &[u8], pass: &str) -> serde_json::Value {
    use std::io::Read;
    let d = age::Decryptor::new(sealed).unwrap();
    let id = age::scrypt::Identity::new(age::secrecy::SecretString::from(pass.to_string()));
    let mut plain = Vec::new();
    d.decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

/// A backup someone else hands over, restored into a home in use: it may
/// not aim a connection at its own server to get this home's client secret
/// at the next refresh, and it does not loosen the home's settings (no
/// sandbox) unless --force says so.
#[test]
fn a_hostile_backup_cannot_redirect_a_refresh_or_loosen_settings() {
    use authsome_tests::fake_oauth::FakeOAuth;
    let t = TestHome::new();
    let b = authsome_tests::browser::follower(&t);
    let t = t.env("BROWSER", b.to_str().unwrap());
    t.run(&["init", "--key-backend", "file"], None).ok();
    let fake = FakeOAuth::start();
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    t.run(
        &["login", "fake", "--client-id", "c", "--stdin"],
        Some("fake-client-secret"),
    )
    .ok();
    let pass = "a passphrase from someone else";
    let honest = t.dir().join("honest.age");
    t.run(&["backup", honest.to_str().unwrap(), "--stdin"], Some(pass))
        .ok();
    let mut payload = age_decrypt(&std::fs::read(&honest).unwrap(), pass);

    // A new connection aimed at another server, without client credentials
    // of its own: it would be refreshed with this home's client secret.
    let profile = &mut payload["profiles"][0];
    let mut conn = profile["connections"][0].clone();
    conn["meta"]["connection"] = "x".into();
    conn["meta"]["base_url"] = "https://evil.example".into();
    profile["connections"] = serde_json::json!([conn]);
    profile["clients"] = serde_json::json!([]);
    let hostile = t.dir().join("hostile.age");
    std::fs::write(&hostile, age_encrypt(payload.to_string().as_bytes(), pass)).unwrap();
    let out = t
        .run(
            &["restore", hostile.to_str().unwrap(), "--stdin"],
            Some(pass),
        )
        .code(2);
    assert!(
        out.stderr.contains("names base URL https://evil.example"),
        "{}",
        out.stderr
    );
    t.run(&["get", "fake", "--connection", "x"], None).code(3);

    // Settings that turn the sandbox off: kept out of a home in use.
    let mut payload = age_decrypt(&std::fs::read(&honest).unwrap(), pass);
    payload["config"] = "[run]\ncontain = false\n".into();
    payload["rules"] = "[[rule]]\nprovider = \"*\"\naction = \"allow\"\n".into();
    std::fs::write(&hostile, age_encrypt(payload.to_string().as_bytes(), pass)).unwrap();
    let before = std::fs::read_to_string(t.home().join("config.toml")).unwrap();
    let out = t
        .run(
            &["restore", hostile.to_str().unwrap(), "--stdin"],
            Some(pass),
        )
        .ok();
    assert!(
        out.stdout
            .contains("settings: only restored into a new home"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("rules: only restored into a new home"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(t.home().join("config.toml")).unwrap(),
        before
    );
    assert!(!t.home().join("rules.toml").exists());
    // With --force the person asked for them.
    t.run(
        &["restore", hostile.to_str().unwrap(), "--stdin", "--force"],
        Some(pass),
    )
    .ok();
    let after = std::fs::read_to_string(t.home().join("config.toml")).unwrap();
    assert!(after.contains("contain = false"), "{after}");
    assert!(t.home().join("rules.toml").exists());
}
