"""What the Python peers share with the Rust benches (tests/src/bench.rs):
key=value arguments, the input framing, the stopwatch and the figures line.
"""

import json
import resource
import struct
import sys
import time


def args():
    """The key=value arguments the bench passed."""
    return dict(a.split("=", 1) for a in sys.argv[1:])


def read_frames(path):
    """The values of an input file: each a little-endian u32 length and bytes."""
    with open(path, "rb") as f:
        data = f.read()
    values, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4
        values.append(data[pos : pos + length])
        pos += length
    return values


class Stopwatch:
    """Wall-clock and CPU time over the parts of a run that count."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0
        self._started = None

    def __enter__(self):
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc):
        wall, cpu = self._started
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return False


def report(records, size, outputs, watch):
    """Prints the figures line the bench reads (ru_maxrss is in KiB on Linux)."""
    figures = {
        "records": records,
        "bytes": size,
        "outputs": outputs,
        "seconds": watch.wall,
        "cpu_seconds": watch.cpu,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
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
