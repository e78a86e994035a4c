//! What "valid JSON" means wherever Sluice checks a value: the export's
//! JSON values, the enrichment's inputs and the join's records, the
//! import's rows. One document of UTF-8 text, strict as parsing it into a
//! `serde_json::Value` is: every string's escapes decoded, so a lone
//! surrogate (`"\ud800"`, which no UTF-8 text can hold) is refused rather
//! than passed on to a reader that may choke on it. Nothing is kept: the
//! check walks the value and drops it.

use std::fmt;

use serde::Deserializer;
use serde::de::{Deserialize, MapAccess, SeqAccess, Visitor};

/// Fails unless `text` is exactly one JSON value, as strictly as parsing it
/// into a `Value` would, but keeps nothing.
pub fn check(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(text).map(|_| ())
}

/// `bytes` as checked JSON text, or why it is not, as a dead letter says
/// it.
pub fn check_value(bytes: &[u8]) -> Result<&str, String> {
    // serde_json skips over the insides of strings, bytes that are not
    // UTF-8 included: the text is checked first.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("value is not UTF-8 text (so not JSON): {e}"))?;
    check(text).map_err(|e| format!("value is not JSON: {e}"))?;
    Ok(text)
}

/// Any JSON value, visited in full and dropped.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_strict_document_of_utf8_text() {
        for good in [
            r#"{"a":[1,2.5,"\u00e9",null,true]}"#,
            "3",
            r#""\ud83d\ude00""#,
        ] {
            assert!(check_value(good.as_bytes()).is_ok(), "{good}");
        }
        for (bad, why) in [
            (&b"{\"a\":\"\xff\"}"[..], "not UTF-8"),
            (br#"{"a":"\ud800"}"#, "not JSON"),
            (br#"{"a":1} {"b":2}"#, "not JSON"),
            (b"", "not JSON"),
        ] {
            let error = check_value(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    /// What this module exists for: serde_json's `IgnoredAny`, which the
    /// export and the enrichment used, takes a lone surrogate.
    #[test]
    fn ignoring_a_value_would_let_a_lone_surrogate_through() {
        let text = r#"{"a":"\ud800"}"#;
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
        assert!(check(text).is_err());
    }
}
