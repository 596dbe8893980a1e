//! `authsome-bench-proxy`: HTTPS keep-alive load against one URL, directly
//! or through an HTTP proxy (CONNECT), with N connections for S seconds.
//! Prints one JSON line: requests, requests per second, p50 and p99 latency.
//!
//!   authsome-bench-proxy URL CONNECTIONS SECONDS CA_FILE [PROXY_URL]
//!
//! Run it under `authsome run` and pass "$HTTPS_PROXY" and "$SSL_CERT_FILE"
//! to measure the proxy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

async fn connect(
    target: &url::Url,
    proxy: Option<&url::Url>,
    tls: Arc<rustls::ClientConfig>,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let host = target.host_str().unwrap().to_string();
    let port = target.port().unwrap_or(443);
    let tcp = match proxy {
        None => tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .unwrap(),
        Some(p) => tokio::net::TcpStream::connect((p.host_str().unwrap(), p.port().unwrap()))
            .await
            .unwrap(),
    };
    tcp.set_nodelay(true).unwrap();
    let server_name = ServerName::try_from(host.clone()).unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = match proxy {
        None => connector.connect(server_name, tcp).await.unwrap(),
        Some(p) => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn.with_upgrades());
            let creds = format!("{}:{}", p.username(), p.password().unwrap_or(""));
            let req = Request::connect(format!("{host}:{port}"))
                .header("host", format!("{host}:{port}"))
                .header(
                    "proxy-authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(creds)
                    ),
                )
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200, "proxy refused CONNECT");
            let upgraded = hyper::upgrade::on(resp).await.unwrap();
            let tls = connector
                .connect(server_name, TokioIo::new(upgraded))
                .await
                .unwrap();
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            return sender;
        }
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: authsome-bench-proxy URL CONNECTIONS SECONDS CA_FILE [PROXY_URL]");
        std::process::exit(2);
    }
    let target = url::Url::parse(&args[1]).unwrap();
    let conns: usize = args[2].parse().unwrap();
    let secs: u64 = args[3].parse().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&args[4]).unwrap() {
        let _ = roots.add(c.unwrap());
    }
    let proxy = args
        .get(5)
        .filter(|p| !p.is_empty())
        .map(|p| url::Url::parse(p).unwrap());
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = Arc::new(tls);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (lat, elapsed) = rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (target, proxy, tls) = (target.clone(), proxy.clone(), tls.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender = connect(&target, proxy.as_ref(), tls).await;
                let mut lat = Vec::new();
                let authority = format!(
                    "{}:{}",
                    target.host_str().unwrap(),
                    target.port().unwrap_or(443)
                );
                while Instant::now() < deadline {
                    let req = Request::get(target.path())
                        .header("host", &authority)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let t0 = Instant::now();
                    let resp = sender.send_request(req).await.unwrap();
                    assert!(resp.status().is_success(), "status {}", resp.status());
                    resp.into_body().collect().await.unwrap();
                    lat.push(t0.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all, started.elapsed())
    });
    let mut ms: Vec<f64> = lat.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    println!(
        "{}",
        serde_json::json!({
            "requests": ms.len(),
            "rps": ms.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        })
    );
}
