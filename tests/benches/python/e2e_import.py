"""A Python importer against the broker: JSON lines files read in path
order, each row parsed with json, keyed by its `id`, produced with the file
and row headers, 1,000 rows at a time with their deliveries awaited (the
point where `sluice import` records its progress). Timed whole, as Sluice's
import is.
"""

import json
import os

from confluent_kafka import Producer

from common import Deliveries, Stopwatch, args, producer_config, report

CHUNK = 1000


def main():
    a = args()
    folder, topic = a["folder"], a["output"]
    watch = Stopwatch()
    rows = size = 0
    with watch:
        producer = Producer(producer_config(a))
        deliveries = Deliveries()
        # As `sluice import`, which keeps its progress in `_sluice_import/`.
        for name in sorted(n for n in os.listdir(folder) if n.endswith(".jsonl")):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            size += len(data)
            row = 0
            for line in data.split(b"\n"):
                if not line.strip():
                    continue
                value = json.loads(line)
                key = value.get("id")
                producer.produce(
                    topic,
                    value=json.dumps(value, separators=(",", ":")).encode(),
                    key=None if key is None else (key if isinstance(key, str) else json.dumps(key)).encode(),
                    headers=[("sluice.import.file", name.encode()), ("sluice.import.row", str(row).encode())],
                    on_delivery=deliveries,
                )
                row += 1
                rows += 1
                if rows % CHUNK == 0:
                    producer.flush()
                    deliveries.check()
        producer.flush()
        deliveries.check()
    report(rows, size, rows, watch)


main()
