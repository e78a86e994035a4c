//! A JSON object's top-level fields as spans of its text, and the merge of
//! several such objects, without building a `serde_json::Value` for any
//! of them: parsing every joined record into a tree, then writing the
//! merged tree out again, was most of a join's cost under `perf`. Field
//! values are copied as they were written (number spelling, escapes,
//! spacing inside them); the merge follows a `serde_json` map's rules: a
//! later field of the same name replaces the value and keeps the place of
//! the first.
//!
//! Linear in the number of fields: a name is looked up by comparing names
//! while an object has a few dozen fields (cheaper than hashing each), and
//! through a hash index past that, so an object with very many fields
//! costs its size, not its size squared.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Names are compared one by one up to this many fields; past it, looked
/// up in a hash index.
const SEARCHED_UP_TO: usize = 32;

/// A JSON object, checked, with the spans of its fields in `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject {
    fields: Vec<RawField>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RawField {
    key: Key,
    value: Range<usize>,
}

/// A field name: a span of the text when written without escapes (nearly
/// always), else its decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Span(Range<usize>),
    Decoded(String),
}

/// Why a value is not an object whose fields can be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    NotJson(String),
    NotAnObject,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::NotJson(e) => write!(f, "value is not JSON: {e}"),
            ObjectError::NotAnObject => f.write_str("value is not a JSON object"),
        }
    }
}

impl RawObject {
    /// Checks `text` is one JSON object and finds its fields; gives the
    /// text back as checked UTF-8 for [`RawObject::get`] and
    /// [`Merged::add`].
    pub fn parse(text: &[u8]) -> Result<(&str, Self), ObjectError> {
        let not_json = |e: &dyn fmt::Display| ObjectError::NotJson(e.to_string());
        let text_str = std::str::from_utf8(text).map_err(|e| not_json(&e))?;
        // The fields' values are taken as spans and never decoded: the one
        // check of what valid JSON is comes first.
        crate::json::check(text_str).map_err(|e| not_json(&e))?;
        if text_str.trim_start().as_bytes().first() != Some(&b'{') {
            return Err(ObjectError::NotAnObject);
        }
        let Fields(mut found) = serde_json::from_str(text_str).map_err(|e| not_json(&e))?;
        dedupe(&mut found);
        let base = text_str.as_ptr() as usize;
        let span = |part: &str| {
            let start = (part.as_ptr() as usize).saturating_sub(base);
            start..start + part.len()
        };
        let fields = found
            .into_iter()
            .map(|(key, value)| RawField {
                key: match key {
                    Cow::Borrowed(k) => Key::Span(span(k)),
                    Cow::Owned(k) => Key::Decoded(k),
                },
                value: span(value.get()),
            })
            .collect();
        Ok((text_str, RawObject { fields }))
    }

    /// The text of the value of field `name`.
    pub fn get<'t>(&self, text: &'t str, name: &str) -> Option<&'t str> {
        self.fields
            .iter()
            .find(|f| key_text(&f.key, text) == Some(name))
            .and_then(|f| str_at(text, &f.value))
    }

    /// The fields a merge of this object (its text is `text`) goes
    /// through: the top-level ones and, when it is an object, those of
    /// `nested` (merged field by field), a repeated name counted each time;
    /// `None` when they are `max` or fewer. Counted only when the text is
    /// long enough to hold more than `max` (each field takes at least five
    /// bytes: `"":0` and a comma or a brace), so a record of ordinary size
    /// costs nothing here.
    pub fn fields_past(&self, text: &str, nested: &str, max: usize) -> Option<usize> {
        if text.len() / 5 <= max {
            return None;
        }
        let count = |object: &str| {
            serde_json::from_str::<FieldCount>(object).map_or(0, |FieldCount(count)| count)
        };
        let inner = match self.get(text, nested) {
            Some(value) if value.starts_with('{') => count(value),
            _ => 0,
        };
        Some(count(text).saturating_add(inner)).filter(|&fields| fields > max)
    }

    /// Bytes this index of the text holds, beside the text itself (names
    /// written with escapes are held decoded too, no longer than written).
    pub fn index_bytes(&self) -> usize {
        self.fields.len() * std::mem::size_of::<RawField>()
    }
}

