//! Which provider's credential a request gets: the `host_url` patterns of
//! the connected providers, most specific first (host with the longest path
//! prefix, then exact host, then `regex:`). A tie injects nothing; a
//! provider's own OAuth endpoints never get a credential.

use crate::names::ConnectionName;
use crate::providers::HostPattern;

/// One provider connection the proxy may inject.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Provider name.
    pub provider: String,
    /// Its connection for this run.
    pub connection: ConnectionName,
    /// Its compiled `host_url` patterns.
    pub patterns: Vec<HostPattern>,
    /// URLs (host and path) of its OAuth endpoints, never injected.
    pub excluded: Vec<(String, String)>,
}

/// The host (with its port, if not the default) and path of each of a
/// provider's OAuth endpoints, filled from `base_url` (the connection's,
/// else the definition's): requests there never get a credential, so a
/// token request carries only what the client put in it.
pub fn oauth_exclusions(
    def: &crate::providers::ProviderDef,
    base_url: Option<&str>,
) -> Vec<(String, String)> {
    let mut excluded = Vec::new();
    let Some(spec) = &def.oauth else {
        return excluded;
    };
    let base = base_url.or(spec.base_url.as_deref());
    for t in oauth_endpoints(spec) {
        if let Some(u) = crate::flows::oauth::fill(t, base)
            .ok()
            .and_then(|u| url::Url::parse(&u).ok())
        {
            let host = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_string(),
            };
            excluded.push((host, u.path().to_string()));
        }
    }
    excluded
}

/// Every OAuth endpoint URL template a provider names.
fn oauth_endpoints(spec: &crate::providers::OAuthSpec) -> impl Iterator<Item = &str> {
    [
        spec.authorization_url.as_deref(),
        Some(spec.token_url.as_str()),
        spec.revocation_url.as_deref(),
        spec.device_authorization_url.as_deref(),
        spec.registration_endpoint.as_deref(),
    ]
    .into_iter()
    .flatten()
}

/// The proxy's decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Inject this provider's credential.
    Inject {
        /// Provider.
        provider: String,
        /// Connection.
        connection: ConnectionName,
    },
    /// Several providers match equally well: inject nothing.
    Ambiguous(Vec<String>),
    /// No provider matches.
    Miss,
}

fn host_only(pattern_host: &str) -> (&str, Option<&str>) {
    match pattern_host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (pattern_host, None),
    }
}

fn host_eq(pattern_host: &str, host: &str, port: u16) -> bool {
    let (h, p) = host_only(pattern_host);
    h.eq_ignore_ascii_case(host) && p.is_none_or(|p| p == port.to_string())
}

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path[prefix.len()..].starts_with(['/', '?'])))
}

/// How specifically a pattern matches a request, if at all.
fn specificity(
    pattern: &HostPattern,
    host: &str,
    port: u16,
    path: Option<&str>,
) -> Option<(u8, usize)> {
    match pattern {
        HostPattern::HostPath { host: h, prefix } if host_eq(h, host, port) => match path {
            None => Some((3, prefix.len())),
            Some(p) if path_has_prefix(p, prefix) => Some((3, prefix.len())),
            Some(_) => None,
        },
        HostPattern::Host(h) if host_eq(h, host, port) => Some((2, 0)),
        HostPattern::Regex(re) if re.is_match(&host.to_ascii_lowercase()) => Some((1, 0)),
        _ => None,
    }
}

/// True when some candidate's pattern names this host: its TLS is intercepted.
pub fn intercepts(candidates: &[Candidate], host: &str, port: u16) -> bool {
    candidates.iter().any(|c| {
        c.patterns
            .iter()
            .any(|p| specificity(p, host, port, None).is_some())
    })
}

