//! HTTPS and HTTP echo servers for the proxy tests and benchmarks: each
//! answers every request with a JSON object of its method, path and
//! headers. The HTTPS one has its own test CA, written to a PEM file that
//! the daemon is told to trust (`proxy.extra_ca_file`).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// A running echo server.
#[derive(Debug, Clone)]
pub struct Echo {
    /// Address served.
    pub addr: SocketAddr,
    /// PEM file of the CA that issued its certificate (HTTPS only).
    pub ca_file: Option<PathBuf>,
}

impl Echo {
    /// `https://ip:port` or `http://ip:port`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// `ip:port`, as a provider's `host_url`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                serde_json::Value::String(v.to_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let json =
        serde_json::json!({"method": method, "path": path, "headers": headers, "body_bytes": body});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap())
}

/// A test CA and a server configuration for `ip`, with the CA written to `dir`.
pub fn tls_config(dir: &Path, ip: IpAddr, name: &str) -> (Arc<rustls::ServerConfig>, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress(ip)];
    leaf.distinguished_name
        .push(DnType::CommonName, ip.to_string());
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let ca_file = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let chain = vec![leaf_cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (Arc::new(config), ca_file)
}

/// Serves until the process ends, on a background thread.
pub fn start(ip: IpAddr, tls: Option<(Arc<rustls::ServerConfig>, PathBuf)>) -> Echo {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let ca_file = tls.as_ref().map(|(_, f)| f.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            serve(
                tokio::net::TcpListener::from_std(listener).unwrap(),
                tls.map(|(c, _)| c),
            )
            .await
        });
    });
    Echo { addr, ca_file }
}

/// The accept loop.
pub async fn serve(listener: tokio::net::TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(config) => {
                    if let Ok(s) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(s), service_fn(echo))
                            .await;
                    }
                }
                None => {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(echo))
                        .await;
                }
            }
        });
    }
}

/// An HTTPS echo on `ip` with its own CA (written to `dir`).
pub fn https(dir: &Path, ip: IpAddr, name: &str) -> Echo {
    start(ip, Some(tls_config(dir, ip, name)))
}

/// A plain HTTP echo on `ip`.
pub fn http(ip: IpAddr) -> Echo {
    start(ip, None)
}
