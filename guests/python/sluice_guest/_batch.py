"""A batch of wit/sluice.wit (`sluice:transform@0.2.0`) read in place.

The host sends a batch as a few flat columns: one byte buffer (`data`)
holding every record's key, value and headers back to back, the `ends` of
those spans, and per-record integers. Nothing here copies a field out of
`data` until the transform's code asks for it: a record is an index, and
a field is sliced when it is touched. So a transform that reads only
values pays for values only.
"""

from bisect import bisect_right
from itertools import accumulate

#: Bits of a record's byte in `presence`.
KEY = 1
VALUE = 2
TIMESTAMP = 4


class BrokenBatch(Exception):
    """The columns do not describe the same records: the host broke the
    contract. Raised before any record is read."""


class Columns:
    """The columns of one batch and where each record's entries start.

    `firsts[i]` is record `i`'s first entry in `ends` (its key's end), and
    `header_firsts[i]` its first header's place in `header_values`. Without
    headers (the usual case) both are ranges, computed as they are read.
    """

    __slots__ = (
        "count",
        "data",
        "ends",
        "firsts",
        "header_counts",
        "header_firsts",
        "header_values",
        "offsets",
        "plain",
        "presence",
        "segment_ends",
        "segments",
        "timestamps",
    )

    def __init__(self, batch):
        count = len(batch.offsets)
        header_counts = batch.header_counts
        self.count = count
        self.data = batch.data
        self.ends = ends = batch.ends
        self.presence = batch.presence
        self.offsets = batch.offsets
        self.timestamps = batch.timestamps
        self.header_counts = header_counts
        self.header_values = batch.header_values
        self.segments = segments = batch.segments
        self.segment_ends = list(accumulate(s.records for s in segments))
        presence = batch.presence
        keys = sum(presence.count(bits) for bits in (KEY, KEY | VALUE, KEY | TIMESTAMP, 7))
        headers = any(header_counts)
        #: No record has a key or a header (the common case of JSON topics).
        self.plain = not keys and not headers
        if headers:
            self.firsts = list(accumulate((2 + 2 * c for c in header_counts), initial=0))
            self.header_firsts = list(accumulate(header_counts, initial=0))
        else:
            self.firsts = range(0, 2 * count + 1, 2)
            self.header_firsts = bytes(count + 1)
        widths = (
            len(batch.timestamps),
            len(batch.presence),
            len(header_counts),
            self.segment_ends[-1] if segments else 0,
        )
        if any(width != count for width in widths) or len(ends) != self.firsts[count]:
            raise BrokenBatch(
                f"a batch of {count} offsets came with {widths[0]} timestamps, "
                f"{widths[1]} presence bytes, {widths[2]} header counts, {widths[3]} "
                f"records in its segments and {len(ends)} spans for {self.firsts[count]}"
            )
        if ends and ends[-1] != len(self.data):
            raise BrokenBatch(f"the spans end at {ends[-1]} in {len(self.data)} bytes of data")

    def start(self, i):
        """Where record `i`'s first span (its key) starts in `data`."""
        first = self.firsts[i]
        return self.ends[first - 1] if first else 0

    def value(self, i):
        """Record `i`'s value as bytes, or None."""
        if not self.presence[i] & VALUE:
            return None
        first = self.firsts[i]
        return self.data[self.ends[first] : self.ends[first + 1]]

    def key(self, i):
        """Record `i`'s key as bytes, or None."""
        if not self.presence[i] & KEY:
            return None
        return self.data[self.start(i) : self.ends[self.firsts[i]]]

    def timestamp(self, i):
        return self.timestamps[i] if self.presence[i] & TIMESTAMP else None

    def segment(self, i):
        return self.segments[bisect_right(self.segment_ends, i)]

    def headers(self, i):
        """Record `i`'s headers, a list of (name, bytes-or-None) pairs."""
        count = self.header_counts[i]
        if not count:
            return []
        data, ends, has_value = self.data, self.ends, self.header_values
        entry = self.firsts[i] + 2
        first_header = self.header_firsts[i]
        pairs = []
        for h in range(count):
            name_start = ends[entry - 1]
            name_end = ends[entry]
            value_end = ends[entry + 1]
            name = str(data[name_start:name_end], "utf-8")
            value = data[name_end:value_end] if has_value[first_header + h] else None
            pairs.append((name, value))
            entry += 2
        return pairs

    def where(self, i):
        """Record `i` as a log line names it."""
        segment = self.segment(i)
        return f"topic {segment.topic} partition {segment.partition} offset {self.offsets[i]}"
