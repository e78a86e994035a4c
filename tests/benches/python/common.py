"""What the Python peers share with the Rust benches (tests/src/bench.rs):
key=value arguments, the input framing, the stopwatch and the figures line.
"""

import json
import struct
import sys
import time


def args():
    """The key=value arguments the bench passed."""
    return dict(a.split("=", 1) for a in sys.argv[1:])


def read_frames(path):
    """The values of an input file: each a little-endian u32 length and the
    bytes, read a value at a time so the file is never in memory twice."""
    values = []
    with open(path, "rb") as f:
        while len(head := f.read(4)) == 4:
            values.append(f.read(struct.unpack("<I", head)[0]))
    return values


def status_kb(field):
    """A /proc/self/status figure (VmRSS:, VmHWM:) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


class Stopwatch:
    """Wall-clock and CPU time over the parts of a run that count."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0
        self.input_rss_kb = 0
        self._started = None

    def __enter__(self):
        if not self.input_rss_kb:
            self.input_rss_kb = status_kb("VmRSS:")
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc):
        wall, cpu = self._started
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return False


def report(records, size, outputs, watch):
    """Prints the figures line the bench reads. The peak RSS is VmHWM, not
    ru_maxrss: a process the bench spawns (posix_spawn shares the parent's
    memory until exec) starts with the parent's high-water mark in
    ru_maxrss, while VmHWM belongs to this process's own memory."""
    figures = {
        "records": records,
        "bytes": size,
        "outputs": outputs,
        "seconds": watch.wall,
        "cpu_seconds": watch.cpu,
        "peak_rss_kb": status_kb("VmHWM:"),
        "input_rss_kb": watch.input_rss_kb,
    }
    print("bench-result " + json.dumps(figures), flush=True)


def consumer_config(a):
    """A consumer as Sluice's workers set theirs up: no auto-commit, the
    earliest offset for a new group, the same session timeout."""
    return {
        "bootstrap.servers": a["brokers"],
        "group.id": a["group"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    }


def producer_config(a):
    """A producer with Sluice's guarantees: idempotent, 5 ms linger."""
    return {"bootstrap.servers": a["brokers"], "enable.idempotence": True, "linger.ms": 5}


class Deliveries:
    """Counts delivery reports and keeps the first error."""

    def __init__(self):
        self.failed = None

    def __call__(self, error, message):
        if error is not None and self.failed is None:
            self.failed = error

    def check(self):
        if self.failed is not None:
            raise RuntimeError(f"produce failed: {self.failed}")


def poll_batch(consumer, most, wait):
    """Up to `most` messages: waits at most `wait` seconds for the first,
    then takes what is already there, as Sluice's consumers poll."""
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first] + consumer.consume(num_messages=most - 1, timeout=0)
