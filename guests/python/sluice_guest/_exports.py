"""The classes componentize-py exports: `Transform` for the `transformer`
world and `Aggregate` for the `aggregator` world, each built around the
user's functions."""

import traceback

from wit_world.imports import types as _wit

from . import _host
from ._records import NotJson, Reject, decode, failure_reason, outcome, output_record, record

TOMBSTONE = "record has no value (a tombstone), expected JSON"


def _where(r):
    return f"topic {r.topic} partition {r.partition} offset {r.offset}"


def _name(function):
    return getattr(function, "__qualname__", None) or repr(function)


def _report(error, r):
    # The dead-letter reason is one line; the author needs the whole
    # traceback to find the bug, so it goes to the log.
    _host.log("warn", f"transform raised on {_where(r)}:\n{traceback.format_exc().rstrip()}")
    return _wit.Outcome_Fail(failure_reason(error))


def transformer(process, *, raw=False):
    """The `Transform` export for a per-message function
    `process(message, consumer_name, metadatas)`, the worker's process()
    hook: `message` is the record's JSON value (its bytes when `raw`, None
    for a tombstone), `consumer_name` the pipeline metadata's
    `consumer_name` (else ""), `metadatas` the pipeline metadata.

    It returns a dict (produce it, with the input's key and headers, to
    every output), a list (produce each), None (drop the record), bytes or
    an `Output`; it raises `Reject("reason")` to dead-letter the record. Any
    other exception dead-letters the record too, with the traceback's last
    line as the reason. `MemoryError` is left to the host, which reports the
    memory limit and starts a fresh instance.
    """
    from wit_world import exports  # only in the transformer world's bindings

    def one(r):
        try:
            value = r.value
            if raw:
                message = value
            elif value is None:
                return _wit.Outcome_Fail(TOMBSTONE)
            else:
                try:
                    message = decode(value)
                except NotJson as e:
                    return _wit.Outcome_Fail(str(e))
            metadatas = _host.metadata()
            result = process(message, metadatas.get("consumer_name", ""), metadatas)
            return outcome(result, r.key, r.headers)
        except Reject as e:
            return _wit.Outcome_Fail(e.reason)
        except MemoryError:
            raise
        except Exception as e:
            return _report(e, r)

    class Transform(exports.Transform):
        def process(self, batch):
            return [one(r) for r in batch]

    Transform.__doc__ = f"Sluice transformer around {_name(process)}."
    return Transform


def batch_transformer(process_batch, *, raw=False):
    """The `Transform` export for a batch function `process_batch(records)`
    taking a list of `Record`s (values decoded from JSON unless `raw`) and
    returning one result per record, in order: what `transformer`'s
    `process` may return, or a `Reject` instance to dead-letter that record.

    A record whose value is not JSON is dead-lettered before the function
    sees it. When the function raises, it is called again once per record,
    so that only the records it raises on are dead-lettered.
    """
    from wit_world import exports

    def results_for(records):
        results = process_batch(records)
        if not isinstance(results, list) or len(results) != len(records):
            count = len(results) if isinstance(results, list) else type(results).__name__
            raise _Contract(
                f"{_name(process_batch)}() returned {count} results "
                f"for {len(records)} records; expected a list with one per record"
            )
        return results

    def outcomes_for(wit_records, records):
        try:
            results = results_for(records)
        except MemoryError:
            raise
        except _Contract as e:
            return [_wit.Outcome_Fail(str(e)) for _ in records]
        except Exception as e:
            if len(records) == 1:
                return [_report(e, records[0])]
            results = None
        if results is None:
            # Outside the `except` block, so that a record's traceback does
            # not carry the batch's as "during handling of the above".
            return [outcomes_for([w], [r])[0] for w, r in zip(wit_records, records)]
        outcomes = []
        for w, result in zip(wit_records, results):
            try:
                outcomes.append(outcome(result, w.key, w.headers))
            except MemoryError:
                raise
            except Exception as e:
                outcomes.append(_report(e, w))
        return outcomes

    class Transform(exports.Transform):
        def process(self, batch):
            done = [None] * len(batch)
            places, wit_records, records = [], [], []
            for place, w in enumerate(batch):
                try:
                    records.append(record(w, raw))
                except NotJson as e:
                    done[place] = _wit.Outcome_Fail(str(e))
                    continue
                places.append(place)
                wit_records.append(w)
            if records:
                for place, o in zip(places, outcomes_for(wit_records, records)):
                    done[place] = o
            return done

    Transform.__doc__ = f"Sluice transformer around {_name(process_batch)}."
    return Transform


class _Contract(Exception):
    """The batch function broke its own contract (results per record)."""


def aggregator(factory, *, raw=False):
    """The `Aggregate` export for a window class (or any function making an
    object) with `add(message)`, called for every record of the window, and
    `finish()`, called once at its end and returning the rows to produce (a
    list of dicts, bytes or `Output`s). The host starts a fresh instance for
    every window, so one object is made per window.

    An aggregator has no dead-letter topic: a record whose value is not JSON,
    or that `add` raises on (a `Reject` included), is skipped with a warning
    in the log naming it. An exception from `finish` fails the window.
    """
    from wit_world import exports  # only in the aggregator world's bindings

    # componentize-py makes a new `Aggregate` object for every call, so the
    # window lives beside the class: one per component instance, and the
    # host makes a fresh instance for every window.
    windows = []

    def window():
        if not windows:
            windows.append(factory())
        return windows[0]

    class Aggregate(exports.Aggregate):
        def add(self, batch):
            state = window()
            for r in batch:
                try:
                    if raw:
                        message = r.value
                    elif r.value is None:
                        raise NotJson(TOMBSTONE)
                    else:
                        message = decode(r.value)
                    state.add(message)
                except MemoryError:
                    raise
                except (NotJson, Reject) as e:
                    _host.log("warn", f"skipped {_where(r)}: {e}")
                except Exception as e:
                    _host.log("warn", f"skipped {_where(r)}: {failure_reason(e)}")

        def finish(self):
            rows = window().finish()
            if rows is None:
                return []
            return [output_record(row, None, []) for row in rows]

    Aggregate.__doc__ = f"Sluice aggregator around {_name(factory)}."
    return Aggregate
