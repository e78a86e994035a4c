"""Runs a Python guest's code in CPython, outside WebAssembly, as its
component runs it: the same SDK and app module, the same dataclasses
(componentize-py's stub bindings, with the host's log and metadata
connected to nothing), the same batches. The python_guests benchmark
starts it to time the same code with and without the sandbox.

    python cpython_guest.py BINDINGS SOURCE INPUT BATCH [OUTPUT]

INPUT holds one record value per line. Prints one JSON line: records and
seconds spent in `process`; OUTPUT, when given, receives the first
emitted value of each record, one per line ("-" for none).
"""

import json
import sys
import time


def main():
    bindings, source, input_path, batch = sys.argv[1:5]
    output_path = sys.argv[5] if len(sys.argv) > 5 else None
    sys.path[:0] = [bindings, source]

    from wit_world.imports import host, types

    host.log = lambda level, message: None
    host.metadata = lambda: []

    import app

    with open(input_path, "rb") as f:
        values = f.read().splitlines()
    records = [
        types.KafkaRecord("expedia", 0, offset, None, None, value, [])
        for offset, value in enumerate(values)
    ]
    size = int(batch)
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    transform = app.Transform()
    transform.process(chunks[0])  # warm up, as the benchmark does in WebAssembly

    outcomes = []
    started = time.perf_counter()
    for chunk in chunks:
        outcomes.extend(transform.process(chunk))
    seconds = time.perf_counter() - started

    if output_path:
        with open(output_path, "wb") as f:
            for outcome in outcomes:
                emitted = getattr(outcome, "value", None)
                f.write(emitted[0].value if isinstance(emitted, list) and emitted else b"-")
                f.write(b"\n")
    # The SDK sends print() to the host's log; the report goes to the real stdout.
    sys.__stdout__.write(json.dumps({"records": len(records), "seconds": seconds}) + "\n")


if __name__ == "__main__":
    main()
