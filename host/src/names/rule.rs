//! A transform's name: a name, never a path. Names reach Sluice from
//! pipeline files, query strings and URL paths; only these characters keep
//! one from naming a file outside the transforms folder or the registry.

use std::fmt;

/// 1 to 64 of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransformName(String);

/// The rule, as errors state it.
pub const NAME_RULE: &str =
    "1 to 64 of a-z, 0-9, `-` and `_`, starting with a letter or digit (a name, not a path)";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid transform name: use {NAME_RULE}")]
pub struct BadName {
    pub name: String,
}

impl TransformName {
    pub fn parse(name: &str) -> Result<Self, BadName> {
        if is_valid(name) {
            Ok(TransformName(name.to_owned()))
        } else {
            Err(BadName {
                // Quoted back, but bounded: the name may be anything.
                name: name.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` follows [`NAME_RULE`].
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_';
    (1..=64).contains(&bytes.len())
        && bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.iter().all(allowed)
}

impl fmt::Display for TransformName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TransformName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_names_and_paths_are_refused() {
        for good in [
            "stay-category",
            "language_detect",
            "a",
            "0x",
            &"a".repeat(64),
        ] {
            assert!(TransformName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/x.wasm",
            "../../any/path/x",
            "..",
            "a/b",
            "a\\b",
            "Upper",
            "-dash",
            "_under",
            "x.wasm",
            "a b",
            "naïve",
            &"a".repeat(65),
            "a\0b",
        ] {
            let error = TransformName::parse(bad).unwrap_err();
            assert!(error.to_string().contains("not a path"), "{bad}: {error}");
        }
    }
}
