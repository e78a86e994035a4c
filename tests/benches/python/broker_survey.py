"""One tansu storage engine, measured and checked the way Sluice uses a
broker, with confluent-kafka (librdkafka, the client Sluice itself uses):

- produce: records of ~300 bytes keyed by number, acks=all, without and
  with two headers (tansu stores headers in a table of their own);
- consume: every record back from the start, by assignment;
- correctness: every delivered offset is 0..n-1 per partition with no gap,
  the high watermark equals the count, a consume returns every record with
  its own value, a fetch from an offset inside a produced batch starts at
  that offset, and a committed group offset reads back.

Prints one JSON object. Run by scripts/broker-survey.sh, once per engine.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from common import args


def value(i):
    text = "x" * 240
    return json.dumps({"id": i, "hotel": i % 97, "text": text}).encode()


def produce(bootstrap, topic, count, first, headers):
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10000,
        }
    )
    delivered = {}
    failed = []

    def on_delivery(error, message):
        if error is not None:
            failed.append(str(error))
        else:
            delivered[(message.partition(), message.offset())] = message.value()

    extra = [("sluice.a", b"one"), ("sluice.b", b"two")] if headers else None
    started = time.perf_counter()
    for i in range(first, first + count):
        while True:
            try:
                producer.produce(
                    topic,
                    key=str(i).encode(),
                    value=value(i),
                    headers=extra,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(120)
    seconds = time.perf_counter() - started
    return delivered, failed + ([f"{left} not delivered"] if left else []), seconds


def consume_all(bootstrap, topic, highs):
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "survey-reader",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in highs])
    want = sum(highs.values())
    got = {}
    started = time.perf_counter()
    deadline = started + 300
    while len(got) < want and time.perf_counter() < deadline:
        for message in consumer.consume(10000, 1.0):
            if message.error() is None:
                got[(message.partition(), message.offset())] = message.value()
    seconds = time.perf_counter() - started
    consumer.close()
    return got, seconds


def first_offset_from(bootstrap, topic, partition, offset):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "survey-seek"})
    consumer.assign([TopicPartition(topic, partition, offset)])
    deadline = time.perf_counter() + 30
    try:
        while time.perf_counter() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                return message.offset()
        return None
    finally:
        consumer.close()


def committed_reads_back(bootstrap, topic, offset):
    group = f"survey-group-{time.time_ns()}"
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
    }
    writer = Consumer(config)
    try:
        writer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    except KafkaException as error:
        return f"commit failed: {error}"
    finally:
        writer.close()
    reader = Consumer(config)
    try:
        [back] = reader.committed([TopicPartition(topic, 0)], timeout=10)
        return back.offset == offset or f"read back {back.offset}, not {offset}"
    finally:
        reader.close()


def main():
    a = args()
    bootstrap, topic, count = a["bootstrap"], a["topic"], int(a["records"])
    plain, failed_plain, produce_plain = produce(bootstrap, topic, count, 0, False)
    headed, failed_headed, produce_headed = produce(bootstrap, topic, count, count, True)
    delivered = {**plain, **headed}
    problems = failed_plain + failed_headed

    highs = {}
    for partition, offset in delivered:
        highs[partition] = max(highs.get(partition, 0), offset + 1)
    for partition, high in sorted(highs.items()):
        offsets = sorted(o for p, o in delivered if p == partition)
        if offsets != list(range(high)):
            problems.append(f"partition {partition}: delivered offsets have gaps")
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "survey-marks"})
    for partition, high in sorted(highs.items()):
        low, reported = probe.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10
        )
        if (low, reported) != (0, high):
            problems.append(
                f"partition {partition}: watermarks ({low}, {reported}), expected (0, {high})"
            )
    probe.close()

    got, consume_seconds = consume_all(bootstrap, topic, highs)
    if got != delivered:
        missing = len(set(delivered) - set(got))
        wrong = sum(1 for k, v in got.items() if delivered.get(k) != v)
        problems.append(f"consume: {missing} records missing, {wrong} with another value")

    # 37 is inside the first produced batch of partition 0 (linger 5 ms
    # gathers hundreds of records per request).
    partition = min(highs)
    first = first_offset_from(bootstrap, topic, partition, 37)
    if first != 37:
        problems.append(f"fetch from offset 37 started at {first}")
    committed = committed_reads_back(bootstrap, topic, 100)
    if committed is not True:
        problems.append(f"group commit: {committed}")

    print(
        json.dumps(
            {
                "records": 2 * count,
                "produce_per_s": round(count / produce_plain),
                "produce_headers_per_s": round(count / produce_headed),
                "consume_per_s": round(len(got) / consume_seconds) if got else 0,
                "problems": problems,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
