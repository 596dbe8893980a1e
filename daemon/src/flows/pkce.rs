//! Authorization code with PKCE (RFC 6749 §4.1, RFC 7636 S256): the
//! authorization URL, and the code exchange when the callback arrives.

use crate::error::{Error, Result};
use crate::secret::Secret;

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The verifier (43-128 characters; sent only to the token endpoint).
    pub verifier: Secret,
    /// base64url(SHA-256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair, from the `oauth2` crate (a 64-character verifier).
    pub fn generate() -> Pkce {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256_len(48);
        Pkce {
            verifier: Secret::new(verifier.secret().clone()),
            challenge: challenge.as_str().to_string(),
        }
    }
}

/// The S256 code challenge of a verifier: base64url(SHA-256(verifier)),
/// without padding (RFC 7636 §4.2).
#[cfg(test)]
fn s256(verifier: &str) -> String {
    oauth2::PkceCodeChallenge::from_code_verifier_sha256(&oauth2::PkceCodeVerifier::new(
        verifier.to_string(),
    ))
    .as_str()
    .to_string()
}

/// What the authorization URL carries.
#[derive(Debug)]
pub struct AuthorizeParams<'a> {
    /// Authorization endpoint.
    pub endpoint: &'a str,
    /// Client ID.
    pub client_id: &'a str,
    /// Redirect URI (the daemon's callback).
    pub redirect_uri: &'a str,
    /// Scopes.
    pub scopes: &'a [String],
    /// Single-use state.
    pub state: &'a str,
    /// S256 challenge.
    pub challenge: &'a str,
    /// RFC 8707 resource, when the provider declares one.
    pub resource: Option<&'a str>,
    /// The provider's extra parameters.
    pub extra: &'a std::collections::BTreeMap<String, String>,
}

/// Builds the authorization URL.
pub fn authorize_url(p: &AuthorizeParams<'_>) -> Result<String> {
    let mut url = url::Url::parse(p.endpoint)
        .map_err(|e| Error::InvalidProvider(format!("authorization_url {:?}: {e}", p.endpoint)))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", p.client_id)
            .append_pair("redirect_uri", p.redirect_uri)
            .append_pair("state", p.state)
            .append_pair("code_challenge", p.challenge)
            .append_pair("code_challenge_method", "S256");
        if !p.scopes.is_empty() {
            q.append_pair("scope", &p.scopes.join(" "));
        }
        if let Some(r) = p.resource {
            q.append_pair("resource", r);
        }
        for (k, v) in p.extra {
            q.append_pair(k, v);
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636 appendix B, through the code's own function.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // And every generated pair: the challenge is the hash of its own
        // verifier (computed here independently), never reused.
        let p = Pkce::generate();
        let v = p.verifier.expose();
        assert_eq!(v.len(), 64);
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let digest: Vec<u8> = Sha256::digest(v.as_bytes()).to_vec();
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        assert_eq!(p.challenge, expected);
        let q = Pkce::generate();
        assert_ne!(p.challenge, q.challenge);
        assert_ne!(p.verifier.expose(), q.verifier.expose());
    }

    #[test]
    fn the_authorization_url_carries_every_parameter() {
        let extra =
            std::collections::BTreeMap::from([("access_type".to_string(), "offline".to_string())]);
        let url = authorize_url(&AuthorizeParams {
            endpoint: "https://auth.example/authorize?audience=x",
            client_id: "cid",
            redirect_uri: "http://127.0.0.1:7998/auth/callback/oauth",
            scopes: &["repo".into(), "read:user".into()],
            state: "st",
            challenge: "ch",
            resource: Some("https://mcp.example/"),
            extra: &extra,
        })
        .unwrap();
        assert!(url.starts_with("https://auth.example/authorize?audience=x&response_type=code"));
        for part in [
            "client_id=cid",
            "state=st",
            "code_challenge=ch",
            "code_challenge_method=S256",
            "scope=repo+read%3Auser",
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A7998%2Fauth%2Fcallback%2Foauth",
            "resource=https%3A%2F%2Fmcp.example%2F",
            "access_type=offline",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
    }
}
