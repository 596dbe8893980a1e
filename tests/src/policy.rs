//! Helpers for the run-policy tests: a home with two API-key providers on
//! recording upstreams, and runs whose requests wait for the person.

use crate::raw_upstream::{parse_all, Framing, RawUpstream};
use crate::runs::{api_key_provider, register};
use crate::{eventually, TestHome};

/// `raw`'s key.
pub const RAW_KEY: &str = "raw-secret-key-7Hq2Zp";
/// `other`'s key.
pub const OTHER_KEY: &str = "other-secret-key-4Kd9Wm";

/// A home with providers `raw` and `other`, each on its own recording upstream.
pub fn home() -> (TestHome, RawUpstream, RawUpstream) {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    let raw = RawUpstream::start("127.0.0.5".parse().unwrap());
    let other = RawUpstream::start("127.0.0.6".parse().unwrap());
    register(&t, api_key_provider("raw", &raw.host_port()));
    register(&t, api_key_provider("other", &other.host_port()));
    t.login_key("raw", RAW_KEY);
    t.login_key("other", OTHER_KEY);
    (t, raw, other)
}

/// Every request an upstream received: (request line, `X-Api-Key` values).
pub fn requests(up: &RawUpstream) -> Vec<(String, Vec<String>)> {
    up.connections()
        .iter()
        .flat_map(|bytes| parse_all(bytes, Framing::TransferEncodingFirst).0)
        .map(|p| {
            (
                p.head.lines().next().unwrap_or("").to_string(),
                p.header("x-api-key"),
            )
        })
        .collect()
}

/// `authsome run FLAGS -- sh -c SCRIPT`.
pub fn run(t: &TestHome, flags: &[&str], script: &str) -> crate::Run {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    t.run(&args, None)
}

/// Starts `authsome run FLAGS` with a command that sends one request to
/// `raw` for `path` and writes curl's answer and status to `answer`; returns
/// the run id once the request waits.
pub fn held_run(
    t: &TestHome,
    raw: &RawUpstream,
    flags: &[&str],
    path: &str,
) -> (std::process::Child, String, std::path::PathBuf) {
    let answer = t.dir().join("answer");
    let child = t
        .cmd(
            &[
                &["run"][..],
                flags,
                &[
                    "--",
                    "sh",
                    "-c",
                    &format!(
                        "curl -sS -w ' %{{http_code}}' http://{}{path} > {}.tmp; mv {1}.tmp {1}",
                        raw.host_port(),
                        answer.display()
                    ),
                ],
            ]
            .concat(),
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut runs = serde_json::Value::Null;
    assert!(
        eventually(20, || {
            runs = serde_json::from_str(&t.run(&["runs", "--json"], None).ok().stdout).unwrap();
            runs[0]["pending"][0]["provider"] == "raw"
        }),
        "no pending approval: {runs}"
    );
    let pending = &runs[0]["pending"][0];
    assert_eq!(
        (pending["method"].as_str(), pending["path"].as_str()),
        (Some("GET"), Some(path))
    );
    (child, runs[0]["id"].as_str().unwrap().to_string(), answer)
}
