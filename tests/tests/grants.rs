//! Standing rules (`rules.toml`), approvals once / for the run / as a
//! lease, and the ask timeout, through the real proxy against upstreams
//! that record every byte they receive.

use authsome_tests::policy::{held_run, home, requests, run, RAW_KEY};
use authsome_tests::{eventually, TestHome};

fn rules(t: &TestHome, text: &str) {
    std::fs::write(t.home().join("rules.toml"), text).unwrap();
}

/// Held requests wait at most `secs` (the daemon restarts to read it).
fn ask_timeout(t: &TestHome, secs: u64) {
    t.append_config(&format!("[proxy]\nask_timeout = {secs}\n"));
    t.run(&["daemon", "stop"], None).ok();
}

fn pending(t: &TestHome) -> serde_json::Value {
    let runs: serde_json::Value =
        serde_json::from_str(&t.run(&["runs", "--json"], None).ok().stdout).unwrap();
    runs[0]["pending"][0].clone()
}

fn log(t: &TestHome) -> String {
    t.run(&["log", "-n", "100", "--json"], None).ok().stdout
}

fn answer(t: &TestHome, i: usize) -> String {
    let f = t.dir().join(format!("answer-{i}"));
    assert!(eventually(20, || f.exists()), "no answer {i}");
    std::fs::read_to_string(f).unwrap()
}

#[test]
fn a_rule_that_denies_a_path_answers_403_and_the_provider_never_sees_it() {
    let (t, raw, _other) = home();
    rules(
        &t,
        r#"
        [[rule]]
        provider = "raw"
        methods = ["POST"]
        paths = ["/admin/**"]
        action = "deny"
        "#,
    );
    let out = run(
        &t,
        &[],
        &format!(
            "curl -sS -X POST -w ' %{{http_code}}' http://{0}/Admin/./users?x=1; echo; \
             curl -sS -X POST http://{0}/public",
            raw.host_port()
        ),
    )
    .ok();
    assert!(
        out.stdout.contains("\"error\":\"denied_by_policy\"")
            && out
                .stdout
                .contains("rule 1 in rules.toml denies POST /Admin/users")
            && out.stdout.contains(" 403"),
        "{}",
        out.stdout
    );
    assert_eq!(
        requests(&raw),
        vec![("POST /public HTTP/1.1".into(), vec![RAW_KEY.to_string()])],
        "the denied POST never reached the provider; another path went with the key"
    );
    let log = log(&t);
    assert!(
        log.contains("\"event\":\"denied_by_policy\"") && log.contains("rule 1 in rules.toml"),
        "{log}"
    );
}

#[test]
fn flags_narrow_the_rules_and_never_widen_them() {
    let (t, raw, _other) = home();
    rules(
        &t,
        r#"
        [[rule]]
        provider = "raw"
        paths = ["/private/**"]
        action = "deny"
        "#,
    );
    let out = run(
        &t,
        &["--allow", "raw", "--read-only"],
        &format!(
            "curl -sS http://{0}/private/x; echo; curl -sS -X POST http://{0}/public; echo; \
             curl -sS http://{0}/public",
            raw.host_port()
        ),
    )
    .ok();
    assert!(
        out.stdout
            .contains("rule 1 in rules.toml denies GET /private/x"),
        "--allow does not lift a rule's deny: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("this run is read-only"),
        "--read-only refuses what the rules allow: {}",
        out.stdout
    );
    assert_eq!(
        requests(&raw),
        vec![("GET /public HTTP/1.1".into(), vec![RAW_KEY.to_string()])]
    );
}

