//! What one record's two outcomes, the active version's and the shadow's,
//! have in common: the same, or how they differ and where first. Pure, so
//! the rules are tried on tables below.
//!
//! Emitted records are compared in order, each by topic, key, headers and
//! value; a value is compared as JSON when both sides are JSON (key order
//! and spacing do not count), else byte for byte. Two failures are the
//! same outcome whatever their reasons (the reasons name the version).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::{Outcome, OutputRecord};
use crate::runtime::RecordResult;

/// How the shadow's outcome of a record differs from the active one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Both emitted, different records (or a different number of them).
    Records,
    /// The active version emitted, the shadow dropped.
    ShadowDrops,
    /// The active version dropped, the shadow emitted.
    ShadowEmits,
    /// The shadow failed (declared, trapped, ran out of time or memory)
    /// where the active version did not.
    ShadowFails,
    /// The active version failed where the shadow did not.
    ShadowSucceeds,
}

impl Kind {
    /// As reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Records => "records",
            Kind::ShadowDrops => "shadow_drops",
            Kind::ShadowEmits => "shadow_emits",
            Kind::ShadowFails => "shadow_fails",
            Kind::ShadowSucceeds => "shadow_succeeds",
        }
    }
}

/// A difference, and the first place it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: Kind,
    /// For [`Kind::Records`], a JSON Pointer (RFC 6901) into the emitted
    /// records, as a report shows them: `/0/value/stay_category` (the first
    /// record's value, a JSON field), `/1/key`, `/0/headers`; `/2` when one
    /// side emitted a third record and the other did not.
    pub path: Option<String>,
}

/// What became of a record, as far as comparing goes.
enum Seen<'a> {
    Emitted(&'a [OutputRecord]),
    Dropped,
    Failed,
}

fn seen(result: &RecordResult) -> Seen<'_> {
    match result {
        Ok(Outcome::Emit(records)) => Seen::Emitted(records),
        Ok(Outcome::Drop) => Seen::Dropped,
        Ok(Outcome::Fail(_)) | Err(_) => Seen::Failed,
    }
}

/// How `shadow` differs from `active`, or `None` when they are the same.
pub fn compare(active: &RecordResult, shadow: &RecordResult) -> Option<Difference> {
    let kind = match (seen(active), seen(shadow)) {
        (Seen::Emitted(a), Seen::Emitted(s)) => {
            return records_path(a, s).map(|path| Difference {
                kind: Kind::Records,
                path: Some(path),
            });
        }
        (Seen::Dropped, Seen::Dropped) | (Seen::Failed, Seen::Failed) => return None,
        (Seen::Failed, _) => Kind::ShadowSucceeds,
        (_, Seen::Failed) => Kind::ShadowFails,
        (Seen::Emitted(_), Seen::Dropped) => Kind::ShadowDrops,
        (Seen::Dropped, Seen::Emitted(_)) => Kind::ShadowEmits,
    };
    Some(Difference { kind, path: None })
}

/// Where the two lists of emitted records first differ.
fn records_path(active: &[OutputRecord], shadow: &[OutputRecord]) -> Option<String> {
    for (index, (a, s)) in active.iter().zip(shadow).enumerate() {
        let field = if a.topic != s.topic {
            Some("/topic".to_owned())
        } else if a.key != s.key {
            Some("/key".to_owned())
        } else if a.headers != s.headers {
            Some("/headers".to_owned())
        } else {
            value_path(a.value.as_deref(), s.value.as_deref()).map(|inner| format!("/value{inner}"))
        };
        if let Some(field) = field {
            return Some(format!("/{index}{field}"));
        }
    }
    (active.len() != shadow.len()).then(|| format!("/{}", active.len().min(shadow.len())))
}

/// Where two values first differ, below the value itself (`""` for the
/// whole value): as JSON when both parse as JSON, else as bytes.
fn value_path(active: Option<&[u8]>, shadow: Option<&[u8]>) -> Option<String> {
    if active == shadow {
        return None;
    }
    let json = |bytes: Option<&[u8]>| serde_json::from_slice::<Value>(bytes?).ok();
    match (json(active), json(shadow)) {
        (Some(a), Some(s)) => json_path(&a, &s),
        _ => Some(String::new()),
    }
}

/// The JSON Pointer of the first place `a` and `s` differ: the active
/// side's keys in its order first, then keys only the shadow has.
fn json_path(a: &Value, s: &Value) -> Option<String> {
    match (a, s) {
        (Value::Object(a), Value::Object(s)) => {
            for (key, value) in a {
                let below = match s.get(key) {
                    Some(other) => json_path(value, other),
                    None => Some(String::new()),
                };
                if let Some(below) = below {
                    return Some(format!("/{}{below}", escape(key)));
                }
            }
            s.keys()
                .find(|key| !a.contains_key(*key))
                .map(|key| format!("/{}", escape(key)))
        }
        (Value::Array(a), Value::Array(s)) => {
            for (index, (a, s)) in a.iter().zip(s).enumerate() {
                if let Some(below) = json_path(a, s) {
                    return Some(format!("/{index}{below}"));
                }
            }
            (a.len() != s.len()).then(|| format!("/{}", a.len().min(s.len())))
        }
        (a, s) => (a != s).then(String::new),
    }
}

