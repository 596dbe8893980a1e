//! `authsome-echo DIR`: an HTTPS echo server on 127.0.0.2 (its CA written to
//! DIR) and a plain one, for the benchmark scripts. Prints one JSON line
//! with their addresses, then serves until killed.

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: authsome-echo DIR"));
    let ip: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let https = authsome_tests::echo::https(&dir, ip, "bench");
    let http = authsome_tests::echo::http(ip);
    println!(
        "{}",
        serde_json::json!({"https": https.host_port(), "http": http.host_port(), "ca_file": https.ca_file.unwrap()})
    );
    loop {
        std::thread::park();
    }
}
