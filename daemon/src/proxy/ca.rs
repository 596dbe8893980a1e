//! The proxy's certificate authority: created once per home, its
//! certificate in `ca/ca.pem`, its private key sealed with the vault's
//! master key in `ca/ca.key.sealed`. Leaf certificates are minted per host,
//! valid for [`LEAF_DAYS`], and cached (at most [`LEAF_CACHE`] hosts, the
//! least recently used leaving first). A new CA is valid for [`CA_DAYS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::home::{write_private_file, Home};
use crate::vault::MasterKey;

const CA_NAME: &str = "Authsome local proxy CA";

/// How long a leaf certificate is valid.
pub const LEAF_DAYS: i64 = 30;
/// A cached leaf is minted again after this long, well inside its validity.
const LEAF_REUSE: Duration = Duration::from_secs(20 * 24 * 3600);
/// How many hosts' leaves are cached.
pub const LEAF_CACHE: usize = 1024;
/// How long a newly created CA is valid.
pub const CA_DAYS: i64 = 3650;

/// The date `days` from today (UTC) as year, month, day, for certificate
/// validity (`rcgen::date_time_ymd`).
fn ymd(days: i64) -> (i32, u8, u8) {
    use chrono::Datelike;
    let d = (chrono::Utc::now() + chrono::Duration::days(days)).date_naive();
    (d.year(), d.month() as u8, d.day() as u8)
}

/// Validity from yesterday (clock skew) to `days` from today.
fn validity(params: &mut CertificateParams, days: i64) {
    let (y, m, d) = ymd(-1);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(days);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

const KEY_AAD: &str = "ca:key";

/// The certificate authority and its leaf cache.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: rcgen::Certificate,
    key: KeyPair,
    leaves: Mutex<HashMap<String, Leaf>>,
    leaf_cap: usize,
}

/// A cached leaf: its TLS configuration, when it was minted and last used.
struct Leaf {
    config: Arc<rustls::ServerConfig>,
    minted: Instant,
    used: Instant,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| Error::Internal(e.to_string()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Authsome");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_DAYS);
    Ok(params)
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| Error::Internal(format!("ca.pem: {e:?}")))
}

/// Re-seals the CA's private key from `old` to `new` (written whole, by
/// rename). False when there is no CA yet or it already opens with `new`.
pub fn reseal_key(home: &Home, old: &MasterKey, new: &MasterKey) -> Result<bool> {
    let path = home.ca_dir().join("ca.key.sealed");
    let sealed = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(path.display().to_string(), e)),
    };
    if new.open(KEY_AAD, &sealed).is_ok() {
        return Ok(false);
    }
    let plain = old.open(KEY_AAD, &sealed).map_err(|_| {
        Error::MasterKey(format!(
            "neither the home's key nor the new one opens the proxy CA key ({})",
            path.display()
        ))
    })?;
    write_private_file(&path, &new.seal(KEY_AAD, &plain))?;
    Ok(true)
}