/// The fields of several objects merged in order. Names are held decoded
/// (a name written with escapes is rare) and compared as such.
pub struct Merged<'t> {
    entries: Vec<(Name<'t>, Entry<'t>)>,
    /// The [`signature`]s of the names in `entries`: a name whose bit is not
    /// set is not there, and is added without a search.
    seen: u64,
    /// Each name's place in `entries` once there are more than
    /// [`SEARCHED_UP_TO`] (built at the first search past that). Boxed: a
    /// merge of a record of ordinary size never has one, and a `Merged`
    /// nested in an entry would otherwise make every entry 40 bytes larger.
    #[expect(
        clippy::box_collection,
        reason = "one pointer in each Merged instead of a map's 48 bytes"
    )]
    index: Option<Box<HashMap<Cow<'t, str>, usize>>>,
}

enum Entry<'t> {
    Raw(&'t str),
    Object(Merged<'t>),
}

impl<'t> Merged<'t> {
    pub fn new() -> Self {
        Merged {
            entries: Vec::new(),
            seen: 0,
            index: None,
        }
    }

    /// Adds `object`'s fields (its text is `text`). A field already there
    /// takes the new value in its old place; a field named `merge_field`
    /// that is an object in both is merged field by field instead.
    pub fn add(&mut self, object: &'t RawObject, text: &'t str, merge_field: Option<&str>) {
        if self.entries.is_empty() {
            // The base: its names are unique already (`dedupe`), and there is
            // no index yet (one is built at the first search that needs it).
            self.entries.reserve(object.fields.len());
            for field in &object.fields {
                let (Some(key), Some(value)) =
                    (key_text(&field.key, text), str_at(text, &field.value))
                else {
                    continue;
                };
                self.seen |= signature(key);
                let name = Name::new(key, matches!(field.key, Key::Span(_)));
                self.entries.push((name, Entry::Raw(value)));
            }
            return;
        }
        for field in &object.fields {
            let (Some(key), Some(value)) = (key_text(&field.key, text), str_at(text, &field.value))
            else {
                continue;
            };
            if merge_field == Some(key)
                && value.starts_with('{')
                && let Some(place) = self.position(key)
                && let Some(merged) = self.as_object(place)
                && let Ok(Fields(inner)) = serde_json::from_str::<Fields<'t>>(value)
            {
                for (name, value) in inner {
                    merged.insert(Name::from_text(name), Entry::Raw(value.get()));
                }
                continue;
            }
            let name = Name::new(key, matches!(field.key, Key::Span(_)));
            self.insert(name, Entry::Raw(value));
        }
    }

    /// The merged object's JSON text.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, entry)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            key.write(out);
            out.push(b':');
            match entry {
                Entry::Raw(text) => out.extend_from_slice(text.as_bytes()),
                Entry::Object(object) => object.write(out),
            }
        }
        out.push(b'}');
    }

    /// The place of `key`: found by comparing names behind the `seen`
    /// filter while there are few (a record has tens of fields, and
    /// comparing short names is cheaper than hashing every one of them),
    /// through the index past that.
    #[inline]
    fn position(&mut self, key: &str) -> Option<usize> {
        if self.entries.len() > SEARCHED_UP_TO {
            return self.indexed_position(key);
        }
        if self.seen & signature(key) == 0 {
            return None;
        }
        self.entries.iter().position(|(k, _)| k.text == key)
    }

    /// [`Merged::position`] past [`SEARCHED_UP_TO`] names; kept out of line
    /// so the search of a record of ordinary size stays small.
    #[inline(never)]
    fn indexed_position(&mut self, key: &str) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .get_or_insert_with(|| {
                Box::new(
                    entries
                        .iter()
                        .enumerate()
                        .map(|(place, (name, _))| (name.text.clone(), place))
                        .collect(),
                )
            })
            .get(key)
            .copied()
    }

    fn insert(&mut self, name: Name<'t>, entry: Entry<'t>) {
        match self
            .position(&name.text)
            .and_then(|p| self.entries.get_mut(p))
        {
            Some(slot) => slot.1 = entry,
            None => self.push(name, entry),
        }
    }

    /// Adds a name that is not there yet.
    #[inline]
    fn push(&mut self, name: Name<'t>, entry: Entry<'t>) {
        self.seen |= signature(&name.text);
        if let Some(index) = &mut self.index {
            index.insert(name.text.clone(), self.entries.len());
        }
        self.entries.push((name, entry));
    }

    /// The entry at `place` as an object to merge into, parsed from its
    /// text the first time.
    fn as_object(&mut self, place: usize) -> Option<&mut Merged<'t>> {
        let slot = self.entries.get_mut(place)?;
        if let Entry::Raw(text) = slot.1 {
            let Fields(mut inner) = serde_json::from_str::<Fields<'t>>(text).ok()?;
            // Unique once `dedupe`d, so each is added without a search.
            dedupe(&mut inner);
            let mut merged = Merged::new();
            merged.entries.reserve(inner.len());
            for (name, value) in inner {
                merged.push(Name::from_text(name), Entry::Raw(value.get()));
            }
            slot.1 = Entry::Object(merged);
        }
        match &mut slot.1 {
            Entry::Object(object) => Some(object),
            Entry::Raw(_) => None,
        }
    }
}

