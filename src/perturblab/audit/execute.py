"""Running the units of an audit: in process, in parallel with joblib, or on a Dask cluster.

Whatever the backend, results come back to this process, which persists each one atomically
(:class:`~perturblab.audit.store.UnitStore`) as soon as it arrives; units already persisted are
not run again (resume after an interruption). Workers receive each classifier's
:class:`~perturblab.audit.units.Context` (joblib: large arrays memory-mapped; Dask: scattered
once per classifier) and the units of that classifier in small batches.
"""

from __future__ import annotations

from collections.abc import Callable

from .units import Unit, run_unit

__all__ = ["execute_units"]


def _run_batch(ctx, units: list[Unit]) -> list[dict]:
    return [run_unit(ctx, u) for u in units]


def _batches(units: list[Unit], size: int) -> list[list[Unit]]:
    by_clf: dict[str, list[Unit]] = {}
    for u in units:
        by_clf.setdefault(u.classifier, []).append(u)
    return [us[i:i + size] for us in by_clf.values() for i in range(0, len(us), size)]


def execute_units(units, contexts: dict, store, *, n_jobs: int = 1, scheduler=None, batch_size: int = 2,
                  on_done: Callable[[dict], None] | None = None) -> int:
    """Run the units not yet in ``store`` and persist each result; returns how many were run.

    Parameters
    ----------
    units
        :class:`~perturblab.audit.units.Unit` list.
    contexts
        ``{classifier name: Context}``.
    store
        :class:`~perturblab.audit.store.UnitStore`.
    n_jobs
        Local worker processes (joblib ``loky``; ``-1`` = all cores; 1 = in this process).
    scheduler
        Address of a Dask distributed scheduler (``"tcp://host:8786"``) or a
        ``distributed.Client``; when given, ``n_jobs`` is ignored.
    batch_size
        Units of one classifier sent to a worker together.
    on_done
        Called with each persisted result (progress display).
    """
    todo = [u for u in units if not store.done(u.id)]
    if not todo:
        return 0
    batches = _batches(todo, batch_size)

    def finish(results):
        for r in results:
            store.save(r)
            if on_done is not None:
                on_done(r)

    if scheduler is not None:
        _run_dask(batches, contexts, scheduler, finish)
    elif n_jobs == 1:
        for b in batches:
            finish(_run_batch(contexts[b[0].classifier], b))
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_run_batch)(contexts[b[0].classifier], b) for b in batches
        )
        for results in gen:
            finish(results)
    return len(todo)


def _run_dask(batches, contexts, scheduler, finish) -> None:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        needed = {b[0].classifier for b in batches}
        scattered = {name: client.scatter(contexts[name]) for name in needed}
        futures = [client.submit(_run_batch, scattered[b[0].classifier], b, pure=False) for b in batches]
        for fut in as_completed(futures):
            finish(fut.result())
    finally:
        if own:
            client.close()
