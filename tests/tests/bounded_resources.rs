//! Slow or idle clients cannot hold the daemon's listeners: headers must
//! arrive within 10 s, and an idle keep-alive connection is closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use authsome_tests::runs::echo_home;

/// Sends `bytes`, then reads until the server closes the connection;
/// how long that took, or `None` if it stayed open for `within`.
fn closed_after(port: u16, bytes: &[u8], within: Duration) -> Option<Duration> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    s.write_all(bytes).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

#[test]
fn slow_headers_and_idle_keepalives_are_closed_on_the_api_and_the_proxy() {
    let (t, _echo) = echo_home();
    let status: serde_json::Value =
        serde_json::from_str(&t.run(&["daemon", "status", "--json"], None).ok().stdout).unwrap();
    let proxy = status["proxy_port"].as_u64().unwrap() as u16;
    // Three times the 10 s limit: a margin for a loaded machine.
    let limit = Duration::from_secs(30);
    let cases: Vec<(&str, u16, Vec<u8>)> = vec![
        (
            "API, slow headers",
            t.port,
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec(),
        ),
        (
            "proxy, slow headers",
            proxy,
            b"GET http://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n".to_vec(),
        ),
        (
            "API, idle keep-alive",
            t.port,
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", t.port).into_bytes(),
        ),
        ("proxy, idle connection", proxy, Vec::new()),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(name, port, bytes)| {
            std::thread::spawn(move || (name, closed_after(port, &bytes, limit)))
        })
        .collect();
    for h in handles {
        let (name, closed) = h.join().unwrap();
        let took = closed.unwrap_or_else(|| panic!("{name}: still open after {limit:?}"));
        assert!(
            took >= Duration::from_secs(5),
            "{name}: closed too early ({took:?})"
        );
    }
    // The daemon still serves.
    t.run(&["list"], None).ok();
}