impl Default for Merged<'_> {
    fn default() -> Self {
        Merged::new()
    }
}

fn key_text<'t>(key: &'t Key, text: &'t str) -> Option<&'t str> {
    match key {
        Key::Span(span) => str_at(text, span),
        Key::Decoded(name) => Some(name),
    }
}

/// A span of checked text: on character boundaries, as the parser found
/// it, so slicing checks only those (not the bytes again).
fn str_at<'t>(text: &'t str, span: &Range<usize>) -> Option<&'t str> {
    text.get(span.clone())
}

/// A field name, decoded. Borrowed only from a name written without
/// escapes, so a borrowed name can be written as it is (JSON has no raw
/// control characters or quotes in a string); one written with escapes is
/// held decoded, owned. (A flag beside the text instead made every merged
/// field 8 bytes larger, which cost the join about 2% of its time.)
struct Name<'t> {
    text: Cow<'t, str>,
}

impl<'t> Name<'t> {
    /// `name`, as it is when it was written without escapes (`plain`),
    /// else owned (rare).
    fn new(name: &'t str, plain: bool) -> Self {
        let text = if plain {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(name.to_owned())
        };
        Name { text }
    }

    /// A name as the deserializer gave it: borrowed when it had no escapes.
    fn from_text(text: Cow<'t, str>) -> Self {
        Name { text }
    }

    /// The name as a JSON string: as it is, or escaped by serde_json when
    /// it was written with escapes.
    fn write(&self, out: &mut Vec<u8>) {
        if let Cow::Borrowed(plain) = self.text {
            out.push(b'"');
            out.extend_from_slice(plain.as_bytes());
            out.push(b'"');
        } else if serde_json::to_writer(&mut *out, self.text.as_ref()).is_err() {
            // Writing a string to a Vec cannot fail; should it, the name is
            // still a valid JSON string.
            out.extend_from_slice(b"\"\"");
        }
    }
}

/// One of 64 bits for a name, from its length and its first and last
/// bytes: names of one record nearly always differ in one of them.
fn signature(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let first = bytes.first().copied().unwrap_or(0) as usize;
    let last = bytes.last().copied().unwrap_or(0) as usize;
    1 << ((bytes.len() * 7 + first * 3 + last) % 64)
}

