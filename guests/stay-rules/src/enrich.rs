//! Adds `stay_category` to a JSON object without re-serialising it: the
//! input bytes are kept as they are (field order, number formatting) and the
//! new field is appended before the closing brace. Only the two date fields
//! are decoded; the rest is validated and skipped.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::{category, days_between};

/// Why a value could not be categorised: the record is bad, not the dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrichError {
    NotJson(String),
    NotAnObject,
}

impl fmt::Display for EnrichError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnrichError::NotJson(e) => write!(f, "value is not valid JSON: {e}"),
            EnrichError::NotAnObject => f.write_str("value is JSON but not an object"),
        }
    }
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    srch_ci: Option<&'a RawValue>,
    #[serde(borrow, default)]
    srch_co: Option<&'a RawValue>,
    #[serde(default)]
    stay_category: Option<IgnoredAny>,
}

/// The category of a JSON booking record, and whether it already carries
/// a `stay_category` field.
pub fn categorise(value: &[u8]) -> Result<(&'static str, bool), EnrichError> {
    // serde would also accept a JSON array as a struct; the data set's records
    // are objects, and anything else is bad input.
    if value.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<IgnoredAny>(value) {
            Ok(_) => Err(EnrichError::NotAnObject),
            Err(e) => Err(EnrichError::NotJson(e.to_string())),
        };
    }
    let fields: Fields<'_> =
        serde_json::from_slice(value).map_err(|e| EnrichError::NotJson(e.to_string()))?;
    let days = match (
        fields.srch_ci.and_then(date_text),
        fields.srch_co.and_then(date_text),
    ) {
        (Some(check_in), Some(check_out)) => days_between(&check_in, &check_out),
        _ => None,
    };
    Ok((category(days), fields.stay_category.is_some()))
}

/// The record with `stay_category` set; every other field unchanged.
pub fn enrich(value: &[u8]) -> Result<Vec<u8>, EnrichError> {
    let mut out = Vec::with_capacity(value.len() + 48);
    enrich_into(value, &mut out)?;
    Ok(out)
}

/// As [`enrich`], appending the record to `out`: a transform writing
/// straight into its output buffer copies the value once, not twice. On
/// an error `out` is as it was.
pub fn enrich_into(value: &[u8], out: &mut Vec<u8>) -> Result<(), EnrichError> {
    let (category, already_set) = categorise(value)?;
    if already_set {
        out.extend_from_slice(&replace_category(value, category)?);
        return Ok(());
    }
    // Validated above as one JSON object, so the first and last non-blank
    // bytes are its braces.
    let open = value.iter().position(|b| !b.is_ascii_whitespace());
    let close = value.iter().rposition(|b| !b.is_ascii_whitespace());
    let (Some(open), Some(close)) = (open, close) else {
        return Err(EnrichError::NotAnObject);
    };
    let empty = value[open + 1..close].iter().all(u8::is_ascii_whitespace);
    out.reserve(close + 48);
    out.extend_from_slice(&value[..close]);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"stay_category\":\"");
    out.extend_from_slice(category.as_bytes());
    out.extend_from_slice(b"\"}");
    Ok(())
}

/// The rare record that already has a category: overwrite it in place.
fn replace_category(value: &[u8], category: &str) -> Result<Vec<u8>, EnrichError> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(value).map_err(|e| EnrichError::NotJson(e.to_string()))?;
    object.insert("stay_category".into(), category.into());
    serde_json::to_vec(&object).map_err(|e| EnrichError::NotJson(e.to_string()))
}

/// The text of a JSON string; anything else (number, null...) is no date.
fn date_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enriched(value: &str) -> serde_json::Value {
        serde_json::from_slice(&enrich(value.as_bytes()).expect("enrich")).expect("valid JSON")
    }

    #[test]
    fn appends_the_category_and_keeps_every_field() {
        let input =
            r#"{"id": 7, "srch_ci": "2017-08-13", "srch_co":"2017-08-20", "hotel_id": 1.50}"#;
        let out = String::from_utf8(enrich(input.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"id": 7, "srch_ci": "2017-08-13", "srch_co":"2017-08-20", "hotel_id": 1.50,"stay_category":"Standard stay"}"#
        );
    }

    #[test]
    fn null_missing_and_non_string_dates_are_erroneous() {
        for input in [
            r#"{"srch_ci": null, "srch_co": "2017-08-20"}"#,
            r#"{"srch_co": "2017-08-20"}"#,
            r#"{"srch_ci": 20170813, "srch_co": "2017-08-20"}"#,
            r#"{"srch_ci": "2017-08-13", "srch_co": "not a date"}"#,
            r#"{}"#,
        ] {
            assert_eq!(
                enriched(input)["stay_category"],
                "Erroneous data",
                "{input}"
            );
        }
        assert_eq!(
            String::from_utf8(enrich(b" { } ").unwrap()).unwrap(),
            r#" { "stay_category":"Erroneous data"}"#
        );
    }

    #[test]
    fn escaped_dates_are_read() {
        let v = enriched(r#"{"srch_ci": "2017\u002d08-13", "srch_co": "2017-08-14"}"#);
        assert_eq!(v["stay_category"], "Short stay");
    }

    #[test]
    fn an_existing_category_is_replaced_not_duplicated() {
        let input = r#"{"stay_category":"old","srch_ci":"2017-08-01","srch_co":"2017-08-31"}"#;
        let out = String::from_utf8(enrich(input.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"stay_category":"Long stay","srch_ci":"2017-08-01","srch_co":"2017-08-31"}"#
        );
    }

    #[test]
    fn non_objects_and_broken_json_are_errors() {
        assert_eq!(enrich(b"[1,2]"), Err(EnrichError::NotAnObject));
        assert_eq!(enrich(b"\"text\""), Err(EnrichError::NotAnObject));
        assert_eq!(enrich(b"42"), Err(EnrichError::NotAnObject));
        assert!(matches!(enrich(b"{\"a\":"), Err(EnrichError::NotJson(_))));
        assert!(matches!(enrich(b"not json"), Err(EnrichError::NotJson(_))));
        assert!(matches!(enrich(b""), Err(EnrichError::NotJson(_))));
    }
}
