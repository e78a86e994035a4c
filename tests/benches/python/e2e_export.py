"""A Python exporter against the broker, as the one Sluice replaces
(seed 000's: confluent-kafka + pyarrow): every partition of the topic read
from its first offset to the high watermark seen at the start, each value
checked to be JSON, written per partition as zstd Parquet with the metadata
columns (row groups of 64k rows), then the group's offsets committed.
Timed whole, as Sluice's export is.
"""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition

from common import Stopwatch, args, consumer_config, poll_batch, report

ROW_GROUP = 64 * 1024
SCHEMA = pa.schema(
    [
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC")),
        pa.field("key", pa.binary()),
        pa.field("headers", pa.map_(pa.string(), pa.binary()), nullable=False),
        pa.field("value", pa.string()),
    ]
)


def main():
    a = args()
    topic = a["input"]
    watch = Stopwatch()
    rows_written = size = 0
    with watch:
        consumer = Consumer(consumer_config(a))
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends, starts = {}, {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                starts[p], ends[p] = low, high
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in starts])
        writers, rows = {}, {p: [] for p in starts}

        def flush(p):
            if p not in writers:
                folder = os.path.join(a["out"], f"topic={topic}", f"partition={p}")
                os.makedirs(folder, exist_ok=True)
                name = f"{topic}+{p}+{starts[p]}-{ends[p] - 1}.parquet"
                writers[p] = pq.ParquetWriter(os.path.join(folder, name), SCHEMA, compression="zstd")
            writers[p].write_table(pa.Table.from_pylist(rows[p], schema=SCHEMA))
            rows[p] = []

        left = set(starts)
        while left:
            for message in poll_batch(consumer, 5000, 1.0):
                if message.error():
                    raise RuntimeError(message.error())
                p, offset = message.partition(), message.offset()
                if p not in left or offset >= ends[p]:
                    continue
                value = message.value()
                json.loads(value)
                size += len(value)
                rows[p].append(
                    {
                        "topic": topic,
                        "partition": p,
                        "offset": offset,
                        "kafka_offset": offset,
                        "timestamp": message.timestamp()[1],
                        "key": message.key(),
                        "headers": message.headers() or [],
                        "value": value.decode(),
                    }
                )
                rows_written += 1
                if len(rows[p]) == ROW_GROUP:
                    flush(p)
                if offset >= ends[p] - 1:
                    left.discard(p)
        for p in starts:
            if rows[p] or p not in writers:
                flush(p)
            writers[p].close()
        consumer.commit(offsets=[TopicPartition(topic, p, ends[p]) for p in starts], asynchronous=False)
        consumer.close()
    report(rows_written, size, rows_written, watch)


main()
