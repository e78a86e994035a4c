"""Sluice transformer in Python: the language-detection worker, detecting
the language of `content.text` with pyfranc (franc's trigram models, the
method whatlang uses in the Rust language-detect guest) bundled into the
component, instead of a call to an external API.

It behaves as the Rust guest does: a JSON object whose `content.text` is a
string gets `content.language` (ISO 639-1, or null when the language cannot
be told) and `content.language_confidence` (0 to 1); every other field is
kept, in order, and a message without `content.text` passes unchanged. A
value that is not an object, a `content` that is not an object and a
`content.text` that is not a string are rejected with a reason naming them.
"""

from pyfranc import franc
from pyfranc.trigram_utils import asDictionary as trigram_counts

from sluice_guest import Reject, transformer

#: franc's ISO 639-3 codes of the languages told apart here (those of the
#: Rust guest), and their ISO 639-1 codes. franc knows 414 languages, many of
#: them close kin (Scots beside English, Ladino beside Spanish): among all of
#: them a short English sentence is as often "Scots". Standard Arabic, Latvian,
#: Estonian, Nepali, Uzbek and Azerbaijani have individual-language codes in
#: franc (arb, lvs, ekk, npi, uzn, azj); Twi (twi) stands for Akan.
ISO639_1 = {
    "afr": "af", "amh": "am", "arb": "ar", "azj": "az", "bel": "be", "ben": "bn",
    "bul": "bg", "cat": "ca", "ces": "cs", "cmn": "zh", "cym": "cy", "dan": "da",
    "deu": "de", "ekk": "et", "ell": "el", "eng": "en", "epo": "eo", "fin": "fi",
    "fra": "fr", "guj": "gu", "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu",
    "hye": "hy", "ind": "id", "ita": "it", "jav": "jv", "jpn": "ja", "kan": "kn",
    "kat": "ka", "khm": "km", "kor": "ko", "lat": "la", "lit": "lt", "lvs": "lv",
    "mal": "ml", "mar": "mr", "mkd": "mk", "mya": "my", "nld": "nl", "nob": "nb",
    "npi": "ne", "pan": "pa", "pes": "fa", "pol": "pl", "por": "pt", "ron": "ro",
    "rus": "ru", "sin": "si", "slk": "sk", "slv": "sl", "sna": "sn", "spa": "es",
    "srp": "sr", "swe": "sv", "tam": "ta", "tel": "te", "tgl": "tl", "tha": "th",
    "tuk": "tk", "tur": "tr", "twi": "ak", "ukr": "uk", "urd": "ur", "uzn": "uz",
    "vie": "vi", "ydd": "yi", "zul": "zu",
}
_ALLOWED = frozenset(ISO639_1)


def _confidence(best, second, trigrams):
    """whatlang's confidence (the Rust guest's) from franc's scores of the
    best and second-best language: 1 when the lead is clear for a text of
    this many trigrams, less as it narrows."""
    if best <= 0:
        return 0.0
    if second <= 0:
        return min(best, 1.0)
    confident_rate = 3.0 / max(trigrams, 1) + 0.015
    rate = (best - second) / second
    return 1.0 if rate > confident_rate else rate / confident_rate


def detect(text):
    """The ISO 639-1 code of `text`'s language and a confidence (0 to 1),
    or (None, 0.0) when it cannot be told."""
    ranked = franc.lang_detect(text, whitelist=_ALLOWED)
    language, best = ranked[0]
    if language == "und":
        return None, 0.0
    if len(ranked) == 1:
        # Told by its script alone (Japanese kana, Hangul, Thai...).
        confidence = 1.0
    else:
        confidence = _confidence(best, ranked[1][1], len(trigram_counts(text)))
    return ISO639_1.get(language, language), confidence


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def process(message, consumer_name, metadatas):
    if not isinstance(message, dict):
        raise Reject(f"value is not a JSON object (found {_kind(message)})")
    if "content" not in message:
        return message
    content = message["content"]
    if not isinstance(content, dict):
        raise Reject(f"content is not an object (found {_kind(content)})")
    if "text" not in content:
        return message
    text = content["text"]
    if not isinstance(text, str):
        raise Reject(f"content.text is not a string (found {_kind(text)})")
    content["language"], content["language_confidence"] = detect(text)
    return message


Transform = transformer(process)
