"""Records in and out: what a transform is given (a `Record` is a view of
one record of the batch's columns), what it may return, and how that is
written into the output columns."""

import json
import re
import traceback

from ._batch import Columns


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
_SCAN = _DECODER.scan_once


def _loads(text):
    # The decoder's scanner straight away: JSONDecoder.decode adds two
    # regular-expression matches and two Python calls per value, for the
    # whitespace around it. A value with whitespace around it, or that is
    # not JSON, goes through decode(), which says why as json words it.
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text):
        return _DECODER.decode(text)
    return value


def _c_encoder():
    """json's C encoder with _ENCODER's settings, made once: what
    _ENCODER.encode makes anew for every value. None if this Python has
    none, or it writes other bytes than _ENCODER."""
    try:
        from json.encoder import c_make_encoder, encode_basestring

        markers = {}
        encoder = c_make_encoder(
            markers, _ENCODER.default, encode_basestring, None, ":", ",", False, False, False
        )
        sample = {"a": [1, 2.5, "é\n", None, True, {}], "b": -0.0}
        if "".join(encoder(sample, 0)) != _ENCODER.encode(sample):
            return None, None
        return encoder, markers
    except Exception:
        return None, None


_C_ENCODE, _MARKERS = _c_encoder()


def encode_json(value):
    """A JSON value's compact UTF-8 text, as _ENCODER writes it."""
    if _C_ENCODE is None:
        return _ENCODER.encode(value).encode()
    try:
        return "".join(_C_ENCODE(value, 0)).encode()
    except BaseException:
        # The circular-reference check's markers of the values it was in.
        _MARKERS.clear()
        raise


#: Deepest nesting read, as serde_json reads it in the Rust guests. CPython's
#: C parser recurses once per level and, in WebAssembly, runs out of stack
#: around 1,000 levels, which traps instead of raising RecursionError.
MAX_DEPTH = 128
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep(value):
    # Only called on values with more brackets than levels allowed (a cheap
    # count rules out nearly every record).
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
    return decode_span(value, 0, len(value))


def decode_span(data, start, end):
    """The JSON value of `data[start:end]`, or `NotJson` saying why not.
    The depth is checked in place; the span is copied once, as text."""
    if data.count(b"{", start, end) + data.count(b"[", start, end) > MAX_DEPTH and _too_deep(
        data[start:end]
    ):
        raise NotJson(f"value is not valid JSON: nested more than {MAX_DEPTH} levels deep")
    try:
        # Decoding first keeps json.loads from guessing UTF-16 or UTF-32
        # from the first bytes, as it does for bytes.
        return _loads(str(data[start:end], "utf-8"))
    except (ValueError, RecursionError) as e:
        raise NotJson(f"value is not valid JSON: {e}") from None