/// The path a server will act on, for prefix matching: `%2e` and `%2f`
/// (either case) decoded, a backslash read as `/`, and dot segments
/// removed (RFC 3986 §5.2.4). Without this `/api/../private` or
/// `/api/%2e%2e/private` would match a provider whose prefix is `/api`.
/// The query is dropped.
pub fn normalize_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut decoded = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(c) = rest.chars().next() {
        let lower = rest.get(..3).map(|s| s.to_ascii_lowercase());
        match (c, lower.as_deref()) {
            ('%', Some("%2e")) => {
                decoded.push('.');
                rest = &rest[3..];
            }
            ('%', Some("%2f" | "%5c")) => {
                decoded.push('/');
                rest = &rest[3..];
            }
            ('\\', _) => {
                decoded.push('/');
                rest = &rest[1..];
            }
            _ => {
                decoded.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    // RFC 3986 §5.2.4 on an absolute path: keep a stack of segments.
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// True for a path that servers read in different ways: dot segments,
/// encoded `.`, `/` or backslash, a backslash, an empty segment (nginx merges
/// `//`) or a `;` parameter (Tomcat reads `..;` as `..`). Such a request
/// gets no credential rather than a guess at how its server reads it.
pub fn is_ambiguous_path(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c", "\\", "//", ";"]
        .iter()
        .any(|s| lower.contains(s))
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// Decides which credential a request to `host:port` + `path` gets. The
/// path is matched as the server will read it ([`normalize_path`]); an
/// ambiguous one ([`is_ambiguous_path`]) gets none.
pub fn decide(candidates: &[Candidate], host: &str, port: u16, path: &str) -> Decision {
    if is_ambiguous_path(path) {
        return Decision::Miss;
    }
    let path = normalize_path(path);
    let path = path.as_str();
    let mut best: Option<(u8, usize)> = None;
    let mut winners: Vec<&Candidate> = Vec::new();
    for c in candidates {
        if c.excluded
            .iter()
            .any(|(h, p)| host_eq(h, host, port) && path_has_prefix(path, p))
        {
            continue;
        }
        let Some(score) = c
            .patterns
            .iter()
            .filter_map(|p| specificity(p, host, port, Some(path)))
            .max()
        else {
            continue;
        };
        match best {
            Some(b) if score < b => {}
            Some(b) if score == b => winners.push(c),
            _ => {
                best = Some(score);
                winners = vec![c];
            }
        }
    }
    match winners.as_slice() {
        [] => Decision::Miss,
        [one] => Decision::Inject {
            provider: one.provider.clone(),
            connection: one.connection.clone(),
        },
        many => Decision::Ambiguous(many.iter().map(|c| c.provider.clone()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_as_a_server_reads_them() {
        for (raw, want) in [
            ("/api/x", "/api/x"),
            ("/api/../private", "/private"),
            ("/api/%2e%2e/private", "/private"),
            ("/api/%2E%2e/private", "/private"),
            ("/api%2f..%2fprivate", "/private"),
            ("/api/..\\private", "/private"),
            ("/api/./x/.", "/api/x/"),
            ("/../../etc", "/etc"),
            ("/api/x/..", "/api/"),
            ("/a/b?c=../d", "/a/b"),
            ("/", "/"),
            ("", "/"),
            ("/api/%41", "/api/%41"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn a_path_escaping_the_prefix_gets_no_credential() {
        let c = Candidate {
            provider: "p".into(),
            connection: ConnectionName::default_name(),
            patterns: vec![HostPattern::parse("api.test/api").unwrap()],
            excluded: vec![],
        };
        let cands = [c];
        assert!(matches!(
            decide(&cands, "api.test", 443, "/api/v1"),
            Decision::Inject { .. }
        ));
        for escape in [
            "/api/../private",
            "/api/%2e%2e/private",
            "/api%2f..%2fprivate",
            "/api//../private",
            "/api/..;/private",
            "/api/x/..",
            "/api/./v1",
            "/api\\..\\private",
            "/api//v1",
        ] {
            assert_eq!(
                decide(&cands, "api.test", 443, escape),
                Decision::Miss,
                "{escape}"
            );
        }
    }

    fn cand(name: &str, patterns: &[&str]) -> Candidate {
        Candidate {
            provider: name.into(),
            connection: ConnectionName::default_name(),
            patterns: patterns
                .iter()
                .map(|p| HostPattern::parse(p).unwrap())
                .collect(),
            excluded: vec![("auth.example.com".into(), "/oauth/token".into())],
        }
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let cs = vec![
            cand("graph", &["graph.microsoft.com"]),
            cand("outlook", &["graph.microsoft.com/v1.0/me/messages"]),
            cand("google", &["regex:^([a-z0-9-]+\\.)*googleapis\\.com$"]),
            cand("drive", &["www.googleapis.com/drive/v3"]),
        ];
        let inject = |p: &str| Decision::Inject {
            provider: p.into(),
            connection: ConnectionName::default_name(),
        };
        assert_eq!(
            decide(&cs, "graph.microsoft.com", 443, "/v1.0/me/messages/1"),
            inject("outlook")
        );
        assert_eq!(
            decide(&cs, "graph.microsoft.com", 443, "/v1.0/me/messagesX"),
            inject("graph")
        );
        assert_eq!(
            decide(&cs, "graph.microsoft.com", 443, "/v1.0/users"),
            inject("graph")
        );
        assert_eq!(
            decide(&cs, "www.googleapis.com", 443, "/drive/v3/files"),
            inject("drive")
        );
        assert_eq!(
            decide(&cs, "sheets.googleapis.com", 443, "/v4"),
            inject("google")
        );
        assert_eq!(decide(&cs, "example.com", 443, "/"), Decision::Miss);
        assert!(intercepts(&cs, "sheets.googleapis.com", 443));
        assert!(!intercepts(&cs, "example.com", 443));
    }

    #[test]
    fn a_tie_injects_nothing() {
        let cs = vec![
            cand("a", &["api.example.com"]),
            cand("b", &["api.example.com"]),
        ];
        assert_eq!(
            decide(&cs, "api.example.com", 443, "/x"),
            Decision::Ambiguous(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn no_bundled_providers_oauth_endpoint_ever_gets_a_credential() {
        let mut checked = 0;
        for def in crate::providers::Catalogue::bundled().unwrap() {
            let Some(spec) = &def.oauth else { continue };
            let base = Some("https://ghe.example.test");
            let candidate = Candidate {
                provider: def.name.clone(),
                connection: ConnectionName::default_name(),
                patterns: def
                    .host_url
                    .patterns()
                    .into_iter()
                    .filter_map(|p| HostPattern::parse(p).ok())
                    .collect(),
                excluded: oauth_exclusions(&def, base),
            };
            let cands = [candidate];
            for t in oauth_endpoints(spec) {
                let u = url::Url::parse(
                    &crate::flows::oauth::fill(t, base.or(spec.base_url.as_deref())).unwrap(),
                )
                .unwrap();
                let port = u.port_or_known_default().unwrap();
                let host = u.host_str().unwrap();
                for path in [u.path().to_string(), format!("{}/x", u.path())] {
                    assert!(
                        !matches!(decide(&cands, host, port, &path), Decision::Inject { .. }),
                        "{}: {host}{path} would get a credential",
                        def.name
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} endpoints checked");
    }

    #[test]
    fn oauth_endpoints_are_never_injected_and_ports_are_respected() {
        let cs = vec![
            cand("a", &["auth.example.com"]),
            cand("local", &["127.0.0.2:8443"]),
        ];
        assert_eq!(
            decide(&cs, "auth.example.com", 443, "/oauth/token"),
            Decision::Miss
        );
        assert!(matches!(
            decide(&cs, "auth.example.com", 443, "/api"),
            Decision::Inject { .. }
        ));
        assert!(matches!(
            decide(&cs, "127.0.0.2", 8443, "/"),
            Decision::Inject { .. }
        ));
        assert_eq!(decide(&cs, "127.0.0.2", 9443, "/"), Decision::Miss);
    }
}
