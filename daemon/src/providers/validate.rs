//! Validation of provider definitions, shared by the bundled catalogue test,
//! `authsome register` and `doctor`.

use regex::{Regex, RegexBuilder};
use url::Url;

use crate::error::{Error, Result};
use crate::names::ProviderName;
use crate::providers::schema::{AuthType, Flow, ProviderDef};

/// Largest definition file accepted.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// A problem that does not stop a definition from being used.
pub type Warning = String;

/// Parameters Authsome sets itself on the authorization URL.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
];

/// One compiled `host_url` entry.
#[derive(Debug, Clone)]
pub enum HostPattern {
    /// An exact host (with optional port).
    Host(String),
    /// A host and a path prefix.
    HostPath {
        /// The host.
        host: String,
        /// The path prefix, starting with `/`.
        prefix: String,
    },
    /// `regex:` matched against the host.
    Regex(Regex),
}

fn invalid(def_name: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidProvider(format!("{def_name}: {msg}"))
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
        });
    name_ok && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

impl HostPattern {
    /// Parses one entry: `host`, `host/path`, or `regex:<pattern>` (a scheme
    /// prefix such as `https://` is tolerated and ignored).
    pub fn parse(entry: &str) -> std::result::Result<HostPattern, String> {
        if let Some(pattern) = entry.strip_prefix("regex:") {
            if pattern.is_empty() {
                return Err("empty regex: pattern".into());
            }
            // The regex crate matches in linear time; the size limits bound
            // compilation of hostile patterns.
            return RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .nest_limit(64)
                .build()
                .map(HostPattern::Regex)
                .map_err(|e| format!("regex {pattern:?} does not compile: {e}"));
        }
        let rest = entry
            .strip_prefix("https://")
            .or_else(|| entry.strip_prefix("http://"))
            .unwrap_or(entry);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !valid_host(host) {
            return Err(format!(
                "{entry:?} is not a host, a host with a path, or regex:<pattern>"
            ));
        }
        let prefix = path.trim_end_matches('/');
        if prefix.is_empty() {
            Ok(HostPattern::Host(host.to_string()))
        } else if prefix
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
        {
            Err(format!("{entry:?} has an invalid path prefix"))
        } else {
            Ok(HostPattern::HostPath {
                host: host.to_string(),
                prefix: prefix.to_string(),
            })
        }
    }
}

