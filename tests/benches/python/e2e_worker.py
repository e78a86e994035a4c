"""A Python worker against the broker, as the ones Sluice replaces:
confluent-kafka consumes in steps of 500, each record (logic=1) parsed with
json, given its stay category and serialised, or (logic=0) passed through
as it is, produced to the output topic, with (headers=1) the two headers
Sluice adds to every output (its stamp and a traceparent, of the same
sizes); the step's deliveries are awaited before its offsets are committed
(at-least-once, as Sluice does). The clock starts once the first step is
done; the end-to-end bench also measures the whole process from outside.
"""

import json
import time

from confluent_kafka import Consumer, Producer

from common import Deliveries, Stopwatch, args, consumer_config, poll_batch, producer_config, report
from stay_rules import category


# What Sluice's enrichment adds to every output, of the same sizes.
SLUICE_HEADERS = [
    ("sluice.transform", b"stay-category@0123456789ab"),
    ("traceparent", b"00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"),
]


def main():
    a = args()
    count = int(a["count"])
    logic = a["logic"] == "1"
    added = SLUICE_HEADERS if a.get("headers") == "1" else []
    output = a["output"]
    consumer = Consumer(consumer_config(a))
    producer = Producer(producer_config(a))
    deliveries = Deliveries()
    consumer.subscribe([a["input"]])
    read = size = 0
    started = None
    while read < count:
        messages = poll_batch(consumer, 500, 0.2)
        for message in messages:
            if message.error():
                raise RuntimeError(message.error())
            value = message.value()
            if logic:
                record = json.loads(value)
                record["stay_category"] = category(record)
                value = json.dumps(record, separators=(",", ":")).encode()
            producer.produce(
                output,
                value=value,
                key=message.key(),
                headers=(message.headers() or []) + added,
                timestamp=message.timestamp()[1],
                on_delivery=deliveries,
            )
        producer.flush()
        deliveries.check()
        if messages:
            consumer.commit(asynchronous=True)
        read += len(messages)
        size += sum(len(m.value()) for m in messages)
        if started is None and read > 0:
            started = (time.perf_counter(), time.process_time(), read, size)
    consumer.close()
    watch = Stopwatch()
    wall, cpu, read_then, size_then = started
    watch.wall = time.perf_counter() - wall
    watch.cpu = time.process_time() - cpu
    report(read - read_then, size - size_then, read, watch)


main()
