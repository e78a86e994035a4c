"""Sluice transforms in Python, built into WebAssembly components with
componentize-py against wit/sluice.wit.

The worker's process() hook, as it is written today::

    from sluice_guest import Reject, transformer

    def process(message, consumer_name, metadatas):
        content = message.get("content")
        if content is None:
            return None                          # drop the record
        if not isinstance(content.get("text"), str):
            raise Reject("content.text is missing")   # to the dead-letter topic
        content["length"] = len(content["text"])
        return message                           # produce it

    Transform = transformer(process)

The module-level `Transform` (or `Aggregate`) is what componentize-py
exports; `scripts/build-guests.sh` builds every folder in guests/python that
has an `app.py`.

- `transformer(process, raw=False)`: one call per message (JSON in and out,
  or bytes with `raw=True`).
- `batch_transformer(process_batch, raw=False)`: one call per batch of
  `Record`s (key, headers, topic, offset...), returning one result per
  record; an `Output` chooses the output topic, key and headers.
- `aggregator(Window, raw=False)`: `add(message)` per record, `finish()`
  once per window.
- `metadata()`: the pipeline's metadata; `log(level, message)`, Python's
  `logging` and `print()` write to the host's log.

Inside the sandbox there is no filesystem, network, environment, threads or
subprocesses; clocks read the Unix epoch and random numbers repeat, so the
same input always gives the same output.
"""

# Imported now, while the component is built: a module first imported while
# records are processed is not found (the sandbox has no files), and
# datetime.strptime imports this one on its first call.
import _strptime  # noqa: F401

from . import _host
from ._exports import aggregator, batch_transformer, transformer
from ._host import log, metadata
from ._records import Output, Record, Reject

__all__ = [
    "Output",
    "Record",
    "Reject",
    "aggregator",
    "batch_transformer",
    "log",
    "metadata",
    "transformer",
]

_host.install()
