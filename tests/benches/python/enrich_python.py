"""The enrichment's job in Python, as the workers Sluice replaces do it:
each polled record parsed with json, joined by id with its partner from the
second topic (join=on: top-level fields merged, later inputs winning,
`content` merged field by field), given its stay category by seed 001's
rules, serialised, and made a record to produce with the same headers as
Sluice's (the transform stamp and a W3C traceparent derived from the
record's coordinates). Records come in steps of 500, as the worker polls.
"""

import json

import xxhash

from common import Stopwatch, args, read_frames, report
from stay_rules import category

FIRST_TIMESTAMP = 1_764_547_200_000
TOPICS = ["expedia", "hotels"]
OUTPUT = "expedia_ext"
STEP = 500


def traceparent(topic, partition, offset, stage):
    # As host/src/telemetry/trace.rs derives it: the trace id is XXH3-128
    # (seed 1) of the coordinates, the span id the high half of XXH3-128
    # (seed 2) of the trace id's bytes and the coordinates; never zero.
    seed = f"{topic}\n{partition}\n{offset}\n{stage}".encode()
    trace = max(xxhash.xxh3_128_intdigest(seed, seed=1), 1).to_bytes(16, "big")
    span = max(xxhash.xxh3_128_intdigest(trace + seed, seed=2) >> 64, 1)
    return f"00-{trace.hex()}-{span:016x}-01"


def merge(parts):
    merged = {}
    for part in parts:
        for field, value in part.items():
            if field == "content" and isinstance(merged.get(field), dict) and isinstance(value, dict):
                merged[field].update(value)
            else:
                merged[field] = value
    return merged


def main():
    a = args()
    join = a["join"] == "on"
    stage = a["stage"]
    stride = int(a["stride"])
    frames = read_frames(a["input"])
    offsets = [0, 0]
    records = []
    size = 0
    # The polled records: (topic, partition, offset, timestamp, key, value).
    for position, frame in enumerate(frames):
        topic = frame[0]
        offset = offsets[topic]
        offsets[topic] += 1
        size += len(frame) - 1
        records.append((topic, 0, offset, FIRST_TIMESTAMP + position, str(offset).encode(), frame[1:]))
    del frames
    stamp = stage.encode()
    pending = {}

    def transform(record, topic, partition, offset, timestamp, key, headers, out):
        record["stay_category"] = category(record)
        headers = headers + [
            ("sluice.transform", stamp),
            ("traceparent", traceparent(TOPICS[topic], partition, offset, stage).encode()),
        ]
        out.append((OUTPUT, key, json.dumps(record, separators=(",", ":")).encode(), headers, timestamp))

    def process(step):
        out = []
        for topic, partition, offset, timestamp, key, value in step:
            record = json.loads(value)
            if not join:
                transform(record, topic, partition, offset, timestamp, key, [], out)
                continue
            parts = pending.setdefault(str(record["id"]), [None, None])
            parts[topic] = (topic, partition, offset, timestamp, key, record)
            if parts[0] is not None and parts[1] is not None:
                del pending[str(record["id"])]
                members = ",".join(f"{TOPICS[p[0]]}/{p[1]}/{p[2]}" for p in parts)
                last = parts[1]
                transform(
                    merge([p[5] for p in parts]),
                    last[0],
                    last[1],
                    last[2],
                    max(p[3] for p in parts),
                    parts[0][4],
                    [("sluice.join.members", members.encode())],
                    out,
                )
        return out

    watch = Stopwatch()
    outputs = 0
    with open(a["check"], "w") as check:
        for start in range(0, len(records), STEP):
            with watch:
                out = process(records[start : start + STEP])
            for _, _, value, headers, _ in out:
                if outputs % stride == 0:
                    record = json.loads(value)
                    trace = dict(headers)["traceparent"].decode()
                    check.write(f"{json.dumps(record['id'])}\t{record['stay_category']}\t{trace}\n")
                outputs += 1
    assert not pending, "every id joined"
    report(len(records), size, outputs, watch)


main()
