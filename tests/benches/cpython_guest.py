"""Runs a Python guest's code in CPython, outside WebAssembly, as its
component runs it: the same SDK and app module, the same dataclasses
(componentize-py's stub bindings, with the host's log and metadata
connected to nothing), the same batches laid out as the host lays them
out. The python_guests benchmark starts it to time the same code with and
without the sandbox.

    python cpython_guest.py BINDINGS SOURCE INPUT BATCH ROUNDS [OUTPUT]

INPUT holds one record value per line. Prints one JSON line: records and
seconds spent in `process` in the best of ROUNDS passes; OUTPUT, when
given, receives the first emitted value of each record, one per line
("-" for none).
"""

import json
import sys
import time


def batch_of(types, values, first_offset):
    """The `batch` record of wit/sluice.wit holding `values`."""
    ends = []
    end = 0
    for value in values:
        ends.append(end)  # the key: none, an empty span
        end += len(value)
        ends.append(end)
    return types.Batch(
        [types.Segment("expedia", 0, len(values))],
        list(range(first_offset, first_offset + len(values))),
        [0] * len(values),
        bytes([2]) * len(values),  # a value, no key, no timestamp
        [0] * len(values),
        b"",
        ends,
        b"".join(values),
    )


def first_values(results):
    """The first emitted value of each input record ("-" for none)."""
    out = results.outputs
    entry = 0  # the next output record's first entry in out.ends
    record = 0
    for verdict, emitted in zip(results.verdicts, results.emitted):
        if verdict == 0 and emitted:
            value_start = out.ends[entry]
            yield out.data[value_start : out.ends[entry + 1]]
        else:
            yield b"-"
        for _ in range(emitted):
            entry += 2 + 2 * out.header_counts[record]
            record += 1


def main():
    bindings, source, input_path, batch, rounds = sys.argv[1:6]
    output_path = sys.argv[6] if len(sys.argv) > 6 else None
    sys.path[:0] = [bindings, source]

    from wit_world.imports import host, types

    host.log = lambda level, message: None
    host.metadata = lambda: []

    import app

    with open(input_path, "rb") as f:
        values = f.read().splitlines()
    size = int(batch)
    # Each batch laid out as the host lays it out (wit/sluice.wit): no
    # keys, no headers, one topic and partition.
    batches = [batch_of(types, values[i : i + size], i) for i in range(0, len(values), size)]
    transform = app.Transform()
    transform.process(batches[0])  # warm up, as the benchmark does in WebAssembly

    seconds = None
    for _ in range(int(rounds)):
        results = []
        started = time.perf_counter()
        for b in batches:
            results.append(transform.process(b))
        elapsed = time.perf_counter() - started
        seconds = elapsed if seconds is None else min(seconds, elapsed)

    if output_path:
        with open(output_path, "wb") as f:
            for r in results:
                for value in first_values(r):
                    f.write(value)
                    f.write(b"\n")
    # The SDK sends print() to the host's log; the report goes to the real stdout.
    sys.__stdout__.write(json.dumps({"records": len(values), "seconds": seconds}) + "\n")


if __name__ == "__main__":
    main()
