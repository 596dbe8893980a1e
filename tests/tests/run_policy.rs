//! What a run may use: `--allow`, `--read-only` and `--only-providers`,
//! through the real proxy, against upstreams that record every byte they
//! receive (plain HTTP on loopback, where the proxy adds credentials).

use authsome_tests::eventually;
use authsome_tests::policy::{held_run, home, requests, run, OTHER_KEY, RAW_KEY};
use authsome_tests::raw_upstream::RawUpstream;
use authsome_tests::runs::{api_key_provider, register};

#[test]
fn allow_gives_credentials_to_the_allowed_connection_only_and_logs_the_other() {
    let (t, raw, other) = home();
    let out = run(
        &t,
        &["--allow", "raw"],
        &format!(
            "curl -sS http://{}/a; echo; curl -sS http://{}/b; echo; env",
            raw.host_port(),
            other.host_port()
        ),
    )
    .ok();
    assert!(eventually(10, || requests(&other).len() == 1));
    assert_eq!(
        requests(&raw),
        vec![("GET /a HTTP/1.1".into(), vec![RAW_KEY.to_string()])]
    );
    assert_eq!(
        requests(&other),
        vec![("GET /b HTTP/1.1".into(), vec![])],
        "a provider left out of --allow passes through untouched"
    );
    assert!(out.stdout.contains("RAW_API_KEY="), "{}", out.stdout);
    assert!(
        !out.stdout.contains("OTHER_API_KEY="),
        "no placeholder for a provider the run may not use: {}",
        out.stdout
    );
    let log = t.run(&["log", "-n", "50", "--json"], None).ok().stdout;
    let not_allowed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"event\":\"not_allowed\""))
        .collect();
    assert_eq!(not_allowed.len(), 1, "{log}");
    assert!(not_allowed[0].contains("\"provider\":\"other\""), "{log}");
    assert!(!log.contains(OTHER_KEY) && !log.contains(RAW_KEY));

    // Names that do not exist are refused before anything runs.
    run(&t, &["--allow", "nosuch"], "true").code(4);
    run(&t, &["--allow", "raw=nope"], "true").code(3);
}

#[test]
fn read_only_injects_for_get_and_refuses_a_post_before_it_reaches_the_provider() {
    let (t, raw, _other) = home();
    let out = run(
        &t,
        &["--read-only"],
        &format!(
            "curl -sS http://{0}/get; echo; curl -sS -w ' %{{http_code}}' -X POST -d hello http://{0}/post",
            raw.host_port()
        ),
    )
    .ok();
    assert!(
        out.stdout.contains(" 403"),
        "the POST is answered 403: {}",
        out.stdout
    );
    let body = out.stdout.lines().last().unwrap().trim_end_matches(" 403");
    let answer: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(answer["error"], "denied_by_policy");
    assert_eq!(answer["provider"], "raw");
    assert_eq!(answer["connection"], "default");
    assert!(answer["reason"].as_str().unwrap().contains("read-only"));
    assert!(eventually(10, || !requests(&raw).is_empty()));
    assert_eq!(
        requests(&raw),
        vec![("GET /get HTTP/1.1".into(), vec![RAW_KEY.to_string()])],
        "the POST never reached the provider"
    );
    let log = t.run(&["log", "-n", "50", "--json"], None).ok().stdout;
    assert!(log.contains("\"event\":\"denied_by_policy\""), "{log}");
}

#[test]
fn only_providers_refuses_every_other_host_and_still_serves_the_providers() {
    let (t, raw, _other) = home();
    let stranger = RawUpstream::start("127.0.0.7".parse().unwrap());
    let out = run(
        &t,
        &["--only-providers"],
        &format!(
            "curl -sS -o /dev/null -w '%{{http_code}}\\n' http://{0}/plain; \
             curl -sS -o /dev/null https://{0}/tunnel 2>&1; echo; \
             curl -sS http://{1}/ok",
            stranger.host_port(),
            raw.host_port()
        ),
    )
    .ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("403"), "{}", out.stdout);
    assert!(
        lines.next().is_some_and(|l| l.contains("403")),
        "a CONNECT to another host gets 403: {}",
        out.stdout
    );
    assert!(eventually(10, || !requests(&raw).is_empty()));
    assert_eq!(
        requests(&raw),
        vec![("GET /ok HTTP/1.1".into(), vec![RAW_KEY.to_string()])]
    );
    assert!(
        stranger.connections().is_empty(),
        "nothing reached a host that is not a provider"
    );
}

