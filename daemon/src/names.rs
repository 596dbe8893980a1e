//! Names that end up in paths, URLs and SQL keys. Each is validated once, when
//! parsed, so the rest of the code can trust it: no separators, no `..`, no
//! control characters, bounded length.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

const MAX_LEN: usize = 64;

fn check(kind: &str, value: &str, allow_upper: bool, allow_dot: bool) -> Result<(), Error> {
    let bad = || {
        let shown: String = value.chars().take(40).filter(|c| !c.is_control()).collect();
        Error::InvalidInput(format!(
            "invalid {kind} name {shown:?}: use 1-{MAX_LEN} characters from {}, starting with a letter or digit",
            if allow_dot { "a-z, 0-9, '.', '_' and '-'" } else { "a-z, 0-9, '_' and '-'" }
        ))
    };
    if value.is_empty() || value.len() > MAX_LEN {
        return Err(bad());
    }
    let mut chars = value.chars();
    let first = chars.next().ok_or_else(bad)?;
    let ok_first = first.is_ascii_digit()
        || first.is_ascii_lowercase()
        || (allow_upper && first.is_ascii_uppercase());
    let ok_rest = chars.all(|c| {
        c.is_ascii_digit()
            || c.is_ascii_lowercase()
            || (allow_upper && c.is_ascii_uppercase())
            || c == '_'
            || c == '-'
            || (allow_dot && c == '.')
    });
    if ok_first && ok_rest {
        Ok(())
    } else {
        Err(bad())
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, upper: $upper:expr, dot: $dot:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Parses and validates a name.
            pub fn parse(value: &str) -> Result<Self, Error> {
                check($kind, value, $upper, $dot)?;
                Ok(Self(value.to_owned()))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A provider's name: lowercase letters, digits, `_` and `-`.
    ProviderName, "provider", upper: false, dot: false
);
name_type!(
    /// A connection's name within a provider (`default` unless `--connection`).
    ConnectionName, "connection", upper: true, dot: true
);
name_type!(
    /// A profile: an independent set of connections with its own store.
    ProfileName, "profile", upper: true, dot: true
);

impl ConnectionName {
    /// The connection used when none is named.
    pub fn default_name() -> Self {
        Self("default".into())
    }
}

impl ProfileName {
    /// The profile used when none is named or configured.
    pub fn default_name() -> Self {
        Self("default".into())
    }
}

/// What a write does to a connection (or provider) of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Keep it; the write fails.
    Keep,
    /// Replace it (`--force`).
    Replace,
}

impl Existing {
    /// From a `--force` flag.
    pub fn replace_if(force: bool) -> Existing {
        if force {
            Existing::Replace
        } else {
            Existing::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_traversal_separators_and_control_characters() {
        for bad in [
            "", "..", "../x", "a/b", "a\\b", "%2e%2e", "a\0b", "a b", ".hidden", "-x", "é",
        ] {
            assert!(ProviderName::parse(bad).is_err(), "{bad:?}");
            assert!(ConnectionName::parse(bad).is_err(), "{bad:?}");
            assert!(ProfileName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ProviderName::parse(&"a".repeat(10_000)).is_err());
        assert!(ProviderName::parse("Upper").is_err());
    }

    #[test]
    fn names_accept_ordinary_values() {
        ProviderName::parse("notion_dcr").unwrap();
        ProviderName::parse("google-drive").unwrap();
        ConnectionName::parse("Work.2").unwrap();
        ProfileName::parse("ci").unwrap();
    }

    #[test]
    fn invalid_name_error_does_not_echo_control_characters() {
        let err = ConnectionName::parse("a\nb\u{1b}[31m")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n') && !err.contains('\u{1b}'), "{err}");
    }
}
