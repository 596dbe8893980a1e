//! Standing rules: `rules.toml` in the home says, per provider or
//! connection and command, which requests of a run get a credential
//! (`allow`), are refused by the proxy (`deny`) or wait for the person
//! (`ask`). The first rule that matches a request decides; `default` decides
//! the rest. A run's flags (`--read-only`, `--ask`, `--allow`) narrow what
//! the rules give; they never widen it.
//!
//! ```toml
//! default = "allow"            # allow | ask | deny; "allow" when left out
//!
//! [[rule]]
//! provider = "github"          # a provider, or "*" for every provider
//! connection = "work"          # only this connection (optional)
//! command = "claude*"          # a glob on the command's name (optional)
//! methods = ["POST", "PUT", "PATCH", "DELETE"]   # optional: every method
//! paths = ["/repos/*/*/git/**"]                  # optional: every path
//! action = "ask"
//! ```
//!
//! Paths are matched as the provider reads them: dot segments resolved,
//! percent-escapes decoded, without the query, and without regard to case.
//! In a path glob `*` matches within one segment and `**` across segments;
//! in a command glob `*` matches anything and `?` one character.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// What a rule (or the default) says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The request gets the credential.
    Allow,
    /// The request waits for the person.
    Ask,
    /// The proxy answers 403; the request never reaches the provider.
    Deny,
}

impl Action {
    /// The name used in the file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Option<Action>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    provider: String,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    action: Action,
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its number in the file, from 1.
    pub number: usize,
    /// Provider name, `None` for `*`.
    pub provider: Option<String>,
    /// Connection name, if the rule names one.
    pub connection: Option<String>,
    /// Glob on the command's name.
    pub command: Option<String>,
    /// Methods (upper case); `None`: every method.
    pub methods: Option<Vec<String>>,
    /// Path globs (lower case); `None`: every path.
    pub paths: Option<Vec<String>>,
    /// What it says.
    pub action: Action,
}

/// The request a rule is tried against.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Provider the request is for.
    pub provider: &'a str,
    /// Connection the run uses for it.
    pub connection: &'a str,
    /// The run's command name.
    pub command: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Methods a method-override header names (`X-HTTP-Method-Override`
    /// and kin), which some servers obey instead of the request's.
    pub overrides: &'a [String],
    /// Path as sent (query and all); it is normalised here.
    pub path: &'a str,
}

/// The rules in force for a run: read once when the run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// What a request no rule matches gets.
    pub default: Action,
    /// In file order.
    pub rules: Vec<Rule>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            default: Action::Allow,
            rules: Vec::new(),
        }
    }
}

/// What the rules decided, and which rule decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The action.
    pub action: Action,
    /// The deciding rule's number; `None` for the default.
    pub rule: Option<usize>,
}

impl Verdict {
    /// "rule 3 in rules.toml" or "the default in rules.toml".
    pub fn source(&self) -> String {
        match self.rule {
            Some(n) => format!("rule {n} in rules.toml"),
            None => "the default in rules.toml".into(),
        }
    }
}

