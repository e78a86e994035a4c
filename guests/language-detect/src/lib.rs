//! Sluice transformer: detects the language of each message's text (the
//! Python ETL workers' language-detector worker), with `whatlang` compiled
//! into the component instead of the Python worker's call to an external API.
//!
//! Each record's value is a JSON object. When it has a string
//! `content.text`, the transform sets `content.language` to the language's
//! ISO 639-1 code (see [`iso639_1`]) and `content.language_confidence` to
//! whatlang's confidence (0 to 1); every other field is kept as it was, in
//! order. Text whose language cannot be told (empty, no letters, too little
//! to go on) still passes, with `language` null and confidence 0. A value
//! without `content.text` passes unchanged.
//!
//! A record fails alone, with a reason naming the field, when its value is
//! missing or not a JSON object, when `content` is present but not an object,
//! or when `content.text` is present but not a string.

#![cfg(target_arch = "wasm32")]

use serde_json::{Map, Value};
use sluice_guest::{KafkaRecord, Outcome, OutputRecord, Transform};
use whatlang::Lang;

struct LanguageDetect;

impl Transform for LanguageDetect {
    fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome> {
        batch.into_iter().map(detect_record).collect()
    }
}

fn detect_record(mut record: KafkaRecord) -> Outcome {
    let Some(value) = record.value.take() else {
        return Outcome::Fail("record has no value (a tombstone), expected a JSON object".into());
    };
    match enrich(&value) {
        // Nothing to detect: pass the original bytes on untouched.
        Ok(None) => Outcome::Emit(vec![OutputRecord::derived_from(record, value)]),
        Ok(Some(enriched)) => Outcome::Emit(vec![OutputRecord::derived_from(record, enriched)]),
        Err(reason) => Outcome::Fail(reason),
    }
}

/// The value with `content.language` and `content.language_confidence` set,
/// `None` when it has no `content.text` (so it passes unchanged), or why the
/// record is bad.
fn enrich(value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut message: Value =
        serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    let Value::Object(message_fields) = &mut message else {
        return Err(format!(
            "value is not a JSON object (found {})",
            kind(&message)
        ));
    };
    let content = match message_fields.get_mut("content") {
        None => return Ok(None),
        Some(Value::Object(content)) => content,
        Some(other) => {
            return Err(format!("content is not an object (found {})", kind(other)));
        }
    };
    let text = match content.get("text") {
        None => return Ok(None),
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(format!(
                "content.text is not a string (found {})",
                kind(other)
            ));
        }
    };
    let (language, confidence) = match detect(text) {
        Some((code, confidence)) => (Value::from(code), confidence),
        None => (Value::Null, 0.0),
    };
    set_detection(content, language, confidence);
    serde_json::to_vec(&message)
        .map(Some)
        .map_err(|e| format!("cannot encode the enriched value: {e}"))
}

fn set_detection(content: &mut Map<String, Value>, language: Value, confidence: f64) {
    content.insert("language".to_owned(), language);
    content.insert("language_confidence".to_owned(), Value::from(confidence));
}

/// The ISO 639-1 code of `text`'s language and whatlang's confidence in it
/// (0 to 1), or `None` when whatlang cannot tell (no letters at all) or has
/// no confidence at all in its best guess.
fn detect(text: &str) -> Option<(&'static str, f64)> {
    let info = whatlang::detect(text)?;
    let confidence = info.confidence();
    // A NaN or non-positive confidence is no detection; clamp the rest in
    // case a whatlang release ever strays outside 0..1.
    if confidence.is_nan() || confidence <= 0.0 {
        return None;
    }
    Some((iso639_1(info.lang()), confidence.min(1.0)))
}

/// The ISO 639-1 (two-letter) code of a language whatlang detects; whatlang
/// names languages by their ISO 639-3 code ([`Lang::code`]).
///
/// Every language whatlang 0.18 supports has an ISO 639-1 code, so no
/// language falls back to its three-letter code today. Two of them are
/// individual languages whose two-letter code is that of the macrolanguage
/// they belong to, as is usual (BCP 47 does the same): Mandarin (`cmn`) is
/// `zh`, Chinese, and Iranian Persian (`pes`) is `fa`, Persian. Norwegian
/// Bokmål (`nob`) is `nb`, not Norwegian's `no`.
///
/// The match is exhaustive on purpose: a whatlang upgrade that adds a
/// language does not build until the language is mapped here, and a
/// language with no ISO 639-1 code is then to be mapped to `lang.code()`,
/// its ISO 639-3 code, and listed in this comment.
fn iso639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Afr => "af",
        Lang::Aka => "ak",
        Lang::Amh => "am",
        Lang::Ara => "ar",
        Lang::Aze => "az",
        Lang::Bel => "be",
        Lang::Ben => "bn",
        Lang::Bul => "bg",
        Lang::Cat => "ca",
        Lang::Ces => "cs",
        Lang::Cmn => "zh",
        Lang::Cym => "cy",
        Lang::Dan => "da",
        Lang::Deu => "de",
        Lang::Ell => "el",
        Lang::Eng => "en",
        Lang::Epo => "eo",
        Lang::Est => "et",
        Lang::Fin => "fi",
        Lang::Fra => "fr",
        Lang::Guj => "gu",
        Lang::Heb => "he",
        Lang::Hin => "hi",
        Lang::Hrv => "hr",
        Lang::Hun => "hu",
        Lang::Hye => "hy",
        Lang::Ind => "id",
        Lang::Ita => "it",
        Lang::Jav => "jv",
        Lang::Jpn => "ja",
        Lang::Kan => "kn",
        Lang::Kat => "ka",
        Lang::Khm => "km",
        Lang::Kor => "ko",
        Lang::Lat => "la",
        Lang::Lav => "lv",
        Lang::Lit => "lt",
        Lang::Mal => "ml",
        Lang::Mar => "mr",
        Lang::Mkd => "mk",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Nld => "nl",
        Lang::Nob => "nb",
        Lang::Ori => "or",
        Lang::Pan => "pa",
        Lang::Pes => "fa",
        Lang::Pol => "pl",
        Lang::Por => "pt",
        Lang::Ron => "ro",
        Lang::Rus => "ru",
        Lang::Sin => "si",
        Lang::Slk => "sk",
        Lang::Slv => "sl",
        Lang::Sna => "sn",
        Lang::Spa => "es",
        Lang::Srp => "sr",
        Lang::Swe => "sv",
        Lang::Tam => "ta",
        Lang::Tel => "te",
        Lang::Tgl => "tl",
        Lang::Tha => "th",
        Lang::Tuk => "tk",
        Lang::Tur => "tr",
        Lang::Ukr => "uk",
        Lang::Urd => "ur",
        Lang::Uzb => "uz",
        Lang::Vie => "vi",
        Lang::Yid => "yi",
        Lang::Zul => "zu",
    }
}

/// What a JSON value is, for failure reasons.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

sluice_guest::export_transformer!(LanguageDetect);
