"""Running independent units of work: in this process, in local worker processes (joblib), or on a Dask cluster.

:func:`execute` takes the unit function as an argument and knows nothing of what a unit does. Results come
back to the calling process one by one, as they finish, so that the caller persists each of them at once
(an interrupted run loses at most the units in flight). Local workers end with their parent: each worker
watches the process that started it and exits within about a second when it is gone (a killed driver leaves
no worker behind).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..exceptions import InputError, PerturblabError, RunFailedError

__all__ = ["execute", "resolve_n_jobs"]

T = TypeVar("T")
R = TypeVar("R")

_WATCHING = False


def resolve_n_jobs(n_jobs: int) -> int:
    """Number of worker processes for ``n_jobs`` (``-1``: all cores, ``-2``: all but one, ...; ``1``: none).

    Raises
    ------
    InputError
        For ``n_jobs == 0`` or below ``-cpu_count``.
    """
    cpus = os.cpu_count() or 1
    if n_jobs == 0 or n_jobs < -cpus:
        raise InputError(f"--n-jobs must be a positive number of processes or -1 (all {cpus} cores), got {n_jobs}")
    return n_jobs if n_jobs > 0 else cpus + 1 + n_jobs


def _watch_parent(interval: float = 0.5) -> None:
    """In a worker process: exit as soon as the parent process is gone (once per process)."""
    global _WATCHING
    if _WATCHING:
        return
    _WATCHING = True
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:  # re-parented: the driver died
                os._exit(1)

    threading.Thread(target=watch, name="perturblab-parent-watch", daemon=True).start()


def _run_batch(fn: Callable, shared: Any, batch: Sequence, watch: bool, has_shared: bool) -> list:
    if watch:
        _watch_parent()
    return [(task, _call(fn, shared, task, has_shared)) for task in batch]


def _call(fn: Callable, shared: Any, task: Any, has_shared: bool) -> Any:
    try:
        return fn(shared, task) if has_shared else fn(task)
    except PerturblabError:
        raise
    except Exception as err:  # name the unit; the original error stays chained
        raise RunFailedError(f"unit {task} failed: {type(err).__name__}: {err}") from err


def _batches(tasks: Sequence[T], group: Callable[[T], Hashable], size: int) -> list[tuple[Hashable, list[T]]]:
    by_group: dict[Hashable, list[T]] = {}
    for t in tasks:
        by_group.setdefault(group(t), []).append(t)
    return [(g, ts[i:i + size]) for g, ts in by_group.items() for i in range(0, len(ts), size)]


def execute(fn: Callable[..., R], tasks: Sequence[T], *, shared: Mapping[Any, Any] | None = None,
            group: Callable[[T], Hashable] | None = None, n_jobs: int = 1, scheduler=None,
            batch_size: int = 1) -> Iterator[tuple[T, R]]:
    """Run ``fn`` on every task and yield ``(task, result)`` pairs as they finish.

    Parameters
    ----------
    fn
        The unit function: ``fn(task)``, or ``fn(shared[group(task)], task)`` when ``shared`` is given. It must
        be importable by name (a module-level function) for worker processes.
    tasks
        The units to run (picklable).
    shared
        Large read-only inputs shared by many tasks (e.g. a fitted classifier and its test data), sent once per
        worker: joblib memory-maps large arrays, Dask scatters them once.
    group
        ``task -> key of shared`` (default: every task uses the single entry of ``shared``).
    n_jobs
        Local worker processes (joblib's ``loky``): ``1`` runs in this process, ``-1`` uses all cores.
        Ignored when ``scheduler`` is given.
    scheduler
        Address of a Dask distributed scheduler (``"tcp://host:8786"``) or a ``distributed.Client``.
    batch_size
        Tasks of the same group sent to a worker together.

    Yields
    ------
    (task, result)
        In order of completion (in submission order when ``n_jobs == 1``).

    Raises
    ------
    RunFailedError
        When a unit raises an error that is not perturblab's own (the unit is named; the cause is chained).
    PerturblabError
        Errors of perturblab raised by a unit are passed on as they are.

    Examples
    --------
    >>> from perturblab.runs import execute
    >>> sorted(r for _, r in execute(abs, [-2, 1, -3]))
    [1, 2, 3]
    """
    has_shared = shared is not None
    table: Mapping[Hashable, Any] = shared if shared is not None else {None: None}
    if group is None or not has_shared:
        only = next(iter(table)) if len(table) == 1 else None
        group = _constant(only)
    batches = _batches(list(tasks), group, max(1, int(batch_size)))
    if not batches:
        return
    if scheduler is not None:
        yield from _dask(fn, table, batches, scheduler, has_shared)
        return
    workers = resolve_n_jobs(n_jobs)
    if workers == 1:
        for key, batch in batches:
            yield from _run_batch(fn, table[key], batch, False, has_shared)
        return
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_run_batch)(fn, table[key], batch, True, has_shared) for key, batch in batches)
    for finished in results:
        yield from finished


class _constant:
    """``task -> key`` for a single group (picklable, unlike a lambda)."""

    def __init__(self, key: Hashable):
        self.key = key

    def __call__(self, _task: Any) -> Hashable:
        return self.key


def _dask(fn, table, batches, scheduler, has_shared: bool) -> Iterator:
    from .._extras import require

    require("dask", "a Dask scheduler (--scheduler)")
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="10s") if own else scheduler
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(f"cannot reach the Dask scheduler {scheduler!r} ({err}); start it first "
                         "(dask scheduler) or drop --scheduler") from None
    try:
        needed = {key for key, _ in batches}
        scattered = {key: client.scatter(table[key], broadcast=True) if has_shared else None for key in needed}
        futures = [client.submit(_run_batch, fn, scattered[key], batch, False, has_shared, pure=False)
                   for key, batch in batches]
        try:
            for future in as_completed(futures):
                yield from future.result()
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()
