"""The export's job in Python, as the exporter Sluice replaces does it:
records already read from Kafka to a zstd Parquet file with the metadata
columns (topic, partition, offset, kafka_offset, timestamp, key, headers,
value), through pyarrow's Table.from_pylist and write_table, 64k rows per
table (one row group each, as Sluice writes them).

format=json: values are JSON text; with check_json=1 each is parsed first,
as Sluice refuses a value that is not JSON. format=avro: Confluent-framed
Avro decoded with fastavro, written as JSON text plus one typed column per
field, as Sluice does with a schema registry.
"""

import io
import json

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from common import Stopwatch, args, read_frames, report

TOPIC = "expedia"
FIRST_TIMESTAMP = 1_764_547_200_000
ROW_GROUP = 64 * 1024
HEADERS = [("source", b"bench")]

AVRO_TYPES = {"long": pa.int64(), "string": pa.string(), "double": pa.float64()}


def main():
    a = args()
    values = read_frames(a["input"])
    check = a.get("check_json") == "1"
    avro = a["format"] == "avro"
    fields = [
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC")),
        pa.field("key", pa.binary()),
        pa.field("headers", pa.map_(pa.string(), pa.binary()), nullable=False),
        pa.field("value", pa.string()),
    ]
    if avro:
        with open(a["schema"]) as f:
            schema_json = json.load(f)
        avro_schema = fastavro.parse_schema(schema_json)
        names = []
        for field in schema_json["fields"]:
            kind = field["type"]
            kind = [k for k in kind if k != "null"][0] if isinstance(kind, list) else kind
            fields.append(pa.field(field["name"], AVRO_TYPES[kind]))
            names.append(field["name"])
    schema = pa.schema(fields)

    watch = Stopwatch()
    with watch:
        writer = pq.ParquetWriter(a["out"], schema, compression="zstd")
        rows = []
        for offset, value in enumerate(values):
            row = {
                "topic": TOPIC,
                "partition": 0,
                "offset": offset,
                "kafka_offset": offset,
                "timestamp": FIRST_TIMESTAMP + offset,
                "key": str(offset).encode(),
                "headers": HEADERS,
            }
            if avro:
                record = fastavro.schemaless_reader(io.BytesIO(value[5:]), avro_schema)
                row["value"] = json.dumps(record, separators=(",", ":"))
                for name in names:
                    row[name] = record[name]
            else:
                if check:
                    json.loads(value)
                row["value"] = value.decode()
            rows.append(row)
            if len(rows) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        writer.close()
    report(len(values), sum(map(len, values)), len(values), watch)


main()
