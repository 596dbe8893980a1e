//! Authorization code with PKCE (RFC 6749 §4.1, RFC 7636 S256): the pair
//! and the authorization URL with its state, from the `oauth2` crate. The
//! code exchange is [`crate::flows::token::token_request`].

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
    /// The login's PKCE pair; the URL carries its S256 challenge.
    pub pkce: &'a Pkce,
    /// RFC 8707 resource, when the provider declares one.
    pub resource: Option<&'a str>,
    /// The provider's extra parameters.
    pub extra: &'a std::collections::BTreeMap<String, String>,
}

/// Builds the authorization URL with the `oauth2` crate, and the fresh
/// single-use `state` (CSRF token) it carries: `(url, state)`.
pub fn authorize_url(p: &AuthorizeParams<'_>) -> Result<(String, String)> {
    let bad = |what: &str, v: &str, e: oauth2::url::ParseError| {
        Error::InvalidProvider(format!("{what} {v:?}: {e}"))
    };
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(p.client_id.to_string()))
        .set_auth_uri(
            oauth2::AuthUrl::new(p.endpoint.to_string())
                .map_err(|e| bad("authorization_url", p.endpoint, e))?,
        )
        .set_redirect_uri(
            oauth2::RedirectUrl::new(p.redirect_uri.to_string())
                .map_err(|e| bad("redirect URI", p.redirect_uri, e))?,
        );
    let challenge = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(p.pkce.verifier.expose().to_string()),
    );
    let mut req = client
        .authorize_url(|| oauth2::CsrfToken::new_random_len(32))
        .set_pkce_challenge(challenge);
    req = req.add_scopes(p.scopes.iter().map(|s| oauth2::Scope::new(s.clone())));
    if let Some(r) = p.resource {
        req = req.add_extra_param("resource", r);
    }
    for (k, v) in p.extra {
        req = req.add_extra_param(k.as_str(), v.as_str());
    }
    let (url, state) = req.url();
    Ok((url.into(), state.secret().clone()))
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
        let pkce = Pkce::generate();
        let (url, state) = authorize_url(&AuthorizeParams {
            endpoint: "https://auth.example/authorize?audience=x",
            client_id: "cid",
            redirect_uri: "http://127.0.0.1:7998/auth/callback/oauth",
            scopes: &["repo".into(), "read:user".into()],
            pkce: &pkce,
            resource: Some("https://mcp.example/"),
            extra: &extra,
        })
        .unwrap();
        assert!(url.starts_with("https://auth.example/authorize?audience=x&response_type=code"));
        assert!(state.len() >= 43, "a 32-byte state: {state}");
        for part in [
            "client_id=cid",
            &format!("state={state}"),
            &format!("code_challenge={}", pkce.challenge),
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