#[test]
fn allow_never_hands_one_providers_credential_to_anothers_path_over_tls() {
    use authsome_tests::runs::{echo_home, headers_of, KEY};
    let (t, echo) = echo_home();
    // `deep` serves a path of echo's host: its requests are deep's, not echo's.
    register(
        &t,
        api_key_provider("deep", &format!("{}/deep", echo.host_port())),
    );
    t.login_key("deep", "deep-secret-key-8Vn3Tx");
    let get = |path: &str| {
        t.run(
            &[
                "run",
                "--allow",
                "echo",
                "--",
                "curl",
                "-sS",
                "--fail",
                &echo.url(path),
            ],
            None,
        )
        .ok()
        .stdout
    };
    assert_eq!(headers_of(&get("/v1/models"))["x-api-key"], KEY);
    let deep = headers_of(&get("/deep/x"));
    assert!(
        deep.get("x-api-key").is_none(),
        "deep's path got a credential in a run that may use only echo: {deep}"
    );
    let log = t.run(&["log", "-n", "50", "--json"], None).ok().stdout;
    assert!(
        log.lines()
            .any(|l| l.contains("\"event\":\"not_allowed\"") && l.contains("\"provider\":\"deep\"")),
        "{log}"
    );
}

#[test]
fn read_only_refuses_a_post_to_a_providers_host_even_where_no_path_matches() {
    use authsome_tests::runs::{echo_home_with_prefix, headers_of, KEY};
    let (t, echo) = echo_home_with_prefix("/api");
    let out = t
        .run(
            &[
                "run",
                "--read-only",
                "--",
                "sh",
                "-c",
                &format!(
                    "curl -sS --fail {0}; echo; curl -sS -w ' %{{http_code}}' -X POST -d x {1}; echo; \
                     curl -sS -w ' %{{http_code}}' -X post -d x {0}",
                    echo.url("/api/read"),
                    echo.url("/elsewhere"),
                ),
            ],
            None,
        )
        .ok();
    assert_eq!(headers_of(&out.stdout)["x-api-key"], KEY);
    let answers: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(answers.len(), 2, "{}", out.stdout);
    for answer in answers {
        assert!(
            answer.ends_with(" 403") && answer.contains("denied_by_policy"),
            "a write to the provider's host over TLS is refused: {answer}"
        );
    }
}

#[test]
fn each_proxied_request_leaves_one_audit_event_with_method_host_and_path_but_no_query() {
    use authsome_tests::runs::echo_home;
    let (t, echo) = echo_home();
    t.run(
        &[
            "run",
            "--",
            "sh",
            "-c",
            &format!(
                "curl -sS --fail '{}' >/dev/null && curl -sS --fail -X POST -d hello '{}' >/dev/null",
                echo.url("/v1/models?token=query-value-91xq"),
                echo.url("/v1/things")
            ),
        ],
        None,
    )
    .ok();
    let all = t.run(&["log", "-n", "200", "--json"], None).ok().stdout;
    assert!(
        !all.contains("query-value-91xq"),
        "a query value in the audit log: {all}"
    );
    let run_id = all
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "run")
        .and_then(|e| e["run"].as_str().map(str::to_string))
        .expect("the run event names its run");
    let events: Vec<serde_json::Value> = t
        .run(&["log", "--run", &run_id, "--json"], None)
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let requests: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "request").collect();
    assert_eq!(requests.len(), 2, "{events:?}");
    for (e, (method, path)) in requests
        .iter()
        .zip([("GET", "/v1/models"), ("POST", "/v1/things")])
    {
        let r = &e["request"];
        assert_eq!(
            (r["method"].as_str(), r["path"].as_str()),
            (Some(method), Some(path)),
            "{e}"
        );
        assert_eq!(r["host"], echo.addr.ip().to_string());
        assert_eq!(r["http_status"], 200);
        assert!(r["bytes"].as_u64().unwrap() > 0, "{e}");
        assert_eq!(e["provider"], "echo");
        assert_eq!(e["run"], run_id.as_str());
    }
    assert_eq!(
        events.last().unwrap()["event"],
        "run",
        "the run's end comes last"
    );
    // The human form says the same in one line each.
    let text = t.run(&["log", "--run", &run_id], None).ok().stdout;
    assert!(
        text.contains(&format!("GET {}/v1/models -> 200", echo.addr.ip())),
        "{text}"
    );

    // `activity = false` in [proxy] turns the per-request events off.
    t.append_config("activity = false\n");
    t.run(&["daemon", "stop"], None).ok();
    t.run(
        &[
            "run",
            "--",
            "curl",
            "-sS",
            "--fail",
            &echo.url("/v1/models"),
        ],
        None,
    )
    .ok();
    let all = t.run(&["log", "-n", "500", "--json"], None).ok().stdout;
    assert_eq!(
        all.lines()
            .filter(|l| l.contains("\"event\":\"request\""))
            .count(),
        2,
        "{all}"
    );
}

