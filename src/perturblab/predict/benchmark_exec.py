"""Running benchmark units in parallel: locally with joblib, or on a Dask distributed cluster.

In both cases the calling process persists each unit as soon as it finishes (atomically,
:class:`~perturblab.predict.benchmark_units.UnitStore`), so the workers need no shared file
system and an interrupted run loses at most the units that were in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import anndata as ad
import pandas as pd

from .benchmark_units import BenchmarkSettings, BenchmarkUnit, UnitStore, run_unit

__all__ = ["execute_units"]


def _run_labelled(adata: ad.AnnData, unit: BenchmarkUnit, settings: BenchmarkSettings):
    try:
        return unit, run_unit(adata, unit, settings)
    except Exception as err:  # name the unit; the original error is in the message and the chain
        raise RuntimeError(f"benchmark unit {unit} failed: {type(err).__name__}: {err}") from err


def _joblib_results(adata, units, settings, n_jobs) -> Iterator[tuple[BenchmarkUnit, pd.DataFrame]]:
    if n_jobs == 1:  # in-process: no pickling, errors raised where they happen
        for unit in units:
            yield _run_labelled(adata, unit, settings)
        return
    from joblib import Parallel, delayed

    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_run_labelled)(adata, u, settings) for u in units)


def _dask_results(adata, units, settings, scheduler) -> Iterator[tuple[BenchmarkUnit, pd.DataFrame]]:
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        [data] = client.scatter([adata], broadcast=True)
        futures = [client.submit(_run_labelled, data, u, settings, pure=False, key=f"perturblab-unit-{u.key}")
                   for u in units]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)
    finally:
        if client is not scheduler:
            client.close()


def execute_units(adata: ad.AnnData, units: Sequence[BenchmarkUnit], settings: BenchmarkSettings,
                  store: UnitStore, n_jobs: int = 1, scheduler=None, progress: bool = True,
                  on_done: Callable[[BenchmarkUnit], None] | None = None) -> list[BenchmarkUnit]:
    """Run the units that ``store`` does not hold yet and persist each one when it finishes.

    Parameters
    ----------
    adata
        All cells, log-normalised (see :func:`perturblab.predict.benchmark_units.run_unit`).
    units
        The units of the benchmark; finished ones (found in ``store``) are skipped.
    settings
        Shared settings of the units.
    store
        Where finished units are persisted.
    n_jobs
        Local parallel processes (joblib, ``loky`` backend); 1 runs in this process; -1 all cores.
        Ignored when ``scheduler`` is given.
    scheduler
        Address of a Dask distributed scheduler (``"tcp://host:8786"``) or a
        ``distributed.Client``; the data is scattered once to every worker.
    progress
        Show a rich progress bar.
    on_done
        Called with each unit after it is persisted.

    Returns
    -------
    list of BenchmarkUnit
        The units run by this call, in the order they finished.

    Raises
    ------
    RuntimeError
        When a unit fails (its name and the original error in the message); units finished
        before are kept, so a new call resumes after fixing the cause.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    todo = [u for u in units if not store.is_done(u)]
    ran: list[BenchmarkUnit] = []
    if not todo:
        return ran
    results = (_dask_results(adata, todo, settings, scheduler) if scheduler is not None
               else _joblib_results(adata, todo, settings, n_jobs))
    with Progress(TextColumn("benchmark units"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not progress) as bar:
        task = bar.add_task("units", total=len(units), completed=len(units) - len(todo))
        for unit, table in results:
            store.save(unit, table)
            ran.append(unit)
            bar.advance(task)
            if on_done is not None:
                on_done(unit)
    return ran
