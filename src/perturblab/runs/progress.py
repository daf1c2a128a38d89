"""Progress of long steps, reported by the library and shown by the command layer.

Library code opens a :func:`task` and advances it; what the user sees depends on the reporter in use: none by
default (the Python API stays quiet), a progress bar on a terminal or a plain periodic line in a log when the
command line installs one with :func:`reporting` (see :mod:`perturblab.cli`).

Examples
--------
>>> from perturblab.runs import progress
>>> with progress.task("attacks", total=3) as t:
...     for _ in range(3):
...         t.advance()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Reporter", "LineReporter", "Task", "task", "reporting"]


class Reporter:
    """Shows nothing (the default). Subclasses show tasks: :meth:`start`, :meth:`update`, :meth:`stop`."""

    def start(self, task: Task) -> None:
        """A task began."""

    def update(self, task: Task) -> None:
        """A task advanced (``task.completed``, ``task.info``)."""

    def stop(self, task: Task) -> None:
        """A task ended."""


@dataclass
class Task:
    """One step with a known (or unknown) number of parts."""

    description: str
    total: int | None
    completed: int = 0
    info: str = ""
    started: float = field(default_factory=time.monotonic)
    reporter: Reporter = field(default_factory=Reporter, repr=False)
    handle: Any = field(default=None, repr=False)

    def advance(self, n: int = 1, info: str = "") -> None:
        """Mark ``n`` more parts done; ``info`` is a short status (e.g. the current loss)."""
        self.completed += n
        if info:
            self.info = info
        self.reporter.update(self)


_SILENT = Reporter()
_REPORTER: ContextVar[Reporter] = ContextVar("perturblab_progress", default=_SILENT)


@contextmanager
def task(description: str, total: int | None = None, completed: int = 0) -> Iterator[Task]:
    """Report the progress of a step to the current reporter (nothing is shown by default)."""
    reporter = _REPORTER.get()
    t = Task(description, total, completed, reporter=reporter)
    reporter.start(t)
    try:
        yield t
    finally:
        reporter.stop(t)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Use ``reporter`` for every :func:`task` opened inside the block (in this thread)."""
    token = _REPORTER.set(reporter)
    try:
        yield reporter
    finally:
        _REPORTER.reset(token)


class LineReporter(Reporter):
    """Plain lines through the ``perturblab`` logger: one when a task starts, at most one every ``interval``
    seconds while it runs, one when it ends (for logs and pipes, where a progress bar is noise)."""

    def __init__(self, interval: float = 30.0, logger: logging.Logger | None = None):
        self.interval = interval
        self.log = logger or logging.getLogger("perturblab")
        self._last: dict[int, float] = {}
        self._shown: dict[int, int] = {}

    def _line(self, t: Task) -> str:
        total = f"/{t.total}" if t.total is not None else ""
        info = f", {t.info}" if t.info else ""
        return f"{t.description}: {t.completed}{total} ({time.monotonic() - t.started:.0f} s{info})"

    def _show(self, task: Task) -> None:
        self._last[id(task)] = time.monotonic()
        self._shown[id(task)] = task.completed
        self.log.info(self._line(task))

    def start(self, task: Task) -> None:
        self._show(task)

    def update(self, task: Task) -> None:
        if time.monotonic() - self._last.get(id(task), 0.0) >= self.interval:
            self._show(task)

    def stop(self, task: Task) -> None:
        if self._shown.get(id(task)) != task.completed:
            self._show(task)
        self._last.pop(id(task), None)
        self._shown.pop(id(task), None)