#[test]
fn authsome_runs_lists_live_runs_with_what_each_may_use() {
    let (t, raw, _other) = home();
    assert_eq!(t.run(&["runs"], None).ok().stdout.trim(), "No runs.");
    let ready = t.dir().join("ready");
    let mut child = t
        .cmd(&[
            "run",
            "--allow",
            "raw",
            "--read-only",
            "--",
            "sh",
            "-c",
            &format!(
                "curl -sS http://{}/x >/dev/null; touch {}; exec sleep 60",
                raw.host_port(),
                ready.display()
            ),
        ])
        .spawn()
        .unwrap();
    assert!(eventually(20, || ready.exists()));
    let mut runs = serde_json::Value::Null;
    assert!(eventually(10, || {
        runs = serde_json::from_str(&t.run(&["runs", "--json"], None).ok().stdout).unwrap();
        runs[0]["pid"].is_u64()
    }));
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    let r = &runs[0];
    assert_eq!(r["command"], "sh");
    assert_eq!(r["allow"], serde_json::json!(["raw"]));
    assert_eq!(r["read_only"], true);
    assert_eq!(r["only_providers"], false);
    assert_eq!(r["injected"]["raw"], 1);
    let table = t.run(&["runs"], None).ok().stdout;
    assert!(
        table.contains(r["id"].as_str().unwrap())
            && table.contains("raw=1")
            && table.contains("raw, read-only"),
        "{table}"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert!(eventually(20, || t.run(&["runs"], None).ok().stdout.trim()
        == "No runs."));
}

#[test]
fn an_asked_request_waits_until_approved_and_then_carries_the_credential() {
    let (t, raw, _other) = home();
    let (mut child, run_id, answer) = held_run(&t, &raw, &["--ask"], "/held");
    assert!(
        requests(&raw).is_empty(),
        "nothing reaches the provider while it waits"
    );
    let out = t.run(&["approve", &run_id, "raw"], None).ok();
    assert!(out.stdout.contains("Allowed raw"), "{}", out.stdout);
    assert!(child.wait().unwrap().success());
    assert!(std::fs::read_to_string(&answer).unwrap().ends_with(" 200"));
    assert_eq!(
        requests(&raw),
        vec![("GET /held HTTP/1.1".into(), vec![RAW_KEY.to_string()])]
    );
    let log = t
        .run(&["log", "--run", &run_id, "--json"], None)
        .ok()
        .stdout;
    assert!(
        log.contains("\"event\":\"approval\"") && log.contains("allowed for this run"),
        "{log}"
    );
}

#[test]
fn a_denied_request_gets_403_and_never_reaches_the_provider() {
    let (t, raw, _other) = home();
    let (mut child, run_id, answer) = held_run(&t, &raw, &["--ask"], "/held");
    t.run(&["deny", &run_id, "raw"], None).ok();
    child.wait().unwrap();
    let got = std::fs::read_to_string(&answer).unwrap();
    assert!(
        got.ends_with(" 403") && got.contains("denied by the person"),
        "{got}"
    );
    assert!(
        requests(&raw).is_empty(),
        "the denied request reached the provider"
    );
    // Unknown runs are refused plainly.
    t.run(&["approve", "run-nope", "raw"], None).code(1);
}

#[test]
fn max_requests_gives_credentials_to_the_first_n_and_429_to_the_rest() {
    let (t, raw, _other) = home();
    let out = run(
        &t,
        &["--max-requests", "2"],
        &format!(
            "for i in 1 2 3; do curl -sS -w ' %{{http_code}}\\n' http://{}/n$i; done",
            raw.host_port()
        ),
    )
    .ok();
    let last = out.stdout.lines().last().unwrap();
    assert!(last.ends_with(" 429"), "{}", out.stdout);
    let body: serde_json::Value = serde_json::from_str(last.trim_end_matches(" 429")).unwrap();
    assert_eq!(body["error"], "denied_by_policy");
    assert!(body["reason"].as_str().unwrap().contains("--max-requests"));
    assert!(eventually(10, || requests(&raw).len() == 2));
    assert_eq!(
        requests(&raw),
        vec![
            ("GET /n1 HTTP/1.1".into(), vec![RAW_KEY.to_string()]),
            ("GET /n2 HTTP/1.1".into(), vec![RAW_KEY.to_string()])
        ],
        "the third request never reached the provider"
    );
}

#[test]
fn a_command_trying_host_after_host_cannot_fill_the_audit_log() {
    let (t, _raw, _other) = home();
    // 300 refused hosts (one curl, a port range) in an --only-providers run.
    run(
        &t,
        &["--only-providers"],
        "curl -s 'http://127.0.0.9:[2000-2299]/x' > /dev/null; true",
    )
    .ok();
    let log = t.run(&["log", "-n", "5000", "--json"], None).ok().stdout;
    let denied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"event\":\"denied_by_policy\""))
        .collect();
    assert_eq!(
        denied.len(),
        257,
        "256 refusals and one notice: {}",
        denied.len()
    );
    assert!(
        denied.last().unwrap().contains("are not recorded"),
        "{}",
        denied.last().unwrap()
    );
}
