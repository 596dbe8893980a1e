//! AES-256-GCM sealing. The associated data names the table, row and field a
//! value belongs to, so a ciphertext copied to another row or field fails to
//! open instead of quietly yielding someone else's secret.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// The 32-byte key that seals every secret in the vault.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        MasterKey(k)
    }

    /// A key from its base64 form (standard alphabet, padding optional).
    pub fn from_base64(text: &str) -> Result<MasterKey> {
        use base64::Engine;
        let text = text.trim();
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| Error::MasterKey("the master key is not valid base64".into()))?,
        );
        if bytes.len() != 32 {
            return Err(Error::MasterKey(format!(
                "the master key must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(MasterKey(key))
    }

    /// The key in base64, for the keychain or `master.key`.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine;
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.0.as_ref()).expect("32-byte key")
    }

    /// Seals `plaintext`; the output is `version || nonce || ciphertext+tag`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a sealed value; fails on a wrong key, wrong associated data or tampering.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let fail = || Error::Decrypt {
            what: aad.to_owned(),
        };
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(fail());
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let k = MasterKey::generate();
        let sealed = k.seal("connections:default/openai/default:api_key", b"sk-abc");
        assert_eq!(
            &*k.open("connections:default/openai/default:api_key", &sealed)
                .unwrap(),
            b"sk-abc"
        );
        assert!(!sealed.windows(6).any(|w| w == b"sk-abc"));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = MasterKey::generate().seal("a", b"x");
        assert!(matches!(
            MasterKey::generate().open("a", &sealed),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn other_associated_data_fails() {
        let k = MasterKey::generate();
        let sealed = k.seal("row-1:api_key", b"x");
        assert!(k.open("row-2:api_key", &sealed).is_err());
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let k = MasterKey::generate();
        let mut sealed = k.seal("a", b"hello");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(k.open("a", &sealed).is_err());
        assert!(k.open("a", &sealed[..5]).is_err());
    }

    #[test]
    fn base64_round_trip_and_bad_lengths() {
        let k = MasterKey::generate();
        let k2 = MasterKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(&*k2.open("a", &k.seal("a", b"v")).unwrap(), b"v");
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{k:?}"), "MasterKey(***)");
    }
}
