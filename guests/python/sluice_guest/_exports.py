"""The classes componentize-py exports: `Transform` for the `transformer`
world and `Aggregate` for the `aggregator` world, each built around the
user's functions. A batch is read in place (`_batch.Columns`) and the
results written straight into the output columns (`_outputs.Writer`)."""

import traceback

from wit_world.imports import types as _wit

from . import _host
from ._batch import VALUE, Columns
from ._outputs import Writer
from ._records import (
    FAIL,
    NotJson,
    Reject,
    decode_span,
    encode_json,
    failure_reason,
    view,
    write_result,
    write_rows,
)

TOMBSTONE = "record has no value (a tombstone), expected JSON"


def _name(function):
    return getattr(function, "__qualname__", None) or repr(function)


def _report(error, columns, i):
    # The dead-letter reason is one line; the author needs the whole
    # traceback to find the bug, so it goes to the log.
    _host.log(
        "warn",
        f"transform raised on {columns.where(i)}:\n{traceback.format_exc().rstrip()}",
    )
    return failure_reason(error)


class _Verdicts:
    """`results.verdicts`, `emitted` and `reasons`, in input order."""

    __slots__ = ("verdicts", "emitted", "reasons")

    def __init__(self, count):
        self.verdicts = bytearray(count)  # 0: emit
        self.emitted = [0] * count
        self.reasons = {}

    def set(self, i, verdict, emitted, reason):
        self.verdicts[i] = verdict
        if emitted:
            self.emitted[i] = emitted
        if reason is not None:
            self.reasons[i] = reason

    def fail(self, i, reason):
        self.verdicts[i] = FAIL
        self.reasons[i] = reason

    def results(self, writer):
        reasons = self.reasons
        return _wit.Results(
            bytes(self.verdicts),
            self.emitted,
            [reasons[i] for i in sorted(reasons)],
            writer.outputs(),
        )


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

    def process_all(batch):
        columns = Columns(batch)
        writer = Writer()
        verdicts = _Verdicts(columns.count)
        emitted = verdicts.emitted
        write_keeping = writer.write_keeping
        plain, keep_plain = columns.plain, writer.plain.append
        metadatas = _host.metadata()
        consumer_name = metadatas.get("consumer_name", "")
        data, ends, firsts, presence = columns.data, columns.ends, columns.firsts, columns.presence
        for i in range(columns.count):
            first = firsts[i]
            if not presence[i] & VALUE:
                if not raw:
                    verdicts.fail(i, TOMBSTONE)
                    continue
                message = None
            elif raw:
                message = data[ends[first] : ends[first + 1]]
            else:
                try:
                    message = decode_span(data, ends[first], ends[first + 1])
                except NotJson as e:
                    verdicts.fail(i, str(e))
                    continue
            try:
                result = process(message, consumer_name, metadatas)
                if type(result) is dict:
                    # The usual case, inline: one object, the input's key and
                    # headers, every output (verdicts start as emit).
                    if plain:
                        keep_plain(encode_json(result))
                    else:
                        write_keeping(0, columns, i, encode_json(result))
                    emitted[i] = 1
                else:
                    verdicts.set(i, *write_result(writer, result, columns, i))
            except Reject as e:
                verdicts.fail(i, e.reason)
            except MemoryError:
                raise
            except Exception as e:
                verdicts.fail(i, _report(e, columns, i))
        return verdicts.results(writer)

    class Transform(exports.Transform):
        def process(self, batch):
            return process_all(batch)

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

    def judge(columns, records, writer, verdicts):
        # Records are in input order, and so are the outputs written here.
        try:
            results = results_for(records)
        except MemoryError:
            raise
        except _Contract as e:
            for r in records:
                verdicts.fail(r._i, str(e))
            return
        except Exception as e:
            if len(records) == 1:
                verdicts.fail(records[0]._i, _report(e, columns, records[0]._i))
                return
            results = None
        if results is None:
            # Outside the `except` block, so that a record's traceback does
            # not carry the batch's as "during handling of the above".
            for r in records:
                judge(columns, [r], writer, verdicts)
            return
        for r, result in zip(records, results):
            try:
                verdicts.set(r._i, *write_result(writer, result, columns, r._i))
            except MemoryError:
                raise
            except Exception as e:
                verdicts.fail(r._i, _report(e, columns, r._i))

    def process_all(batch):
        columns = Columns(batch)
        writer = Writer()
        verdicts = _Verdicts(columns.count)
        data, ends, firsts, presence = columns.data, columns.ends, columns.firsts, columns.presence
        records = []
        for i in range(columns.count):
            first = firsts[i]
            if not presence[i] & VALUE:
                if not raw:
                    verdicts.fail(i, TOMBSTONE)
                    continue
                value = None
            elif raw:
                value = data[ends[first] : ends[first + 1]]
            else:
                try:
                    value = decode_span(data, ends[first], ends[first + 1])
                except NotJson as e:
                    verdicts.fail(i, str(e))
                    continue
            records.append(view(columns, i, value))
        if records:
            judge(columns, records, writer, verdicts)
        return verdicts.results(writer)

    class Transform(exports.Transform):
        def process(self, batch):
            return process_all(batch)

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
            columns = Columns(batch)
            data, ends, firsts, presence = (
                columns.data,
                columns.ends,
                columns.firsts,
                columns.presence,
            )
            for i in range(columns.count):
                first = firsts[i]
                try:
                    if not presence[i] & VALUE:
                        if not raw:
                            raise NotJson(TOMBSTONE)
                        message = None
                    elif raw:
                        message = data[ends[first] : ends[first + 1]]
                    else:
                        message = decode_span(data, ends[first], ends[first + 1])
                    state.add(message)
                except MemoryError:
                    raise
                except (NotJson, Reject) as e:
                    _host.log("warn", f"skipped {columns.where(i)}: {e}")
                except Exception as e:
                    _host.log("warn", f"skipped {columns.where(i)}: {failure_reason(e)}")

        def finish(self):
            rows = window().finish()
            writer = Writer()
            if rows is not None:
                write_rows(writer, rows)
            return writer.outputs()

    Aggregate.__doc__ = f"Sluice aggregator around {_name(factory)}."
    return Aggregate
