//! A key as a request writes it: as text (its UTF-8 bytes), or in hex or
//! base64 for keys that are not text (an Avro record, a big-endian
//! integer), so any key a producer wrote can be searched for and shown
//! back the way it was asked.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// How a key is written in a request and shown in its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyForm {
    /// The key's bytes are the text's UTF-8.
    #[default]
    Text,
    /// Two hex digits a byte, either case (`00000000002a`).
    Hex,
    /// Base64, the standard or the URL-safe alphabet, padded or not.
    Base64,
}

/// A key that is not what its form says: the reason, naming where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{written}` is not {form}: {reason}")]
pub struct BadKey {
    pub written: String,
    pub form: &'static str,
    pub reason: String,
}

/// Base64 of either alphabet: a query string's `+` and `/` need escaping,
/// so callers often send the URL-safe one; padding as they like.
const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, INDIFFERENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, INDIFFERENT);

impl KeyForm {
    /// The key's bytes from what a request wrote.
    pub fn decode(self, written: &str) -> Result<Vec<u8>, BadKey> {
        let bad = |reason: String| BadKey {
            written: written.to_owned(),
            form: self.name(),
            reason,
        };
        match self {
            KeyForm::Text => Ok(written.as_bytes().to_vec()),
            KeyForm::Hex => hex::decode(written).map_err(|e| bad(e.to_string())),
            KeyForm::Base64 => {
                // A `+` sent unescaped in a query string arrives as a space,
                // which base64 never holds.
                let written = written.replace(' ', "+");
                STANDARD
                    .decode(&written)
                    .or_else(|e| URL_SAFE.decode(&written).map_err(|_| e))
                    .map_err(|e| bad(e.to_string()))
            }
        }
    }

    /// `key` written in this form (text only when it is UTF-8, else hex).
    pub fn show(self, key: &[u8]) -> String {
        match self {
            KeyForm::Text => match std::str::from_utf8(key) {
                Ok(text) => text.to_owned(),
                Err(_) => hex::encode(key),
            },
            KeyForm::Hex => hex::encode(key),
            KeyForm::Base64 => general_purpose::STANDARD.encode(key),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyForm::Text => "text",
            KeyForm::Hex => "hex",
            KeyForm::Base64 => "base64",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_key_is_read_from_hex_or_base64_and_shown_back_the_same_way() {
        // An integer key as Kafka's LongSerializer writes it, and a
        // Confluent-framed Avro key: neither is text.
        let long: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 42];
        let avro: &[u8] = &[0, 0, 0, 0, 7, 0xfe, 0xff, 0x3f];
        assert_eq!(KeyForm::Hex.decode("000000000000002a"), Ok(long.to_vec()));
        assert_eq!(KeyForm::Hex.decode("0000000007FEFF3F"), Ok(avro.to_vec()));
        assert_eq!(KeyForm::Hex.show(avro), "0000000007feff3f");
        assert_eq!(KeyForm::Base64.show(avro), "AAAAAAf+/z8=");
        for written in ["AAAAAAf+/z8=", "AAAAAAf+/z8", "AAAAAAf-_z8", "AAAAAAf /z8="] {
            assert_eq!(
                KeyForm::Base64.decode(written),
                Ok(avro.to_vec()),
                "{written}"
            );
        }
        assert_eq!(KeyForm::Text.decode("user-1"), Ok(b"user-1".to_vec()));
        assert_eq!(KeyForm::Text.show(b"user-1"), "user-1");
        assert_eq!(KeyForm::Text.show(&[0xff]), "ff");
    }

    #[test]
    fn a_key_that_is_not_its_form_says_why() {
        let odd = KeyForm::Hex.decode("abc").unwrap_err();
        assert_eq!(odd.to_string(), "`abc` is not hex: Odd number of digits");
        let letter = KeyForm::Hex.decode("0x2a").unwrap_err();
        assert!(
            letter
                .to_string()
                .starts_with("`0x2a` is not hex: Invalid character 'x'"),
            "{letter}"
        );
        let base64 = KeyForm::Base64.decode("a*b").unwrap_err();
        assert!(
            base64.to_string().starts_with("`a*b` is not base64: "),
            "{base64}"
        );
    }
}
