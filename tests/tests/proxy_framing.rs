//! Request smuggling through the run proxy, against a live upstream that
//! records every byte it receives. Requests with conflicting or obfuscated
//! framing are sent with a live run's valid credentials to a provider on
//! loopback plain HTTP (where the proxy injects the credential). The test
//! then reads what the upstream received the way a Content-Length-first and
//! a Transfer-Encoding-first server would, and checks both see the same
//! requests, each with one framing and the credential once, and never the
//! request smuggled behind another.

use std::io::{Read, Write};
use std::time::Duration;

use authsome_tests::raw_upstream::{parse_all, Framing, RawUpstream};
use authsome_tests::runs::{api_key_provider, register, LiveRun, KEY};
use authsome_tests::{contains_bytes, eventually, TestHome};

/// Sends `request` on a fresh connection to the proxy and returns all it
/// answers until it closes (or 5 s pass).
fn exchange(port: u16, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn smuggled_requests_never_reach_the_upstream_and_each_request_arrives_with_one_framing() {
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    let up = RawUpstream::start("127.0.0.5".parse().unwrap());
    let hp = up.host_port();
    register(&t, api_key_provider("raw", &hp));
    t.login_key("raw", KEY);
    let run = LiveRun::start(&t);
    let auth = &run.auth;
    let smuggled = format!(
        "GET http://{hp}/smuggled HTTP/1.1\r\nHost: {hp}\r\nProxy-Authorization: {auth}\r\nX-Case: smuggled\r\n\r\n"
    );
    let inner = format!("GET /smuggled HTTP/1.1\r\nHost: {hp}\r\nX-Case: smuggled\r\n\r\n");
    let head = |case: &str, extra: &str| {
        format!(
            "POST http://{hp}/{case} HTTP/1.1\r\nHost: {hp}\r\nProxy-Authorization: {auth}\r\nX-Case: {case}\r\n{extra}"
        )
    };
    // (case, request, status the client gets, whether the upstream sees it)
    let cases: Vec<(&str, String, &str, bool)> = vec![
        (
            "cl-te",
            format!(
                "{}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
                head("cl-te", "")
            ),
            "200",
            true,
        ),
        (
            "te-cl",
            format!(
                "{}Transfer-Encoding: chunked\r\nContent-Length: 4\r\nConnection: close\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n{smuggled}",
                head("te-cl", ""),
                inner.len()
            ),
            "200",
            true,
        ),
        (
            "conn-cl",
            format!(
                "{}Connection: content-length, close\r\nContent-Length: {}\r\n\r\n{inner}{smuggled}",
                head("conn-cl", ""),
                inner.len()
            ),
            "200",
            true,
        ),
        (
            "xchunked",
            format!(
                "{}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}",
                head("xchunked", "")
            ),
            "400",
            false,
        ),
        (
            "sp-colon",
            format!(
                "{}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{smuggled}",
                head("sp-colon", "")
            ),
            "400",
            false,
        ),
        (
            "two-cl",
            format!(
                "{}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello{smuggled}",
                head("two-cl", "")
            ),
            "400",
            false,
        ),
    ];
    let mut expected = vec!["after".to_string()];
    for (case, request, status, reaches) in &cases {
        let answer = exchange(run.port, request.as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{case}: {answer}"
        );
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{case}: the smuggled request was answered: {answer}"
        );
        if *reaches {
            expected.push(case.to_string());
        }
    }
    // A clean request afterwards, which may ride a pooled upstream
    // connection an earlier case used.
    let answer = exchange(
        run.port,
        format!(
            "GET http://{hp}/after HTTP/1.1\r\nHost: {hp}\r\nProxy-Authorization: {auth}\r\nX-Case: after\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    let cases_seen = || -> Vec<String> {
        let mut seen = Vec::new();
        for bytes in up.connections() {
            for p in parse_all(&bytes, Framing::TransferEncodingFirst).0 {
                seen.extend(p.header("x-case"));
            }
        }
        seen.sort();
        seen
    };
    expected.sort();
    assert!(
        eventually(10, || cases_seen() == expected),
        "the upstream saw {:?}, expected {expected:?}",
        cases_seen()
    );
    for bytes in up.connections() {
        let text = String::from_utf8_lossy(&bytes);
        let (te, te_left) = parse_all(&bytes, Framing::TransferEncodingFirst);
        let (cl, cl_left) = parse_all(&bytes, Framing::ContentLengthFirst);
        assert_eq!(
            (&te, te_left),
            (&cl, cl_left),
            "a Content-Length-first and a Transfer-Encoding-first server read different requests: {text}"
        );
        assert_eq!(te_left, 0, "bytes no request accounts for: {text}");
        for p in &te {
            assert!(
                p.header("content-length").is_empty() || p.header("transfer-encoding").is_empty(),
                "both framings forwarded: {}",
                p.head
            );
            assert!(p.header("content-length").len() <= 1, "{}", p.head);
            assert!(p.header("proxy-authorization").is_empty(), "{}", p.head);
            assert_eq!(
                p.header("x-api-key"),
                vec![KEY.to_string()],
                "the credential, once: {}",
                p.head
            );
            assert!(
                !contains_bytes(&p.body, KEY.as_bytes()),
                "a credential inside a body: {text}"
            );
        }
        assert!(
            !contains_bytes(&bytes, run.password.as_bytes()),
            "the run's proxy credential reached the upstream: {text}"
        );
    }
}
