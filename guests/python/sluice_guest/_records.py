"""Records in and out: what a transform is given, what it may return, and
how both cross to and from the WIT types of wit/sluice.wit."""

import json
import re
import traceback

from wit_world.imports import types as _wit


class Reject(Exception):
    """Raise `Reject("reason")` from `process` to refuse a record: it goes
    to the pipeline's dead-letter topic with `reason` as
    `sluice.error.reason`, and the rest of the batch goes on. In a batch
    function, put a `Reject` in the record's place in the returned list.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = str(reason)


class NotJson(ValueError):
    """A value that is not UTF-8 JSON text (RFC 8259): what the host would
    refuse to produce, so it is refused on the way in as well."""


def _no_constants(name):
    # Python's json reads NaN and Infinity, which are not JSON: a record
    # carrying them would be read differently by every other consumer.
    raise ValueError(f"{name} is not a JSON value")


# Made once: json.loads and json.dumps with options build a new decoder or
# encoder on every call, a good part of the time spent on a small record.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: Deepest nesting read, as serde_json reads it in the Rust guests. CPython's
#: C parser recurses once per level and, in WebAssembly, runs out of stack
#: around 1,000 levels, which traps instead of raising RecursionError.
MAX_DEPTH = 128
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep(value):
    # Cheap for nearly every record: fewer brackets than levels allowed.
    if value.count(b"{") + value.count(b"[") <= MAX_DEPTH:
        return False
    depth = 0
    for token in _STRUCTURE.finditer(value):
        bracket = token.group()
        if bracket in (b"{", b"["):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif bracket in (b"}", b"]"):
            depth -= 1
    return False


def decode(value):
    """The JSON value of a record's bytes, or `NotJson` saying why not."""
    if _too_deep(value):
        raise NotJson(f"value is not valid JSON: nested more than {MAX_DEPTH} levels deep")
    try:
        # Decoding first keeps json.loads from guessing UTF-16 or UTF-32
        # from the first bytes, as it does for bytes.
        return _DECODER.decode(value.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise NotJson(f"value is not valid JSON: {e}") from None


def encode(value):
    """Bytes for an output value: bytes as they are, anything else as
    compact JSON (UTF-8, field order kept)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return _ENCODER.encode(value).encode()


def failure_reason(error):
    """The last line of the exception's traceback, as Python prints it
    (`KeyError: 'content'`): the dead-letter reason of a record whose
    transform raised."""
    lines = traceback.format_exception_only(type(error), error)
    # Notes added with add_note() are printed after that line, one entry each.
    notes = getattr(error, "__notes__", None) or ()
    return lines[-1 - len(notes)].strip()


_KEEP = object()


class Output:
    """A record to produce, when a plain value is not enough.

    `value` is a JSON value, or bytes sent as they are. `topic` is one of the
    pipeline's declared outputs (`None`: every one). `key` (str or bytes)
    and `headers` (a dict, or a list of (name, value) pairs; values str,
    bytes or None) default to the input record's; an aggregator's rows have
    none.
    """

    __slots__ = ("value", "topic", "key", "headers")

    def __init__(self, value, *, topic=None, key=_KEEP, headers=_KEEP):
        self.value = value
        self.topic = topic
        self.key = key
        self.headers = headers

    def __repr__(self):
        return f"Output({self.value!r}, topic={self.topic!r})"


class Record:
    """A Kafka record as a batch function sees it: `topic`, `partition`,
    `offset`, `timestamp` (ms since the epoch, or None), `key` (bytes or
    None), `value` (its JSON value, or the bytes when raw) and `headers`
    (a list of (name, bytes-or-None) pairs, in order)."""

    __slots__ = ("topic", "partition", "offset", "timestamp", "key", "value", "headers")

    def __init__(self, topic, partition, offset, timestamp, key, value, headers):
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers

    def header(self, name):
        """The value of the first header called `name`, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self):
        return f"Record(topic={self.topic!r}, partition={self.partition}, offset={self.offset})"


def _key_bytes(key):
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    raise TypeError(f"an output key must be str, bytes or None, not {type(key).__name__}")


def _wit_headers(headers):
    pairs = headers.items() if isinstance(headers, dict) else headers
    out = []
    for name, value in pairs:
        if isinstance(value, str):
            value = value.encode()
        elif value is not None and not isinstance(value, bytes):
            raise TypeError(f"header {name!r} must be str, bytes or None, not {type(value).__name__}")
        out.append(_wit.Header(str(name), value))
    return out


def output_record(item, key, headers):
    """One WIT output record for an item a transform returned; `key` and
    `headers` (WIT form) are the defaults an `Output` may override."""
    if isinstance(item, Output):
        if item.key is not _KEEP:
            key = _key_bytes(item.key)
        if item.headers is not _KEEP:
            headers = _wit_headers(item.headers)
        return _wit.OutputRecord(item.topic, key, encode(item.value), headers)
    return _wit.OutputRecord(None, key, encode(item), headers)


def _kind(value):
    return type(value).__name__


def outcome(result, key, headers):
    """The WIT outcome for what `process` returned for one record."""
    if result is None:
        return _wit.Outcome_Drop()
    if isinstance(result, Reject):
        return _wit.Outcome_Fail(result.reason)
    if isinstance(result, list):
        return _wit.Outcome_Emit([output_record(item, key, headers) for item in result])
    if isinstance(result, (dict, Output, bytes, bytearray, memoryview)):
        return _wit.Outcome_Emit([output_record(result, key, headers)])
    raise TypeError(
        f"the transform returned {_kind(result)}; expected a dict (one record), "
        "a list (several), None (drop), bytes, an Output or a Reject"
    )


def record(wit_record, raw):
    """The `Record` for a WIT record; raises `NotJson` for a JSON batch."""
    value = wit_record.value
    if not raw:
        if value is None:
            raise NotJson("record has no value (a tombstone), expected JSON")
        value = decode(value)
    return Record(
        wit_record.topic,
        wit_record.partition,
        wit_record.offset,
        wit_record.timestamp,
        wit_record.key,
        value,
        [(h.key, h.value) for h in wit_record.headers],
    )