impl CertificateAuthority {
    /// Loads the home's CA, creating it on first use.
    pub fn load_or_create(home: &Home, key: &MasterKey) -> Result<CertificateAuthority> {
        let dir = home.ca_dir();
        crate::home::ensure_private_dir(&dir)?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key.sealed"));
        let (key_pair, cert_pem) = if cert_path.exists() && key_path.exists() {
            let sealed = std::fs::read(&key_path)
                .map_err(|e| Error::io(key_path.display().to_string(), e))?;
            let key_pem = key.open(KEY_AAD, &sealed).map_err(|_| {
                Error::MasterKey(format!(
                    "the master key in effect does not open the proxy CA key ({}); check AUTHSOME_MASTER_KEY and the key backend",
                    key_path.display()
                ))
            })?;
            let key_pem = std::str::from_utf8(&key_pem).map_err(|_| Error::Decrypt {
                what: "the CA key".into(),
            })?;
            let kp =
                KeyPair::from_pem(key_pem).map_err(|e| Error::Internal(format!("CA key: {e}")))?;
            let pem = std::fs::read_to_string(&cert_path)
                .map_err(|e| Error::io(cert_path.display().to_string(), e))?;
            (kp, pem)
        } else {
            let kp = KeyPair::generate().map_err(|e| Error::Internal(e.to_string()))?;
            let cert = ca_params()?
                .self_signed(&kp)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let key_pem = zeroize::Zeroizing::new(kp.serialize_pem());
            write_private_file(&key_path, &key.seal(KEY_AAD, key_pem.as_bytes()))?;
            write_private_file(&cert_path, cert.pem().as_bytes())?;
            tracing::info!("created the proxy CA in {}", dir.display());
            (kp, cert.pem())
        };
        // The issuer object only carries the name and key used to sign leaves;
        // its own signature is never shown to anyone.
        let issuer = ca_params()?
            .self_signed(&key_pair)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(CertificateAuthority {
            cert_der: pem_to_der(&cert_pem)?,
            cert_pem,
            issuer,
            key: key_pair,
            leaves: Mutex::new(HashMap::new()),
            leaf_cap: LEAF_CACHE,
        })
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Number of cached leaves.
    pub fn cached_leaves(&self) -> usize {
        self.leaves.lock().expect("leaf cache").len()
    }

    /// SHA-256 fingerprint of the CA certificate, as colon-separated hex.
    pub fn fingerprint(&self) -> String {
        fingerprint_der(&self.cert_der)
    }

    /// A TLS server configuration presenting a leaf certificate for `host`,
    /// minted on first use and cached.
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>> {
        if let Some(leaf) = self.leaves.lock().expect("leaf cache").get_mut(host) {
            if leaf.minted.elapsed() < LEAF_REUSE {
                leaf.used = Instant::now();
                return Ok(leaf.config.clone());
            }
        }
        let params = leaf_params(host)?;
        let leaf_key = KeyPair::generate().map_err(|e| Error::Internal(e.to_string()))?;
        let leaf = params
            .signed_by(&leaf_key, &self.issuer, &self.key)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let chain = vec![
            CertificateDer::from(leaf.der().to_vec()),
            CertificateDer::from(self.cert_der.clone()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Internal(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let mut leaves = self.leaves.lock().expect("leaf cache");
        if leaves.len() >= self.leaf_cap && !leaves.contains_key(host) {
            let oldest = leaves
                .iter()
                .min_by_key(|(_, l)| l.used)
                .map(|(h, _)| h.clone());
            if let Some(h) = oldest {
                leaves.remove(&h);
            }
        }
        let now = Instant::now();
        leaves.insert(
            host.to_string(),
            Leaf {
                config: config.clone(),
                minted: now,
                used: now,
            },
        );
        Ok(config)
    }
}

/// The parameters of `host`'s leaf certificate.
fn leaf_params(host: &str) -> Result<CertificateParams> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| Error::Internal(e.to_string()))?;
    params.subject_alt_names = vec![match host.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            host.try_into()
                .map_err(|e| Error::Internal(format!("{host}: {e}")))?,
        ),
    }];
    params.distinguished_name.push(DnType::CommonName, host);
    validity(&mut params, LEAF_DAYS);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// SHA-256 of DER bytes as colon-separated uppercase hex.
pub fn fingerprint_der(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of `ca/ca.pem` without loading the key (for `doctor`).
pub fn fingerprint_file(path: &Path) -> Option<String> {
    let pem = std::fs::read_to_string(path).ok()?;
    pem_to_der(&pem).ok().map(|d| fingerprint_der(&d))
}

/// The system's trusted roots in PEM, from the usual bundle locations.
pub fn system_roots_pem() -> String {
    let candidates = [
        std::env::var("SSL_CERT_FILE").unwrap_or_default(),
        "/etc/ssl/certs/ca-certificates.crt".into(),
        "/etc/pki/tls/certs/ca-bundle.crt".into(),
        "/etc/ssl/cert.pem".into(),
        "/etc/ssl/ca-bundle.pem".into(),
    ];
    for c in candidates.iter().filter(|c| !c.is_empty()) {
        if let Ok(text) = std::fs::read_to_string(c) {
            if text.contains("BEGIN CERTIFICATE") {
                return text;
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_live_thirty_days_and_a_new_ca_ten_years() {
        let leaf = leaf_params("api.example.test").unwrap();
        let days = (leaf.not_after - leaf.not_before).whole_days();
        assert!((LEAF_DAYS..=LEAF_DAYS + 1).contains(&days), "{days}");
        let ca = ca_params().unwrap();
        let days = (ca.not_after - ca.not_before).whole_days();
        assert!((CA_DAYS..=CA_DAYS + 1).contains(&days), "{days}");
    }

    #[test]
    fn the_leaf_cache_keeps_the_most_recently_used_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        home.ensure_dirs().unwrap();
        let mut ca = CertificateAuthority::load_or_create(&home, &MasterKey::generate()).unwrap();
        ca.leaf_cap = 3;
        for host in ["a.test", "b.test", "c.test"] {
            ca.server_config(host).unwrap();
        }
        let a = ca.server_config("a.test").unwrap();
        ca.server_config("d.test").unwrap();
        assert_eq!(ca.cached_leaves(), 3, "bounded");
        let leaves = ca.leaves.lock().unwrap();
        assert!(leaves.contains_key("a.test"), "recently used stays");
        assert!(!leaves.contains_key("b.test"), "least recently used leaves");
        assert!(Arc::ptr_eq(&a, &leaves["a.test"].config));
    }
}
