"""The import's job in Python: files already in memory (JSON lines with
json, Avro with fastavro, Parquet with pyarrow) to records to produce: each
row as JSON text, keyed by its `id`, with the file and row headers, as
`sluice import` makes them. Rows are made a chunk of 1,000 at a time, as
they would be handed to a producer.
"""

import io
import json
import os

import fastavro
import pyarrow.parquet as pq

from common import Stopwatch, args, report

TOPIC = "expedia"
CHUNK = 1000


def rows_of(fmt, data):
    if fmt == "jsonl":
        for line in data.split(b"\n"):
            if line.strip():
                yield json.loads(line)
    elif fmt == "avro":
        yield from fastavro.reader(io.BytesIO(data))
    else:
        for batch in pq.ParquetFile(io.BytesIO(data)).iter_batches():
            yield from batch.to_pylist()


def record(name, row, value):
    key = value.get("id")
    if key is not None:
        key = (key if isinstance(key, str) else json.dumps(key)).encode()
    headers = [("sluice.import.file", name.encode()), ("sluice.import.row", str(row).encode())]
    return (TOPIC, key, json.dumps(value, separators=(",", ":")).encode(), headers)


def main():
    a = args()
    fmt = a["format"]
    stride = int(a["stride"])
    names = sorted(os.listdir(a["folder"]))
    files = []
    for name in names:
        with open(os.path.join(a["folder"], name), "rb") as f:
            files.append((name, f.read()))
    watch = Stopwatch()
    records = 0
    with open(a["check"], "w") as check:
        for name, data in files:
            rows = rows_of(fmt, data)
            row = 0
            while True:
                with watch:
                    chunk = []
                    for value in rows:
                        chunk.append(record(name, row, value))
                        row += 1
                        if len(chunk) == CHUNK:
                            break
                if not chunk:
                    break
                for _, key, value, _ in chunk:
                    if records % stride == 0:
                        check.write(f"{key.decode()}\t{value.decode()}\n")
                    records += 1
    report(records, sum(len(d) for _, d in files), records, watch)


main()
