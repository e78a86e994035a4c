"""A Python transformer that misbehaves on request, like the Rust misbehave
guest, so the host's defences and the SDK's batch interface can be tested
with a real Python component. Each record's value is a JSON object whose
`do` field says what to do:

`raise` (a Python exception), `trap` (an exception the SDK does not catch,
so the call traps), `loop` (spin forever), `alloc` (allocate `mb` MiB),
`drop`, `fail` (with `reason`), `metadata` (emit the pipeline metadata),
`log` (log `message` at warn), `print` (print `message`), `route` (emit
`value` to `topic` with `key` and `headers`), `probe` (try what the sandbox
withholds and report each outcome), `describe` (emit what the record view
reads: topic, partition, offset, timestamp, key, headers), `miscount` (the
batch function returns one result too few); anything else echoes the value.

Written against the batch interface (`batch_transformer`), which sees keys,
headers and offsets and may choose output topics.
"""

import datetime
import logging
import os
import random
import socket
import subprocess
import threading
import time

from sluice_guest import Output, Reject, batch_transformer, metadata

logger = logging.getLogger(__name__)


class AskedToTrap(BaseException):
    """Not an `Exception`: the SDK lets it through, and the call traps."""


def _try(attempt):
    """What `attempt()` returned, or its exception as Python prints it."""
    try:
        return {"ok": attempt()}
    except BaseException as e:  # noqa: BLE001 - reporting is the point
        return {"error": f"{type(e).__name__}: {e}"}


def _import(name):
    return __import__(name).__name__


def _thread():
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    return "started"


def probe():
    """Each thing a Python program may try that the sandbox withholds, and
    what became of it: the README's list of what does not work, tested.
    Its modules are imported at the top, when the component is built: a
    module first imported while processing is not found (`fractions`)."""
    return {
        "time": _try(time.time),
        "now": _try(lambda: datetime.datetime.now().isoformat()),
        "monotonic": _try(time.monotonic),
        "sleep": _try(lambda: time.sleep(0.01)),
        "random": _try(random.random),
        "urandom": _try(lambda: os.urandom(4).hex()),
        "environ": _try(lambda: dict(os.environ)),
        "open": _try(lambda: open("/etc/hostname").read()),
        "listdir": _try(lambda: os.listdir("/")),
        # A bytes host: a str one needs the idna codec, itself a late import.
        "socket": _try(lambda: socket.socket().connect((b"127.0.0.1", 9092)) or "connected"),
        "strptime": _try(lambda: datetime.datetime.strptime("2017-08-13", "%Y-%m-%d").isoformat()),
        "thread": _try(_thread),
        "subprocess": _try(lambda: subprocess.run(["true"]).returncode),
        "import_unused_stdlib": _try(lambda: _import("fractions")),
        "import_missing": _try(lambda: _import("numpy")),
    }


def _text(raw):
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def describe(record):
    """What the record's view reads from the batch, as JSON."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text(record.key),
        "headers": [[name, _text(value)] for name, value in record.headers],
        "trace": _text(record.header("trace")),
    }


def act(record):
    request = record.value if isinstance(record.value, dict) else {}
    action = request.get("do", "echo")
    if action == "raise":
        raise ValueError(f"asked to raise at offset {record.offset}")
    if action == "trap":
        raise AskedToTrap(f"asked to trap at offset {record.offset}")
    if action == "loop":
        n = 0
        while True:
            n += 1
    if action == "alloc":
        block = bytearray(request.get("mb", 1) << 20)
        return {"allocated": len(block)}
    if action == "drop":
        return None
    if action == "fail":
        return Reject(request.get("reason", "asked to fail"))
    if action == "metadata":
        return dict(metadata())
    if action == "log":
        logger.warning(request.get("message", ""))
        return None
    if action == "print":
        print(request.get("message", ""))
        return None
    if action == "probe":
        return probe()
    if action == "describe":
        return describe(record)
    if action == "route":
        return Output(
            request.get("value"),
            topic=request.get("topic"),
            key=request.get("key"),
            headers=request.get("headers", {}),
        )
    return record.value


def process_batch(records):
    results = [act(record) for record in records]
    if any(isinstance(r.value, dict) and r.value.get("do") == "miscount" for r in records):
        return results[:-1]
    return results


Transform = batch_transformer(process_batch)