impl Rules {
    /// Reads `path`; no file means no rules. `known` says whether a
    /// provider exists, so a misspelt name is an error, not a rule that
    /// never matches.
    pub fn load(path: &Path, known: impl Fn(&str) -> bool) -> Result<Rules> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Rules::default()),
            Err(e) => {
                return Err(Error::InvalidInput(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        Rules::parse(&text, known)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))
    }

    /// Parses and validates the text of a rules file.
    pub fn parse(text: &str, known: impl Fn(&str) -> bool) -> std::result::Result<Rules, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, raw) in file.rules.into_iter().enumerate() {
            let number = i + 1;
            let bad = |what: String| format!("rule {number}: {what}");
            let provider = match raw.provider.as_str() {
                "*" => None,
                p => {
                    crate::names::ProviderName::parse(p).map_err(|e| bad(e.to_string()))?;
                    if !known(p) {
                        return Err(bad(format!(
                            "no provider named {p:?} (`authsome list` shows them)"
                        )));
                    }
                    Some(p.to_string())
                }
            };
            if let Some(c) = &raw.connection {
                if provider.is_none() {
                    return Err(bad("a connection needs a provider, not \"*\"".into()));
                }
                crate::names::ConnectionName::parse(c).map_err(|e| bad(e.to_string()))?;
            }
            if let Some(c) = &raw.command {
                if c.is_empty() || c.contains('/') {
                    return Err(bad(format!(
                        "command {c:?} is matched against the command's name: it cannot be empty or hold '/'"
                    )));
                }
            }
            let methods = match raw.methods {
                None => None,
                Some(m) if m.is_empty() => {
                    return Err(bad("methods is empty; leave it out for every method".into()))
                }
                Some(m) => Some(
                    m.into_iter()
                        .map(|m| {
                            let up = m.to_ascii_uppercase();
                            if up.is_empty() || !up.bytes().all(|b| b.is_ascii_alphabetic()) {
                                Err(bad(format!("{m:?} is not an HTTP method")))
                            } else {
                                Ok(up)
                            }
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?,
                ),
            };
            let paths = match raw.paths {
                None => None,
                Some(p) if p.is_empty() => {
                    return Err(bad("paths is empty; leave it out for every path".into()))
                }
                Some(p) => Some(
                    p.into_iter()
                        .map(|p| {
                            if !p.starts_with('/') {
                                Err(bad(format!("path {p:?} must start with '/'")))
                            } else if p.contains('?') {
                                Err(bad(format!(
                                    "path {p:?}: queries are not matched, leave out '?'"
                                )))
                            } else {
                                Ok(p.to_lowercase())
                            }
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?,
                ),
            };
            rules.push(Rule {
                number,
                provider,
                connection: raw.connection,
                command: raw.command,
                methods,
                paths,
                action: raw.action,
            });
        }
        Ok(Rules {
            default: file.default.unwrap_or(Action::Allow),
            rules,
        })
    }

    /// What the rules say: for a request whose method may be overridden,
    /// the strictest answer over its method and the overriding ones.
    pub fn verdict(&self, req: &Request<'_>) -> Verdict {
        if self.rules.is_empty() {
            return Verdict {
                action: self.default,
                rule: None,
            };
        }
        let path = rule_path(req.path);
        let mut v = self.verdict_for(req, req.method, &path);
        for m in req.overrides {
            let other = self.verdict_for(req, m, &path);
            if other.action > v.action {
                v = other;
            }
        }
        v
    }

    /// The first matching rule's action for `method`, or the default.
    fn verdict_for(&self, req: &Request<'_>, method: &str, path: &str) -> Verdict {
        for r in &self.rules {
            if r.provider.as_deref().is_some_and(|p| p != req.provider)
                || r.connection.as_deref().is_some_and(|c| c != req.connection)
                || r.command
                    .as_deref()
                    .is_some_and(|c| !glob(c.as_bytes(), req.command.as_bytes(), false))
                || r.methods
                    .as_ref()
                    .is_some_and(|m| !m.iter().any(|m| m.eq_ignore_ascii_case(method)))
                || r.paths
                    .as_ref()
                    .is_some_and(|ps| !ps.iter().any(|p| glob(p.as_bytes(), path.as_bytes(), true)))
            {
                continue;
            }
            return Verdict {
                action: r.action,
                rule: Some(r.number),
            };
        }
        Verdict {
            action: self.default,
            rule: None,
        }
    }
}

/// A path as rules see it: resolved as the server reads it, every
/// percent-escape decoded, lower case.
fn rule_path(path: &str) -> String {
    let normal = super::matcher::normalize_path(path);
    let bytes: Vec<u8> = percent_decode(normal.as_bytes());
    String::from_utf8_lossy(&bytes).to_lowercase()
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = std::str::from_utf8(&s[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Glob match. `*` matches any run of bytes (within one `/` segment when
/// `segments`), `**` any run at all, `?` one byte (never `/` when
/// `segments`). A path pattern ending in `/**` also matches the path
/// without that tail.
fn glob(pattern: &[u8], text: &[u8], segments: bool) -> bool {
    // `/x/**` covers `/x` itself too.
    if segments && pattern == b"/**" {
        return text.is_empty() || text.first() == Some(&b'/');
    }
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|i| glob(rest, &text[i..], segments))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            for i in 0..=text.len() {
                if glob(rest, &text[i..], segments) {
                    return true;
                }
                if segments && text.get(i) == Some(&b'/') {
                    return false;
                }
            }
            false
        }
        Some(b'?') => match text.first() {
            Some(b'/') if segments => false,
            Some(_) => glob(&pattern[1..], &text[1..], segments),
            None => false,
        },
        Some(c) => text.first() == Some(c) && glob(&pattern[1..], &text[1..], segments),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::parse(text, |p| ["github", "slack", "openai"].contains(&p)).unwrap()
    }

    fn req<'a>(provider: &'a str, method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            provider,
            connection: "default",
            command: "claude",
            method,
            overrides: &[],
            path,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_default_decides_the_rest() {
        let r = rules(
            r#"
            default = "ask"
            [[rule]]
            provider = "github"
            methods = ["get", "HEAD"]
            action = "allow"
            [[rule]]
            provider = "github"
            paths = ["/repos/*/*/git/**"]
            action = "deny"
            [[rule]]
            provider = "*"
            command = "cron-*"
            action = "allow"
            "#,
        );
        assert_eq!(
            r.verdict(&req("github", "GET", "/repos/a/b/git/refs")).rule,
            Some(1)
        );
        let v = r.verdict(&req("github", "POST", "/repos/a/b/git/refs"));
        assert_eq!((v.action, v.rule), (Action::Deny, Some(2)));
        let v = r.verdict(&req("github", "POST", "/repos/a/b/issues"));
        assert_eq!((v.action, v.rule), (Action::Ask, None));
        let mut cron = req("slack", "POST", "/api/chat.postMessage");
        cron.command = "cron-nightly";
        assert_eq!(r.verdict(&cron).action, Action::Allow);
        cron.command = "xcron-nightly";
        assert_eq!(r.verdict(&cron).action, Action::Ask);
    }

    #[test]
    fn a_path_rule_sees_the_path_the_provider_reads() {
        let r = rules(
            r#"
            [[rule]]
            provider = "github"
            paths = ["/repos/acme/secret/**"]
            action = "deny"
            "#,
        );
        for path in [
            "/repos/acme/secret/contents/x",
            "/repos/ACME/Secret/contents/x",
            "/%72epos/acme/secret/contents/x",
            "/repos/acme/other/../secret/contents?x=1",
        ] {
            assert_eq!(
                r.verdict(&req("github", "GET", path)).action,
                Action::Deny,
                "{path}"
            );
        }
        assert_eq!(
            r.verdict(&req("github", "GET", "/repos/acme/secretive/x"))
                .action,
            Action::Allow
        );
    }

    #[test]
    fn a_method_override_header_cannot_dodge_a_method_rule() {
        let r =
            rules("[[rule]]\nprovider = \"github\"\nmethods = [\"DELETE\"]\naction = \"deny\"\n");
        let overrides = ["DELETE".to_string()];
        let mut q = req("github", "POST", "/repos/a/b");
        assert_eq!(r.verdict(&q).action, Action::Allow);
        q.overrides = &overrides;
        assert_eq!(r.verdict(&q).action, Action::Deny);
    }

    #[test]
    fn a_single_star_stays_within_one_segment() {
        assert!(glob(b"/repos/*/x", b"/repos/a/x", true));
        assert!(!glob(b"/repos/*/x", b"/repos/a/b/x", true));
        assert!(glob(b"/repos/**/x", b"/repos/a/b/x", true));
        assert!(glob(b"/repos/**", b"/repos/", true));
        assert!(glob(b"/repos/*/*/hooks/**", b"/repos/a/b/hooks", true));
        assert!(!glob(b"/repos/*/*/hooks/**", b"/repos/a/b/hooksx", true));
        assert!(glob(b"claude*", b"claude-code", false));
        assert!(!glob(b"claude", b"claude-code", false));
    }

    #[test]
    fn mistakes_are_named_with_the_rule_they_are_in() {
        let known = |p: &str| p == "github";
        for (text, expect) in [
            (
                "[[rule]]\nprovider = \"gihtub\"\naction = \"deny\"",
                "rule 1: no provider named \"gihtub\"",
            ),
            (
                "[[rule]]\nprovider = \"github\"\naction = \"maybe\"",
                "unknown variant `maybe`",
            ),
            (
                "[[rule]]\nprovider = \"github\"\naction = \"deny\"\npath = [\"/x\"]",
                "unknown field `path`",
            ),
            (
                "[[rule]]\nprovider = \"github\"\naction = \"deny\"\npaths = [\"x\"]",
                "rule 1: path \"x\" must start with '/'",
            ),
            (
                "[[rule]]\nprovider = \"github\"\naction = \"deny\"\nmethods = [\"PO ST\"]",
                "rule 1: \"PO ST\" is not an HTTP method",
            ),
            (
                "[[rule]]\nprovider = \"*\"\nconnection = \"work\"\naction = \"deny\"",
                "rule 1: a connection needs a provider",
            ),
            ("[[rule]]\nprovider = \"github\"", "missing field `action`"),
            (
                "[[rule]]\nprovider = \"github\"\naction = \"deny\"\npaths = [\"/search?q=*\"]",
                "queries are not matched",
            ),
        ] {
            let err = Rules::parse(text, known).unwrap_err();
            assert!(err.contains(expect), "{text}\n→ {err}");
        }
    }
}
