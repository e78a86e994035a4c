"""A key search as the tools without a partitioner do it (Redpanda Console,
Kafdrop, a hand-written script): a confluent-kafka consumer reads every
partition of the topic (or only `partitions=`, a comma-separated list)
from its first offset to the high watermark seen at the start, and keeps
the records whose key is `key`. Prints one JSON line: the records looked
at and the (partition, offset) of each match. The bench times the whole
process from outside, start-up included, as it times `sluice fetch`.
"""

import json

from confluent_kafka import Consumer, TopicPartition

from common import args, poll_batch


def main():
    a = args()
    topic, key = a["topic"], a["key"].encode()
    consumer = Consumer(
        {
            "bootstrap.servers": a["brokers"],
            "group.id": a["group"],
            "enable.auto.commit": False,
        }
    )
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    if a.get("partitions", "all") != "all":
        partitions = [int(p) for p in a["partitions"].split(",")]
    ends, start = {}, []
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
            start.append(TopicPartition(topic, p, low))
    consumer.assign(start)
    scanned, matches = 0, []
    while ends:
        for message in poll_batch(consumer, 10_000, 1.0):
            if message.error():
                raise RuntimeError(message.error())
            p, offset = message.partition(), message.offset()
            if p not in ends or offset >= ends[p]:
                continue
            scanned += 1
            if message.key() == key:
                matches.append([p, offset])
            if offset + 1 >= ends[p]:
                del ends[p]
    consumer.close()
    print(json.dumps({"scanned": scanned, "matches": matches}), flush=True)


if __name__ == "__main__":
    main()
