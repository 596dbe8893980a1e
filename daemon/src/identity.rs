//! How a client tells this home's daemon from an impostor on its port.
//!
//! After an unclean stop `daemon.json` stays behind, and another process
//! (another user's, or one a contained run started) may listen on the port
//! it names. Before a client sends the token or anything else, it asks
//! `GET /health?challenge=<nonce>`; this home's daemon answers with
//! HMAC-SHA256 keyed with the daemon token over the port and the nonce. The
//! token itself never goes to an unverified port, a fresh nonce defeats
//! replay, and the port in the message defeats relaying the challenge to a
//! real daemon listening elsewhere.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::{constant_time_eq, random_token};

/// The query parameter that carries the client's nonce on `/health`.
pub const CHALLENGE_PARAM: &str = "challenge";

/// A fresh nonce for one check.
pub fn new_challenge() -> String {
    random_token(32)
}

/// True for a nonce a daemon answers: 22 to 128 URL-safe characters.
pub fn valid_challenge(challenge: &str) -> bool {
    (22..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The daemon's answer to `challenge` on `port`, hex encoded.
pub fn proof(token: &str, port: u16, challenge: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("authsome-daemon-proof\n{port}\n{challenge}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `answer` proves knowledge of `token` for this port and nonce.
pub fn verify(token: &str, port: u16, challenge: &str, answer: &str) -> bool {
    constant_time_eq(&proof(token, port, challenge), answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_holder_answers_for_this_port_and_nonce() {
        let c = new_challenge();
        assert!(valid_challenge(&c));
        let p = proof("tok", 7998, &c);
        assert_eq!(p.len(), 64);
        assert!(verify("tok", 7998, &c, &p));
        assert!(!verify("other", 7998, &c, &p), "another token");
        assert!(!verify("tok", 7999, &c, &p), "relayed from another port");
        assert!(!verify("tok", 7998, &new_challenge(), &p), "replayed");
        assert!(!verify("tok", 7998, &c, ""));
        assert!(!valid_challenge("short"));
        assert!(!valid_challenge(&"a".repeat(129)));
        assert!(!valid_challenge(&format!("{}&x=1", "a".repeat(30))));
    }
}