/// A key as a JSON Pointer segment (`~` and `/` escaped).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;
    use crate::runtime::{GuestError, GuestFailure};

    fn emit(values: &[&str]) -> RecordResult {
        Ok(Outcome::Emit(
            values
                .iter()
                .map(|v| OutputRecord {
                    topic: None,
                    key: None,
                    value: Some(v.as_bytes().to_vec()),
                    headers: Vec::new(),
                })
                .collect(),
        ))
    }

    fn with(result: RecordResult, change: impl Fn(&mut OutputRecord)) -> RecordResult {
        match result {
            Ok(Outcome::Emit(mut records)) => {
                records.iter_mut().for_each(change);
                Ok(Outcome::Emit(records))
            }
            other => other,
        }
    }

    fn trap() -> RecordResult {
        Err(GuestError {
            transform: "t".into(),
            version: "v".into(),
            record: None,
            failure: GuestFailure::Trap("unreachable".into()),
        })
    }

    fn differs(kind: Kind, path: Option<&str>) -> Option<Difference> {
        Some(Difference {
            kind,
            path: path.map(str::to_owned),
        })
    }

    #[test]
    fn outcomes_compared() {
        let booking = r#"{"id":1,"stay_category":"Short stay","tags":["a","b"]}"#;
        let cases: Vec<(&str, RecordResult, RecordResult, Option<Difference>)> = vec![
            ("same bytes", emit(&[booking]), emit(&[booking]), None),
            (
                "key order and spacing do not count",
                emit(&[booking]),
                emit(&[r#"{ "tags": ["a","b"], "stay_category": "Short stay", "id": 1 }"#]),
                None,
            ),
            (
                "a changed field",
                emit(&[booking]),
                emit(&[r#"{"id":1,"stay_category":"Long stay","tags":["a","b"]}"#]),
                differs(Kind::Records, Some("/0/value/stay_category")),
            ),
            (
                "a field the shadow lacks",
                emit(&[booking]),
                emit(&[r#"{"id":1,"tags":["a","b"]}"#]),
                differs(Kind::Records, Some("/0/value/stay_category")),
            ),
            (
                "a field only the shadow has",
                emit(&[r#"{"id":1}"#]),
                emit(&[r#"{"id":1,"a/b":2}"#]),
                differs(Kind::Records, Some("/0/value/a~1b")),
            ),
            (
                "an array item",
                emit(&[booking]),
                emit(&[r#"{"id":1,"stay_category":"Short stay","tags":["a","c"]}"#]),
                differs(Kind::Records, Some("/0/value/tags/1")),
            ),
            (
                "a number's type counts",
                emit(&[r#"{"n":1}"#]),
                emit(&[r#"{"n":1.0}"#]),
                differs(Kind::Records, Some("/0/value/n")),
            ),
            (
                "text compared as bytes",
                emit(&["plain text"]),
                emit(&["plain text!"]),
                differs(Kind::Records, Some("/0/value")),
            ),
            (
                "JSON against text",
                emit(&[r#"{"a":1}"#]),
                emit(&["{a:1}"]),
                differs(Kind::Records, Some("/0/value")),
            ),
            (
                "one more record",
                emit(&["1", "2"]),
                emit(&["1", "2", "3"]),
                differs(Kind::Records, Some("/2")),
            ),
            (
                "the second record",
                emit(&["1", "2"]),
                emit(&["1", "3"]),
                differs(Kind::Records, Some("/1/value")),
            ),
            (
                "a topic",
                emit(&["1"]),
                with(emit(&["1"]), |r| r.topic = Some("other".into())),
                differs(Kind::Records, Some("/0/topic")),
            ),
            (
                "a key",
                emit(&["1"]),
                with(emit(&["1"]), |r| r.key = Some(b"k".to_vec())),
                differs(Kind::Records, Some("/0/key")),
            ),
            (
                "a header",
                emit(&["1"]),
                with(emit(&["1"]), |r| {
                    r.headers.push(Header {
                        key: "h".into(),
                        value: None,
                    })
                }),
                differs(Kind::Records, Some("/0/headers")),
            ),
            ("both drop", Ok(Outcome::Drop), Ok(Outcome::Drop), None),
            (
                "both fail, for other reasons",
                Ok(Outcome::Fail("v1 says no".into())),
                trap(),
                None,
            ),
            (
                "the shadow drops",
                emit(&["1"]),
                Ok(Outcome::Drop),
                differs(Kind::ShadowDrops, None),
            ),
            (
                "the shadow emits",
                Ok(Outcome::Drop),
                emit(&["1"]),
                differs(Kind::ShadowEmits, None),
            ),
            (
                "the shadow traps",
                emit(&["1"]),
                trap(),
                differs(Kind::ShadowFails, None),
            ),
            (
                "the shadow refuses a dropped record",
                Ok(Outcome::Drop),
                Ok(Outcome::Fail("no".into())),
                differs(Kind::ShadowFails, None),
            ),
            (
                "the shadow handles what failed",
                Ok(Outcome::Fail("no".into())),
                emit(&["1"]),
                differs(Kind::ShadowSucceeds, None),
            ),
        ];
        for (name, active, shadow, expected) in cases {
            assert_eq!(compare(&active, &shadow), expected, "{name}");
        }
    }
}
