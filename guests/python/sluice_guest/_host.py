"""The `host` interface of wit/sluice.wit for Python: log lines and the
pipeline's metadata, and Python's own `logging` and `print()` sent to the
host's log, since a guest has no terminal of its own.
"""

import logging
import sys
import types

from wit_world.imports import host as _host

_LEVELS = {
    "trace": _host.Level.TRACE,
    "debug": _host.Level.DEBUG,
    "info": _host.Level.INFO,
    "warn": _host.Level.WARN,
    "warning": _host.Level.WARN,
    "error": _host.Level.ERROR,
}


def log(level, message):
    """Writes `message` to the host's log at `level` ("trace", "debug",
    "info", "warn" or "error"); the host tags the line with the transform."""
    try:
        wit_level = _LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {sorted(_LEVELS)}") from None
    _host.log(wit_level, str(message))


_metadata = None


def metadata():
    """The pipeline's `metadata` as a read-only mapping of str to str
    (values that are not strings in the pipeline document arrive as JSON
    text). Fetched from the host once per instance: it cannot change while
    the instance lives."""
    global _metadata
    if _metadata is None:
        _metadata = types.MappingProxyType(dict(_host.metadata()))
    return _metadata


class _HostHandler(logging.Handler):
    """Sends `logging` records to the host's log, formatted as usual."""

    def emit(self, record):
        try:
            if record.levelno >= logging.ERROR:
                level = _host.Level.ERROR
            elif record.levelno >= logging.WARNING:
                level = _host.Level.WARN
            elif record.levelno >= logging.INFO:
                level = _host.Level.INFO
            elif record.levelno >= logging.DEBUG:
                level = _host.Level.DEBUG
            else:
                level = _host.Level.TRACE
            _host.log(level, self.format(record))
        except Exception:
            self.handleError(record)


class _PrintToLog:
    """A text stream for `sys.stdout`: each complete line is one info line
    in the host's log (WASI stdout is discarded by the host)."""

    def __init__(self):
        self._pending = ""

    def write(self, text):
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            _host.log(_host.Level.INFO, line)
        return len(text)

    def flush(self):
        if self._pending:
            _host.log(_host.Level.INFO, self._pending)
            self._pending = ""

    def isatty(self):
        return False


def install():
    """Routes `logging` (every logger, DEBUG and up; the host's log filter
    decides what is kept) and `print()` to the host. Called once when the
    SDK is imported, which happens while the component is built, so the
    handler is part of the snapshot the component starts from."""
    root = logging.getLogger()
    root.handlers[:] = [_HostHandler()]
    root.setLevel(logging.DEBUG)
    sys.stdout = _PrintToLog()
