"""Output records written straight into the columns of wit/sluice.wit's
`outputs` (`sluice:transform@0.2.0`), laid out as a batch is: one byte
buffer of keys, values and headers, the ends of their spans, and a few
integers per record. No object is made per output record; a record that
keeps its input's key and headers has their bytes copied across in one
slice each.
"""

from itertools import accumulate

from wit_world.imports import types as _wit

from ._batch import KEY, VALUE

_KEY_AND_VALUE = KEY | VALUE


class Writer:
    """The output records of one call, in the order they are written."""

    __slots__ = (
        "_topic_index",
        "plain",
        "data",
        "destinations",
        "ends",
        "header_counts",
        "header_values",
        "presence",
        "topics",
    )

    def __init__(self):
        self.topics = []
        self._topic_index = {}
        self.destinations = []
        self.presence = bytearray()
        self.header_counts = []
        self.header_values = bytearray()
        self.ends = []
        self.data = bytearray()
        #: Values of records with no key and no headers, for every output,
        #: not yet in the columns: the usual output of a batch without keys
        #: or headers, appended here with one call and laid out together.
        self.plain = []

    def __len__(self):
        return len(self.destinations) + len(self.plain)

    def flush(self):
        """Lays out the pending plain values, a few whole-list operations
        for all of them rather than a dozen steps per record."""
        values = self.plain
        if not values:
            return
        count = len(values)
        data = self.data
        bounds = list(accumulate(map(len, values), initial=len(data)))
        data += b"".join(values)
        spans = [0] * (2 * count)
        spans[0::2] = bounds[:-1]  # each empty key ends where its value starts
        spans[1::2] = bounds[1:]
        self.ends += spans
        self.destinations += [0] * count
        self.presence += bytes((VALUE,)) * count
        self.header_counts += [0] * count
        values.clear()  # in place: the exports hold its append

    def destination(self, topic):
        """The `destinations` entry for `topic` (None: every output)."""
        if topic is None:
            return 0
        index = self._topic_index.get(topic)
        if index is None:
            if not isinstance(topic, str):
                raise TypeError(f"an output topic must be str or None, not {type(topic).__name__}")
            self.topics.append(topic)
            index = self._topic_index[topic] = len(self.topics)
        return index

    def mark(self):
        """Where the columns stand, for `rollback`."""
        self.flush()
        return (
            len(self.destinations),
            len(self.ends),
            len(self.data),
            len(self.header_values),
            len(self.topics),
        )

    def rollback(self, mark):
        """Forgets every record written since `mark`: a result that fails
        half-way leaves nothing behind."""
        records, ends, data, header_values, topics = mark
        for topic in self.topics[topics:]:
            del self._topic_index[topic]
        del self.topics[topics:]
        del self.destinations[records:]
        del self.presence[records:]
        del self.header_counts[records:]
        del self.ends[ends:]
        del self.data[data:]
        del self.header_values[header_values:]

    def write(self, destination, key, value, headers):
        """One record: `key` bytes or None, `value` bytes, `headers` a list
        of (str, bytes-or-None) pairs."""
        if self.plain:
            self.flush()
        data, ends = self.data, self.ends
        self.destinations.append(destination)
        if key is None:
            self.presence.append(VALUE)
        else:
            self.presence.append(_KEY_AND_VALUE)
            data += key
        ends.append(len(data))
        data += value
        ends.append(len(data))
        self.header_counts.append(len(headers))
        for name, header_value in headers:
            data += name.encode()
            ends.append(len(data))
            if header_value is None:
                self.header_values.append(0)
            else:
                self.header_values.append(1)
                data += header_value
            ends.append(len(data))

    def write_keeping(self, destination, columns, i, value):
        """One record with input record `i`'s key and headers, copied from
        the batch's buffer as they are."""
        if self.plain:
            self.flush()
        data, ends = self.data, self.ends
        in_ends = columns.ends
        first = columns.firsts[i]
        key_end = in_ends[first]
        self.destinations.append(destination)
        if columns.presence[i] & KEY:
            self.presence.append(_KEY_AND_VALUE)
            data += columns.data[in_ends[first - 1] if first else 0 : key_end]
        else:
            self.presence.append(VALUE)
        ends.append(len(data))
        data += value
        ends.append(len(data))
        count = columns.header_counts[i]
        self.header_counts.append(count)
        if count:
            value_end = in_ends[first + 1]
            last = first + 2 + 2 * count
            shift = len(data) - value_end
            data += columns.data[value_end : in_ends[last - 1]]
            ends.extend([end + shift for end in in_ends[first + 2 : last]])
            h = columns.header_firsts[i]
            self.header_values += columns.header_values[h : h + count]

    def outputs(self):
        """The WIT `outputs` record of everything written."""
        self.flush()
        return _wit.Outputs(
            self.topics,
            self.destinations,
            bytes(self.presence),
            self.header_counts,
            bytes(self.header_values),
            self.ends,
            bytes(self.data),
        )