fn check_url(
    def: &ProviderDef,
    field: &str,
    template: &str,
    warnings: &mut Vec<Warning>,
) -> Result<()> {
    let base = def
        .oauth
        .as_ref()
        .and_then(|o| o.base_url.clone())
        .unwrap_or_else(|| "https://base-url.invalid".into());
    let filled = super::substitute(template, &base);
    if filled.contains('{') || filled.contains('}') {
        return Err(invalid(
            &def.name,
            format!("{field}: only the {{base_url}} placeholder is supported"),
        ));
    }
    let url = Url::parse(&filled).map_err(|e| {
        invalid(
            &def.name,
            format!("{field}: {template:?} is not a URL ({e})"),
        )
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => {
            warnings.push(format!("{field} uses plain http on a loopback address ({filled}); fine for a local server only"));
            Ok(())
        }
        _ => Err(invalid(
            &def.name,
            format!(
                "{field}: {filled:?} must use https (plain http only for 127.0.0.1 or localhost)"
            ),
        )),
    }
}

/// True for a variable a `run` command may be given a placeholder in: the
/// name of a credential (one of its `_`-separated words is `KEY`, `TOKEN`,
/// `SECRET`, `PAT`, `PASSWORD` or `CREDENTIALS`), never one that changes how
/// programs load, run or connect (`LD_PRELOAD`, `PATH`, the proxy and CA
/// variables), and never one of Authsome's own.
pub fn is_credential_var(name: &str) -> bool {
    const WORDS: [&str; 6] = ["KEY", "TOKEN", "SECRET", "PAT", "PASSWORD", "CREDENTIALS"];
    const PREFIXES: [&str; 4] = ["LD_", "DYLD_", "AUTHSOME_", "GIT_"];
    is_env_name(name)
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && !PREFIXES.iter().any(|p| name.starts_with(p))
        && name.split('_').any(|w| WORDS.contains(&w))
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 128
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Parses a definition from bytes, with the size cap.
pub fn parse_definition(bytes: &[u8]) -> Result<ProviderDef> {
    if bytes.len() > MAX_DEFINITION_BYTES {
        return Err(Error::InvalidProvider(format!(
            "definition is {} bytes; the limit is {MAX_DEFINITION_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidProvider(format!("not a valid definition: {e}")))
}

/// Checks a definition; returns warnings that do not stop it from being used.
pub fn validate(def: &ProviderDef) -> Result<Vec<Warning>> {
    let mut warnings = Vec::new();
    if let Some(url) = &def.mcp_url {
        if url.contains('{') {
            return Err(invalid(&def.name, "mcp_url cannot be a template"));
        }
        check_url(def, "mcp_url", url, &mut warnings)?;
        // The bridge sends the credential there: it must be a host the
        // provider's credential is for.
        let u = Url::parse(url).map_err(|e| invalid(&def.name, format!("mcp_url: {e}")))?;
        let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
        let with_port = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let named = def
            .host_url
            .patterns()
            .iter()
            .any(|p| match HostPattern::parse(p) {
                Ok(HostPattern::Host(h)) | Ok(HostPattern::HostPath { host: h, .. }) => {
                    h == with_port || h == host
                }
                Ok(HostPattern::Regex(re)) => re.is_match(&host),
                Err(_) => false,
            });
        if !named {
            return Err(invalid(
                &def.name,
                format!("mcp_url {url:?} is not on a host of host_url"),
            ));
        }
    }
    ProviderName::parse(&def.name).map_err(|e| Error::InvalidProvider(e.to_string()))?;
    let name = def.name.as_str();
    if def.display_name.trim().is_empty()
        || def.display_name.len() > 100
        || !printable(&def.display_name)
    {
        return Err(invalid(
            name,
            "display_name must be 1-100 printable characters",
        ));
    }
    if def.flow.auth_type() != def.auth_type {
        return Err(invalid(
            name,
            format!(
                "flow {} does not fit auth_type {}",
                def.flow.as_str(),
                def.auth_type.as_str()
            ),
        ));
    }
    let patterns = def.host_url.patterns();
    if patterns.is_empty() {
        return Err(invalid(name, "host_url needs at least one entry"));
    }
    for p in patterns {
        HostPattern::parse(p).map_err(|e| invalid(name, format!("host_url: {e}")))?;
    }
    if let Some(docs) = &def.docs_url {
        check_url(def, "docs_url", docs, &mut warnings)?;
    }
    match def.auth_type {
        AuthType::ApiKey => {
            if def.oauth.is_some() {
                return Err(invalid(name, "an api_key provider has no oauth block"));
            }
            let spec = def
                .api_key
                .as_ref()
                .ok_or_else(|| invalid(name, "an api_key provider needs an api_key block"))?;
            if !is_header_name(&spec.header_name) {
                return Err(invalid(
                    name,
                    format!(
                        "api_key.header_name {:?} is not an HTTP header name",
                        spec.header_name
                    ),
                ));
            }
            if !printable(&spec.header_prefix) || spec.header_prefix.len() > 64 {
                return Err(invalid(
                    name,
                    "api_key.header_prefix must be short and printable",
                ));
            }
            if let Some(env) = &spec.env_var {
                if !is_env_name(env) {
                    return Err(invalid(
                        name,
                        format!("api_key.env_var {env:?} is not an environment variable name"),
                    ));
                }
                if !is_credential_var(env) {
                    return Err(invalid(
                        name,
                        format!(
                            "api_key.env_var {env:?} must name a credential (a KEY, TOKEN, SECRET, \
                             PAT, PASSWORD or CREDENTIALS word; not LD_, DYLD_, GIT_ or AUTHSOME_)"
                        ),
                    ));
                }
            }
            if let Some(pattern) = &spec.key_pattern {
                RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .nest_limit(64)
                    .build()
                    .map_err(|e| {
                        invalid(name, format!("api_key.key_pattern does not compile: {e}"))
                    })?;
            }
        }
        AuthType::OAuth2 => {
            if def.api_key.is_some() {
                return Err(invalid(name, "an oauth2 provider has no api_key block"));
            }
            let o = def
                .oauth
                .as_ref()
                .ok_or_else(|| invalid(name, "an oauth2 provider needs an oauth block"))?;
            if let Some(base) = &o.base_url {
                if base.contains('{') {
                    return Err(invalid(name, "oauth.base_url cannot itself be a template"));
                }
                check_url(def, "oauth.base_url", base, &mut warnings)?;
            }
            check_url(def, "oauth.token_url", &o.token_url, &mut warnings)?;
            for (field, value) in [
                ("oauth.authorization_url", &o.authorization_url),
                ("oauth.revocation_url", &o.revocation_url),
                (
                    "oauth.device_authorization_url",
                    &o.device_authorization_url,
                ),
                ("oauth.registration_endpoint", &o.registration_endpoint),
            ] {
                if let Some(v) = value {
                    check_url(def, field, v, &mut warnings)?;
                }
            }
            if let Some(resource) = &o.resource {
                check_url(def, "oauth.resource", resource, &mut warnings)?;
            }
            if let Some(issuer) = &o.issuer {
                check_url(def, "oauth.issuer", issuer, &mut warnings)?;
            }
            if matches!(def.flow, Flow::Pkce | Flow::DcrPkce) && o.authorization_url.is_none() {
                return Err(invalid(
                    name,
                    format!("flow {} needs oauth.authorization_url", def.flow.as_str()),
                ));
            }
            if o.supports_device_code && o.device_authorization_url.is_none() {
                return Err(invalid(
                    name,
                    "supports_device_code needs oauth.device_authorization_url",
                ));
            }
            if def.flow == Flow::DeviceCode && !o.supports_device_code {
                return Err(invalid(
                    name,
                    "flow device_code needs oauth.supports_device_code: true",
                ));
            }
            if def.flow == Flow::DcrPkce && !o.supports_dcr {
                return Err(invalid(
                    name,
                    "flow dcr_pkce needs oauth.supports_dcr: true",
                ));
            }
            for scope in &o.scopes {
                if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid(
                        name,
                        format!("scope {scope:?} is empty or contains whitespace"),
                    ));
                }
            }
            for (k, v) in &o.authorize_params {
                if k.is_empty() || !printable(k) || !printable(v) {
                    return Err(invalid(name, "oauth.authorize_params must be printable"));
                }
                if RESERVED_AUTHORIZE_PARAMS.contains(&k.as_str()) {
                    return Err(invalid(
                        name,
                        format!("oauth.authorize_params cannot set {k:?}; Authsome sets it"),
                    ));
                }
            }
        }
    }
    if def.export.is_empty() {
        warnings
            .push("no export entries: `authsome export` prints nothing for this provider".into());
    }
    for (env, field) in &def.export {
        if !is_env_name(env) {
            return Err(invalid(
                name,
                format!("export: {env:?} is not an environment variable name"),
            ));
        }
        if !def.auth_type.exportable_fields().contains(&field.as_str()) {
            return Err(invalid(
                name,
                format!(
                    "export: {env} names field {field:?}; an {} provider exports {}",
                    def.auth_type.as_str(),
                    def.auth_type.exportable_fields().join(", ")
                ),
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_key_def() -> serde_json::Value {
        serde_json::json!({
            "name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
            "host_url": "api.acme.test", "docs_url": "https://acme.test/keys",
            "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "env_var": "ACME_API_KEY", "key_pattern": "^ak_[a-z0-9]{8,}$"},
            "export": {"ACME_API_KEY": "api_key"}
        })
    }

    fn check(v: serde_json::Value) -> Result<Vec<Warning>> {
        validate(&parse_definition(v.to_string().as_bytes())?)
    }

    #[test]
    fn a_good_definition_passes() {
        assert!(check(api_key_def()).unwrap().is_empty());
    }

    #[test]
    fn bad_definitions_are_refused() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("flow", serde_json::json!("pkce")),
            ("name", serde_json::json!("../etc")),
            ("name", serde_json::json!("a/b")),
            ("host_url", serde_json::json!("regex:(")),
            ("host_url", serde_json::json!([])),
            ("host_url", serde_json::json!("not a host")),
            ("docs_url", serde_json::json!("http://acme.test/keys")),
            ("docs_url", serde_json::json!("ftp://acme.test")),
            ("export", serde_json::json!({"ACME": "access_token"})),
            ("export", serde_json::json!({"bad-name": "api_key"})),
            ("surprise", serde_json::json!(1)),
        ];
        for (field, value) in cases {
            let mut v = api_key_def();
            v[field] = value.clone();
            assert!(check(v).is_err(), "{field} = {value} was accepted");
        }
        let mut v = api_key_def();
        v["api_key"]["key_pattern"] = serde_json::json!("(unclosed");
        assert!(check(v).is_err());
        let mut v = api_key_def();
        v["api_key"]["header_name"] = serde_json::json!("X-Key\r\nInjected: 1");
        assert!(check(v).is_err());
        assert!(parse_definition(b"{not json").is_err());
        assert!(parse_definition(&vec![b' '; MAX_DEFINITION_BYTES + 1]).is_err());
    }

    #[test]
    fn loopback_http_is_allowed_with_a_warning() {
        let v = serde_json::json!({
            "name": "local", "display_name": "Local", "auth_type": "oauth2", "flow": "pkce",
            "host_url": "127.0.0.1:8080",
            "oauth": {"authorization_url": "http://127.0.0.1:8080/authorize", "token_url": "http://localhost:8080/token"},
            "export": {"LOCAL_TOKEN": "access_token"}
        });
        let warnings = check(v).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let v = serde_json::json!({
            "name": "remote", "display_name": "Remote", "auth_type": "oauth2", "flow": "pkce",
            "host_url": "api.remote.test",
            "oauth": {"authorization_url": "http://remote.test/authorize", "token_url": "https://remote.test/token"},
            "export": {"T": "access_token"}
        });
        assert!(check(v).unwrap_err().to_string().contains("must use https"));
    }

    #[test]
    fn host_patterns_parse() {
        assert!(
            matches!(HostPattern::parse("api.openai.com"), Ok(HostPattern::Host(h)) if h == "api.openai.com")
        );
        assert!(
            matches!(HostPattern::parse("https://api.zoom.us/v2"), Ok(HostPattern::HostPath { prefix, .. }) if prefix == "/v2")
        );
        assert!(matches!(
            HostPattern::parse("regex:^([a-z]+\\.)*linear\\.app$"),
            Ok(HostPattern::Regex(_))
        ));
        assert!(HostPattern::parse("API.OPENAI.COM").is_err());
        // A pattern that backtracks catastrophically elsewhere runs in linear time here.
        let HostPattern::Regex(re) = HostPattern::parse("regex:^(a+)+$").unwrap() else {
            panic!()
        };
        let hostile = format!("{}b", "a".repeat(50_000));
        assert!(!re.is_match(&hostile));
    }
}

#[cfg(test)]
mod credential_var_tests {
    use super::is_credential_var;

    #[test]
    fn only_credential_names_can_carry_a_placeholder() {
        for ok in [
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "AWS_BEARER_TOKEN_BEDROCK",
            "STRIPE_SECRET_KEY",
            "GH_PAT",
        ] {
            assert!(is_credential_var(ok), "{ok}");
        }
        for bad in [
            "PATH",
            "LD_PRELOAD",
            "LD_KEY",
            "DYLD_INSERT_LIBRARIES",
            "HTTPS_PROXY",
            "NODE_OPTIONS",
            "SSL_CERT_FILE",
            "AUTHSOME_MASTER_KEY",
            "GIT_SSH_COMMAND",
            "MONKEY",
            "_KEY",
            "openai_api_key",
            "",
        ] {
            assert!(!is_credential_var(bad), "{bad}");
        }
    }
}