def encode(value):
    """Bytes for an output value: bytes as they are, anything else as
    compact JSON (UTF-8, field order kept)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return encode_json(value)


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


class _Batch:
    """The fields of a batch of one record, for a `Record` made by hand."""

    __slots__ = (
        "segments",
        "offsets",
        "timestamps",
        "presence",
        "header_counts",
        "header_values",
        "ends",
        "data",
    )


class _Segment:
    __slots__ = ("topic", "partition", "records")

    def __init__(self, topic, partition):
        self.topic = topic
        self.partition = partition
        self.records = 1


def _one_record(topic, partition, offset, timestamp, key, headers):
    from ._outputs import Writer  # the writer lays out spans as a batch does

    writer = Writer()
    writer.write(0, _key_bytes(key), b"", _header_pairs(headers))
    batch = _Batch()
    batch.segments = [_Segment(topic, partition)]
    batch.offsets = [offset]
    batch.timestamps = [0 if timestamp is None else timestamp]
    batch.presence = bytes([writer.presence[0] & ~2 | (0 if timestamp is None else 4)])
    batch.header_counts = writer.header_counts
    batch.header_values = bytes(writer.header_values)
    batch.ends = writer.ends
    batch.data = bytes(writer.data)
    return Columns(batch)


class Record:
    """A Kafka record as a batch function sees it: `topic`, `partition`,
    `offset`, `timestamp` (ms since the epoch, or None), `key` (bytes or
    None), `value` (its JSON value, or the bytes when raw) and `headers`
    (a list of (name, bytes-or-None) pairs, in order).

    A view of one record of the batch: every field but `value` is read from
    the batch's buffer when it is asked for, so what a transform does not
    read costs nothing. `value` may be assigned; the others are read-only.
    """

    __slots__ = ("_columns", "_i", "value")

    def __init__(self, topic, partition, offset, timestamp, key, value, headers):
        # By hand (in a transform's own tests): a batch of this one record.
        self._columns = _one_record(topic, partition, offset, timestamp, key, headers)
        self._i = 0
        self.value = value

    @property
    def topic(self):
        return self._columns.segment(self._i).topic

    @property
    def partition(self):
        return self._columns.segment(self._i).partition

    @property
    def offset(self):
        return self._columns.offsets[self._i]

    @property
    def timestamp(self):
        return self._columns.timestamp(self._i)

    @property
    def key(self):
        return self._columns.key(self._i)

    @property
    def headers(self):
        return self._columns.headers(self._i)

    def header(self, name):
        """The value of the first header called `name`, or None."""
        for key, value in self._columns.headers(self._i):
            if key == name:
                return value
        return None

    def __repr__(self):
        return f"Record(topic={self.topic!r}, partition={self.partition}, offset={self.offset})"


def view(columns, i, value, _new=object.__new__):
    """The `Record` of record `i` of `columns`, its value already read."""
    record = _new(Record)
    record._columns = columns
    record._i = i
    record.value = value
    return record


def _key_bytes(key):
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    raise TypeError(f"an output key must be str, bytes or None, not {type(key).__name__}")


def _header_pairs(headers):
    pairs = headers.items() if isinstance(headers, dict) else headers
    out = []
    for name, value in pairs:
        if isinstance(value, str):
            value = value.encode()
        elif value is not None and not isinstance(value, bytes):
            raise TypeError(f"header {name!r} must be str, bytes or None, not {type(value).__name__}")
        out.append((str(name), value))
    return out


def _write_item(writer, item, columns, i):
    if isinstance(item, Output):
        destination = writer.destination(item.topic)
        value = encode(item.value)
        if item.key is _KEEP and item.headers is _KEEP and columns is not None:
            writer.write_keeping(destination, columns, i, value)
            return
        if item.key is not _KEEP:
            key = _key_bytes(item.key)
        else:
            key = columns.key(i) if columns is not None else None
        if item.headers is not _KEEP:
            headers = _header_pairs(item.headers)
        else:
            headers = columns.headers(i) if columns is not None else []
        writer.write(destination, key, value, headers)
    elif columns is None:
        writer.write(0, None, encode(item), [])
    else:
        writer.write_keeping(0, columns, i, encode(item))


def write_rows(writer, rows):
    """Writes an aggregator's rows: no input to take a key or headers from."""
    for row in rows:
        _write_item(writer, row, None, 0)


def _kind(value):
    return type(value).__name__


#: Verdict bytes of wit/sluice.wit's `results.verdicts`.
EMIT = 0
DROP = 1
FAIL = 2


def write_result(writer, result, columns, i):
    """Writes what `process` returned for input record `i` and returns
    (verdict, records written, reason or None). A result that cannot be
    written raises, and leaves nothing written."""
    if result is None:
        return DROP, 0, None
    if isinstance(result, dict):
        # The usual case, first: one JSON object with the input's key and headers.
        if columns.plain:
            writer.plain.append(encode_json(result))
        else:
            writer.write_keeping(0, columns, i, encode_json(result))
        return EMIT, 1, None
    if isinstance(result, Reject):
        return FAIL, 0, result.reason
    if isinstance(result, (list, Output, bytes, bytearray, memoryview)):
        items = result if isinstance(result, list) else (result,)
        mark = writer.mark()
        try:
            for item in items:
                _write_item(writer, item, columns, i)
        except BaseException:
            writer.rollback(mark)
            raise
        return EMIT, len(items), None
    raise TypeError(
        f"the transform returned {_kind(result)}; expected a dict (one record), "
        "a list (several), None (drop), bytes, an Output or a Reject"
    )