/// A name the object repeats keeps its first place and takes its last
/// value, as a `serde_json` map does: each object then has each name once.
/// A few fields are searched behind the [`signature`] filter; many go
/// through a hash index, so a repeated name costs no more than a new one.
fn dedupe<T>(fields: &mut Vec<(Cow<'_, str>, T)>) {
    if fields.len() > SEARCHED_UP_TO {
        let all = std::mem::take(fields);
        *fields = dedupe_indexed(all);
        return;
    }
    let mut seen = 0u64;
    let mut index = 0;
    while let Some((name, _)) = fields.get(index) {
        let bit = signature(name);
        let first = if seen & bit == 0 {
            None
        } else {
            fields
                .get(..index)
                .and_then(|before| before.iter().position(|(earlier, _)| earlier == name))
        };
        seen |= bit;
        match first {
            Some(first) => {
                let (_, value) = fields.remove(index);
                if let Some(slot) = fields.get_mut(first) {
                    slot.1 = value;
                }
            }
            None => index += 1,
        }
    }
}

/// [`dedupe`] of many fields, through a hash index.
#[inline(never)]
fn dedupe_indexed<'t, T>(fields: Vec<(Cow<'t, str>, T)>) -> Vec<(Cow<'t, str>, T)> {
    let mut unique: Vec<(Cow<'t, str>, T)> = Vec::with_capacity(fields.len());
    let mut places: HashMap<Cow<'t, str>, usize> = HashMap::with_capacity(fields.len());
    for (name, value) in fields {
        match places.get(&name).and_then(|&place| unique.get_mut(place)) {
            Some(slot) => slot.1 = value,
            None => {
                places.insert(name.clone(), unique.len());
                unique.push((name, value));
            }
        }
    }
    unique
}

/// An object's fields, names borrowed from the text when they have no
/// escapes, values as their text.
struct Fields<'t>(Vec<(Cow<'t, str>, &'t RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(FieldName(name)) = map.next_key()? {
                    fields.push((name, map.next_value::<&'de RawValue>()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// How many fields an object has, as written; nothing kept.
struct FieldCount(usize);

impl<'de> Deserialize<'de> for FieldCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = FieldCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldCount, A::Error> {
                let mut count = 0usize;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                    count += 1;
                }
                Ok(FieldCount(count))
            }
        }
        deserializer.deserialize_map(CountVisitor)
    }
}

/// A field name, borrowed when the text allows.
struct FieldName<'t>(Cow<'t, str>);