#[test]
fn a_rule_that_asks_holds_the_request_and_allow_once_lets_only_that_one_go() {
    let (t, raw, _other) = home();
    rules(
        &t,
        "[[rule]]\nprovider = \"raw\"\ncommand = \"s?\"\naction = \"ask\"\n",
    );
    // Two requests held at once: the one shown is the first; Allow once
    // lets that one go, and then the other is shown.
    let answers: Vec<_> = (0..2)
        .map(|i| t.dir().join(format!("answer-{i}")))
        .collect();
    let mut child = t
        .cmd(&[
            "run",
            "--",
            "sh",
            "-c",
            &format!(
                "curl -sS -w ' %{{http_code}}' http://{0}/one > {1}.tmp && mv {1}.tmp {1} & \
                 sleep 1; curl -sS -w ' %{{http_code}}' http://{0}/two > {2}.tmp && mv {2}.tmp {2} & wait",
                raw.host_port(),
                answers[0].display(),
                answers[1].display()
            ),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut p = serde_json::Value::Null;
    assert!(eventually(20, || {
        p = pending(&t);
        p["path"] == "/one"
    }));
    assert_eq!(p["asked_by"], "rule 1 in rules.toml");
    assert_eq!(p["command"], "sh");
    assert_eq!(
        p["cwd"].as_str(),
        std::env::current_dir().unwrap().to_str(),
        "{p}"
    );
    // Both are held before the answer.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(requests(&raw).is_empty());
    assert_eq!(pending(&t)["path"], "/one");
    let runs: serde_json::Value =
        serde_json::from_str(&t.run(&["runs", "--json"], None).ok().stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let out = t.run(&["approve", "--once", &id, "raw"], None).ok();
    assert!(out.stdout.contains("Allowed raw once"), "{}", out.stdout);
    assert!(answer(&t, 0).ends_with(" 200"));
    assert!(
        eventually(20, || pending(&t)["path"] == "/two"),
        "the second request is not the one shown now"
    );
    assert!(
        !answers[1].exists(),
        "Allow once let the second request go too"
    );
    t.run(&["deny", &id, "raw"], None).ok();
    assert!(answer(&t, 1).ends_with(" 403"));
    child.wait().unwrap();
    assert_eq!(
        requests(&raw),
        vec![("GET /one HTTP/1.1".into(), vec![RAW_KEY.to_string()])]
    );
    // With nothing waiting, --once has nothing to answer.
    let mut idle = t
        .cmd(&["run", "--", "sleep", "3"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut id2 = String::new();
    assert!(eventually(20, || {
        let runs: serde_json::Value =
            serde_json::from_str(&t.run(&["runs", "--json"], None).ok().stdout).unwrap();
        id2 = runs[0]["id"].as_str().unwrap_or_default().to_string();
        !id2.is_empty()
    }));
    let out = t.run(&["approve", "--once", &id2, "raw"], None);
    assert!(idle.wait().unwrap().success());
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is waiting"), "{}", out.stderr);
}

#[test]
fn a_lease_outlives_the_run_for_its_command_and_ends_when_revoked() {
    let (t, raw, _other) = home();
    ask_timeout(&t, 4);
    rules(&t, "[[rule]]\nprovider = \"raw\"\naction = \"ask\"\n");
    let (mut child, id, answer) = held_run(&t, &raw, &[], "/first");
    let out = t.run(&["approve", "--for", "1h", &id, "raw"], None).ok();
    assert!(
        out.stdout.contains("Allowed raw for command \"sh\" until"),
        "{}",
        out.stdout
    );
    child.wait().unwrap();
    assert!(std::fs::read_to_string(&answer).unwrap().ends_with(" 200"));

    // A later run of the same command is not asked: its request goes at once.
    run(
        &t,
        &[],
        &format!("curl -sS --fail http://{}/second", raw.host_port()),
    )
    .ok();
    let grants: serde_json::Value =
        serde_json::from_str(&t.run(&["grants", "--json"], None).ok().stdout).unwrap();
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(
        (
            grants[0]["provider"].as_str(),
            grants[0]["command"].as_str()
        ),
        (Some("raw"), Some("sh"))
    );
    // Another command is asked (and, with no answer, denied in 4 s).
    let other = t
        .run(
            &[
                "run",
                "--",
                "bash",
                "-c",
                &format!("curl -sS http://{}/third", raw.host_port()),
            ],
            None,
        )
        .ok();
    assert!(
        other.stdout.contains("no answer within 4 s"),
        "{}",
        other.stdout
    );

    // Revoked, the lease asks again.
    let gid = grants[0]["id"].as_str().unwrap();
    t.run(&["grants", "revoke", gid], None).ok();
    assert_eq!(t.run(&["grants"], None).ok().stdout.trim(), "No leases.");
    let again = run(
        &t,
        &[],
        &format!("curl -sS http://{}/fourth", raw.host_port()),
    )
    .ok();
    assert!(
        again.stdout.contains("no answer within 4 s"),
        "{}",
        again.stdout
    );
    let lines: Vec<String> = requests(&raw).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines, ["GET /first HTTP/1.1", "GET /second HTTP/1.1"]);
    let log = log(&t);
    assert!(
        log.contains("allowed by lease") && log.contains("\"event\":\"grant_revoked\""),
        "{log}"
    );
}

#[test]
fn a_held_request_nobody_answers_is_denied_when_the_ask_timeout_passes() {
    let (t, raw, _other) = home();
    ask_timeout(&t, 2);
    let started = std::time::Instant::now();
    let out = run(
        &t,
        &["--ask"],
        &format!(
            "curl -sS -w ' %{{http_code}}' http://{0}/x; echo; curl -sS -w ' %{{http_code}}' http://{0}/y",
            raw.host_port()
        ),
    )
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    for l in lines {
        // Each request is asked about and times out on its own: the first
        // timing out does not answer for the rest of the run.
        assert!(
            l.contains("no answer within 2 s") && l.ends_with(" 403"),
            "{}",
            out.stdout
        );
    }
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    assert!(requests(&raw).is_empty());
    assert!(log(&t).contains("denied: no answer in time"));
}

#[test]
fn a_broken_rules_file_stops_the_run_before_the_command_starts() {
    let (t, _raw, _other) = home();
    rules(
        &t,
        "[[rule]]\nprovider = \"raw\"\naction = \"allow\"\n[[rule]]\nprovider = \"rwa\"\naction = \"deny\"\n",
    );
    let marker = t.dir().join("ran");
    let out = t.run(&["run", "--", "touch", marker.to_str().unwrap()], None);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("rules.toml: rule 2: no provider named \"rwa\""),
        "{}",
        out.stderr
    );
    assert!(!marker.exists(), "the command ran");
}
