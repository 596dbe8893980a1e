//! Parsers for the two things a browser sends the daemon without the daemon
//! token: the OAuth callback's query string and a bridge page's form body.
//! Both are reachable by any web page the user opens, so they are strict:
//! bounded sizes and counts, and no parameter may appear twice (a repeated
//! `state` or `code` is an attack or a broken provider, never something to
//! pick a winner from; providers do not repeat the others either).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Longest value accepted in a callback parameter.
pub const MAX_CALLBACK_VALUE: usize = 4096;
/// Most parameters accepted in a callback query.
pub const MAX_CALLBACK_PARAMS: usize = 32;
/// Most fields accepted in a bridge form.
pub const MAX_FORM_FIELDS: usize = 32;
/// Longest value accepted in a bridge form field.
pub const MAX_FORM_VALUE: usize = 16 * 1024;

/// What the provider sent back with the browser.
#[derive(Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The authorization code to exchange.
    Code(Secret),
    /// The user or the provider refused (`error`, with `error_description`),
    /// control characters removed and lengths bounded for display.
    Denied {
        /// The `error` code.
        code: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// Neither `code` nor `error`.
    Missing,
}

/// A parsed OAuth callback query.
#[derive(PartialEq, Eq)]
pub struct Callback {
    /// The `state` parameter (empty when absent).
    pub state: String,
    /// The RFC 9207 `iss` parameter, when sent.
    pub iss: Option<String>,
    /// The outcome it reports.
    pub outcome: CallbackOutcome,
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is a one-time value of the login; not printed either.
        f.debug_struct("Callback")
            .field("state", &"***")
            .field("iss", &self.iss)
            .field("outcome", &self.outcome)
            .finish()
    }
}

fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Collects `application/x-www-form-urlencoded` pairs, refusing repeated keys,
/// too many pairs and oversized values.
fn pairs(
    raw: &[u8],
    max_pairs: usize,
    max_value: usize,
    what: &str,
) -> Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for (i, (k, v)) in url::form_urlencoded::parse(raw).enumerate() {
        if i >= max_pairs {
            return Err(Error::InvalidInput(format!(
                "the {what} has too many parameters"
            )));
        }
        if k.len() > 256 || v.len() > max_value {
            return Err(Error::InvalidInput(format!(
                "the {what} carries oversized parameters"
            )));
        }
        let key = k.into_owned();
        if out.contains_key(&key) {
            return Err(Error::InvalidInput(format!(
                "the {what} repeats the parameter {:?}",
                printable(&key, 64)
            )));
        }
        out.insert(key, Secret::new(v.into_owned()));
    }
    Ok(out)
}

impl Callback {
    /// Parses the raw query string of `GET /auth/callback/oauth`.
    pub fn parse(raw_query: &str) -> Result<Callback> {
        let mut params = pairs(
            raw_query.as_bytes(),
            MAX_CALLBACK_PARAMS,
            MAX_CALLBACK_VALUE,
            "callback",
        )?;
        let state = params
            .remove("state")
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        let iss = params.remove("iss").map(|i| printable(i.expose(), 500));
        let outcome = if let Some(code) = params.remove("error") {
            CallbackOutcome::Denied {
                code: printable(code.expose(), 100),
                description: params
                    .remove("error_description")
                    .map(|d| printable(d.expose(), 200)),
            }
        } else {
            match params.remove("code") {
                Some(code) if !code.is_empty() => CallbackOutcome::Code(code),
                _ => CallbackOutcome::Missing,
            }
        };
        Ok(Callback {
            state,
            iss,
            outcome,
        })
    }
}

/// A parsed bridge form: its CSRF token and the submitted fields.
pub struct BridgeForm {
    /// The `csrf` field (empty when absent).
    pub csrf: String,
    /// Every other field, by name.
    pub values: BTreeMap<String, Secret>,
}

impl fmt::Debug for BridgeForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeForm")
            .field("csrf", &"***")
            .field("values", &self.values)
            .finish()
    }
}

impl BridgeForm {
    /// Parses the body of `POST /bridge/{id}`.
    pub fn parse(body: &[u8]) -> Result<BridgeForm> {
        let mut values = pairs(body, MAX_FORM_FIELDS, MAX_FORM_VALUE, "form")?;
        let csrf = values
            .remove("csrf")
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        Ok(BridgeForm { csrf, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_with_code() {
        let c = Callback::parse("code=abc%2Fd&state=xyz&scope=a+b").unwrap();
        assert_eq!(c.state, "xyz");
        assert_eq!(
            c.outcome,
            CallbackOutcome::Code(Secret::new("abc/d".into()))
        );
    }

    #[test]
    fn error_wins_over_code_and_is_cleaned() {
        let c = Callback::parse("state=s&code=c&error=access%0Adenied&error_description=no%07pe")
            .unwrap();
        assert_eq!(
            c.outcome,
            CallbackOutcome::Denied {
                code: "accessdenied".into(),
                description: Some("nope".into())
            }
        );
    }

    #[test]
    fn empty_and_missing() {
        let c = Callback::parse("").unwrap();
        assert_eq!(c.state, "");
        assert_eq!(c.outcome, CallbackOutcome::Missing);
        let c = Callback::parse("state=s&code=").unwrap();
        assert_eq!(c.outcome, CallbackOutcome::Missing);
    }

    #[test]
    fn repeated_state_or_code_is_refused() {
        assert!(Callback::parse("state=a&state=b&code=c").is_err());
        assert!(Callback::parse("state=a&code=b&code=c").is_err());
    }

    #[test]
    fn bounds() {
        let long = "x".repeat(MAX_CALLBACK_VALUE + 1);
        assert!(Callback::parse(&format!("state={long}")).is_err());
        let many: Vec<String> = (0..=MAX_CALLBACK_PARAMS)
            .map(|i| format!("p{i}=1"))
            .collect();
        assert!(Callback::parse(&many.join("&")).is_err());
    }

    #[test]
    fn debug_hides_state_and_code() {
        let c = Callback::parse("state=the-state&code=the-code").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("the-state") && !shown.contains("the-code"),
            "{shown}"
        );
        let f = BridgeForm::parse(b"csrf=t&api_key=sk-123").unwrap();
        assert!(!format!("{f:?}").contains("sk-123"));
    }

    #[test]
    fn bridge_form() {
        let f = BridgeForm::parse(b"csrf=tok&api_key=sk%2B1+2").unwrap();
        assert_eq!(f.csrf, "tok");
        assert_eq!(f.values["api_key"].expose(), "sk+1 2");
        assert!(BridgeForm::parse(b"csrf=a&csrf=b").is_err());
        assert!(BridgeForm::parse(b"api_key=a&api_key=b").is_err());
    }
}
