//! A row's JSON text, checked and searched without building a
//! `serde_json::Value`: the import produces each row's text as it has it,
//! and building the tree only to write it out again was most of the
//! import's time (`tests/benches/import_decode.rs`).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

pub use crate::json::check;

/// The record key a row gives: the top-level `field` of an object (the
/// last one, when the object repeats it, as a `Value` would keep), its text
/// as is for a string, its compact JSON for anything else; none for `null`,
/// a missing field or a row that is not an object. `json` is text the
/// import already checked.
pub fn key_of(json: &[u8], field: &str) -> Option<Vec<u8>> {
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let mut reader = serde_json::Deserializer::from_slice(json);
    let raw = reader.deserialize_map(FieldOf(field)).ok()??;
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .ok()
            .map(String::into_bytes),
        _ if text == "null" => None,
        // Objects and arrays as keys are rare: write them compact.
        _ if text.bytes().any(|b| b.is_ascii_whitespace()) => {
            serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .map(|value| value.to_string().into_bytes())
        }
        _ => Some(text.as_bytes().to_vec()),
    }
}

/// An object's field `0`, as the raw text of its value.
struct FieldOf<'f>(&'f str);

impl<'de, 'f> Visitor<'de> for FieldOf<'f> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key_seed(Name(self.0))? {
            if name {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether an object's key is the one looked for, decoding escapes only
/// when there are any.
struct Name<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<bool, E> {
        Ok(name == self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn key(json: &str, field: &str) -> Option<String> {
        key_of(json.as_bytes(), field).map(|k| String::from_utf8(k).unwrap())
    }

    #[test]
    fn keys_as_the_value_tree_gives_them() {
        assert_eq!(key(r#"{"id":"a\"b","x":1}"#, "id").as_deref(), Some("a\"b"));
        assert_eq!(key(r#"{"id":12,"x":1}"#, "id").as_deref(), Some("12"));
        assert_eq!(
            key(r#" {"x":{"id":1},"id": [1, {"a": 2}]}"#, "id").as_deref(),
            Some(r#"[1,{"a":2}]"#)
        );
        assert_eq!(key(r#"{"id":1,"id":2}"#, "id").as_deref(), Some("2"));
        assert_eq!(
            key(r#"{"\u0069d":"escaped name"}"#, "id").as_deref(),
            Some("escaped name")
        );
        assert_eq!(key(r#"{"id":null}"#, "id"), None);
        assert_eq!(key(r#"{"other":1}"#, "id"), None);
        assert_eq!(key(r#"["id"]"#, "id"), None);
        assert_eq!(key(r#""id""#, "id"), None);
    }

    #[test]
    fn check_is_as_strict_as_a_value() {
        for good in [r#"{"a":[1,2.5,-3e4,true,null,"\u00e9"]}"#, "1", " \"x\" "] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "{",
            r#"{"a":1}x"#,
            r#""\ud800""#,
            r#"{"a":01}"#,
            "[1,]",
            "nul",
        ] {
            assert!(check(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// On any text, `check` agrees with parsing into a `Value`.
        #[test]
        fn check_agrees_with_the_value_parser(text in r#"[\[\]{}":,0-9a-z\\. -]{0,24}"#) {
            prop_assert_eq!(check(&text).is_ok(), serde_json::from_str::<Value>(&text).is_ok());
        }

        /// On any object, the key is the one the value tree gives.
        #[test]
        fn the_key_agrees_with_the_value_tree(id in prop_oneof![
            Just(json!(null)), any::<i64>().prop_map(Value::from), "[a-z\"\\\\é]{0,6}".prop_map(Value::from),
        ], before in any::<bool>()) {
            let row = if before { json!({"x": 1, "id": id}) } else { json!({"id": id, "y": [2]}) };
            let text = row.to_string();
            let expected = match &row["id"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            prop_assert_eq!(key(&text, "id"), expected);
        }
    }
}
