//! The API-key flow: ask for the key, check it, store it.

use std::collections::BTreeMap;

use regex::Regex;

use crate::error::{Error, Result};
use crate::prompt::PromptField;
use crate::providers::ProviderDef;
use crate::secret::Secret;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 8 * 1024;

/// What to ask for.
pub fn fields(def: &ProviderDef) -> Vec<PromptField> {
    let spec = def.api_key.as_ref();
    vec![PromptField {
        name: "api_key".into(),
        label: format!("{} API key", def.display_name),
        secret: true,
        optional: false,
        pattern: spec.and_then(|s| s.key_pattern.clone()),
        hint: spec.and_then(|s| s.key_pattern_hint.clone()),
    }]
}

/// Checks a submitted key: present, no control characters (a CR/LF could
/// split a header when the key is injected), within bounds, and matching the
/// provider's pattern. Surrounding whitespace is dropped.
pub fn check_key(def: &ProviderDef, values: &BTreeMap<String, Secret>) -> Result<Secret> {
    let raw = values
        .get("api_key")
        .ok_or_else(|| Error::InvalidInput("no API key was given".into()))?;
    let key = raw.expose().trim();
    if key.is_empty() {
        return Err(Error::InvalidInput("the API key is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidInput(format!(
            "the API key is longer than {MAX_KEY_LEN} bytes"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "the API key contains control characters (such as a line break); paste the key alone"
                .into(),
        ));
    }
    if let Some(spec) = &def.api_key {
        if let Some(pattern) = &spec.key_pattern {
            let re = Regex::new(pattern)
                .map_err(|e| Error::InvalidProvider(format!("{}: key_pattern: {e}", def.name)))?;
            if !re.is_match(key) {
                return Err(Error::KeyPattern {
                    provider: def.display_name.clone(),
                    hint: spec
                        .key_pattern_hint
                        .clone()
                        .unwrap_or_else(|| format!("expected a key matching {pattern}")),
                });
            }
        }
    }
    Ok(Secret::new(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ProviderDef {
        serde_json::from_value(serde_json::json!({
            "name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
            "host_url": "api.acme.test",
            "api_key": {"key_pattern": "^ak_[a-z0-9]{8,}$", "key_pattern_hint": "Acme keys start with ak_"}
        }))
        .unwrap()
    }

    fn values(v: &str) -> BTreeMap<String, Secret> {
        BTreeMap::from([("api_key".to_string(), Secret::new(v.into()))])
    }

    #[test]
    fn keys_are_trimmed_and_checked() {
        assert_eq!(
            check_key(&def(), &values("  ak_12345678\n"))
                .unwrap()
                .expose(),
            "ak_12345678"
        );
        let err = check_key(&def(), &values("sk-nope")).unwrap_err();
        assert!(
            err.to_string().contains("Acme keys start with ak_"),
            "{err}"
        );
        assert!(!err.to_string().contains("sk-nope"));
        assert_eq!(
            check_key(&def(), &values("ak_1234\r\n5678"))
                .unwrap_err()
                .to_string(),
            "the API key contains control characters (such as a line break); paste the key alone"
        );
        assert!(check_key(&def(), &values("")).is_err());
        assert!(check_key(&def(), &BTreeMap::new()).is_err());
    }
}