impl<'de> Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<FieldName<'de>, E> {
                Ok(FieldName(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldName<'de>, E> {
                Ok(FieldName(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    /// What the merge must equal: the objects parsed into `serde_json`
    /// maps and merged there (the join's rules before it merged spans).
    fn merged_as_trees(texts: &[&str]) -> Value {
        let mut merged: Option<Map<String, Value>> = None;
        for text in texts {
            let Value::Object(object) = serde_json::from_str(text).unwrap() else {
                panic!("not an object");
            };
            match &mut merged {
                None => merged = Some(object),
                Some(merged) => {
                    for (field, value) in object {
                        match (merged.get_mut(&field), value) {
                            (Some(Value::Object(content)), Value::Object(more))
                                if field == "content" =>
                            {
                                content.extend(more)
                            }
                            (_, value) => {
                                merged.insert(field, value);
                            }
                        }
                    }
                }
            }
        }
        Value::Object(merged.unwrap())
    }

    fn merged_as_spans(texts: &[&str]) -> String {
        let objects: Vec<(&str, RawObject)> = texts
            .iter()
            .map(|t| RawObject::parse(t.as_bytes()).unwrap())
            .collect();
        let mut merged = Merged::new();
        for (index, (text, object)) in objects.iter().enumerate() {
            merged.add(object, text, (index > 0).then_some("content"));
        }
        let mut out = Vec::new();
        merged.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// Equal as JSON, and in the same field order.
    fn assert_same(texts: &[&str]) {
        let spans = merged_as_spans(texts);
        let parsed: Value = serde_json::from_str(&spans).unwrap_or_else(|e| panic!("{spans}: {e}"));
        let trees = merged_as_trees(texts);
        assert_eq!(parsed, trees, "{texts:?}");
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            serde_json::to_string(&trees).unwrap(),
            "field order of {texts:?}"
        );
    }

    #[test]
    fn later_fields_win_in_the_first_place_and_content_merges() {
        assert_same(&[
            r#"{"id": 7, "source": "a", "content": {"text": "hi", "x": 1}}"#,
            r#"{"id": "7", "lang": "en", "content": {"x": 2, "y": 3}}"#,
        ]);
        assert_eq!(
            merged_as_spans(&[r#"{"a": 1.50, "b" : [1, 2]}"#, r#"{"c":"\u00e9"}"#]),
            r#"{"a":1.50,"b":[1, 2],"c":"\u00e9"}"#,
            "values are copied as written"
        );
    }

    #[test]
    fn edge_shapes_merge_as_trees_do() {
        assert_same(&[r#"{}"#, r#"{}"#]);
        assert_same(&[r#"{"content": "text"}"#, r#"{"content": {"a": 1}}"#]);
        assert_same(&[r#"{"content": {"a": 1}}"#, r#"{"content": [1]}"#]);
        assert_same(&[r#"{"a": 1, "a": 2}"#, r#"{"b": 3}"#]);
        assert_same(&[r#"{"content": {"a": 1}, "content": {"b": 2}}"#, r#"{}"#]);
        assert_same(&[r#"{"q\"uote": 1, "n\u0041me": 2}"#, r#"{"nAme": 3}"#]);
        assert_same(&[
            r#"{"content": {"k\\ey": 1}}"#,
            r#"{"content": {"k\\ey": 2, "x": null}}"#,
            r#"{"content": {"y": {"deep": true}}}"#,
        ]);
    }

    #[test]
    fn the_key_field_is_found_and_bad_values_are_named() {
        let (text, object) =
            RawObject::parse(br#"{"id": 1, "x": {"id": 2}, "id": "last"}"#).unwrap();
        assert_eq!(object.get(text, "id"), Some(r#""last""#), "the last one");
        assert_eq!(object.get(text, "x"), Some(r#"{"id": 2}"#));
        assert_eq!(object.get(text, "nope"), None);
        assert_eq!(
            RawObject::parse(b"[1]").err().unwrap(),
            ObjectError::NotAnObject
        );
        for bad in [&b"not json"[..], b"{\"a\":", b"{\"a\":1} x", b"\xff"] {
            assert!(matches!(
                RawObject::parse(bad),
                Err(ObjectError::NotJson(_))
            ));
        }
    }

    fn small_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z\"\\\\é]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop::collection::vec(("[a-c\"]{1,2}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect()))
        })
    }

    fn object() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop_oneof![Just("content".to_owned()), "[a-c\"]{1,2}"],
                small_value(),
            ),
            0..5,
        )
        .prop_map(|fields| {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", json!(k), v))
                .collect();
            format!("{{{}}}", body.join(", "))
        })
    }

    /// An object with up to 120 fields (some named again) and a `content`
    /// of up to 80: past the few dozen where names are compared one by one.
    fn wide_object() -> impl Strategy<Value = String> {
        let fields = |max| {
            prop::collection::vec(("[a-z]{1,2}|\"", any::<i16>()), 0..max).prop_map(|fields| {
                fields
                    .iter()
                    .map(|(k, v)| format!("{}: {v}", json!(k)))
                    .collect::<Vec<_>>()
            })
        };
        (fields(120), prop::option::of(fields(80)), any::<usize>()).prop_map(
            |(mut outer, content, at)| {
                if let Some(content) = content {
                    let at = at % (outer.len() + 1);
                    outer.insert(at, format!(r#""content": {{{}}}"#, content.join(", ")));
                }
                format!("{{{}}}", outer.join(", "))
            },
        )
    }

    #[test]
    fn fields_past_a_limit_count_repeats_and_the_nested_object() {
        let text = r#"{"a": 1, "a": 2, "content": {"x": 1, "y": 2, "x": 3}, "b": {"z": 1}}"#;
        let (text, object) = RawObject::parse(text.as_bytes()).unwrap();
        assert_eq!(object.fields_past(text, "content", 6), Some(4 + 3));
        assert_eq!(object.fields_past(text, "content", 7), None);
        assert_eq!(object.fields_past(text, "b", 4), Some(4 + 1));
        assert_eq!(object.fields_past(text, "a", 3), Some(4), "not an object");
        // A limit its 69 bytes could not pass (13 fields at most).
        assert_eq!(object.fields_past(text, "content", 50), None);
    }

    proptest! {
        #[test]
        fn any_objects_merge_as_their_trees_do(texts in prop::collection::vec(object(), 1..4)) {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            assert_same(&texts);
        }

        #[test]
        fn wide_objects_merge_as_their_trees_do(texts in prop::collection::vec(wide_object(), 1..4)) {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            assert_same(&texts);
        }
    }
}
