"""Benchmark perturbation-response models: models x targets x seeds x dataset variants,
leave-one-cell-type-out, baselines always included, resumable, parallel (joblib or Dask).

Example::

    import perturblab as plab
    from perturblab.predict.benchmark import run_benchmark
    adata = plab.predict.prepare(plab.datasets.kang2018())
    res = run_benchmark(adata, "results/bench", models=["scgen", "scpram"],
                        targets=["CD14 Mono", "B"], seeds=[0, 1], n_jobs=2)
    res.table        # tidy: model, target, variant, seed, metric, gene_set, value, ci_low, ci_high, ...
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._io import write_json, write_table
from .._validation import to_dense
from .benchmark_exec import execute_units
from .benchmark_report import benchmark_report
from .benchmark_stats import paired_tests, rank_models
from .benchmark_units import BenchmarkSettings, BenchmarkUnit, UnitStore
from .benchmark_variants import VARIANTS
from .data import check_conditions, loco_targets
from .models import BASELINES, MODELS

__all__ = ["run_benchmark", "BenchmarkResult", "benchmark_units", "data_fingerprint"]


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced.

    Attributes
    ----------
    table
        Tidy table, one row per unit and metric: ``model, target, variant, seed, metric,
        gene_set, value, ci_low, ci_high, n_bootstrap, definition, train_seconds, n_epochs,
        n_train_stimulated``.
    ranking
        :func:`perturblab.predict.benchmark_stats.rank_models` of ``table``.
    tests
        :func:`perturblab.predict.benchmark_stats.paired_tests` of ``table``.
    units
        Every unit of the benchmark; ``n_run``: how many this call computed (the others were
        found finished in the output folder).
    out_dir
        Output folder (``benchmark.parquet``, ``ranking.csv``, ``paired_tests.csv``,
        ``summary.json``, ``report.html``, ``units/``, ``config.json``).
    wall_time_s
        Seconds this call took.
    """

    table: pd.DataFrame
    ranking: pd.DataFrame
    tests: pd.DataFrame
    units: list[BenchmarkUnit]
    n_run: int
    out_dir: Path
    wall_time_s: float


def data_fingerprint(adata: ad.AnnData, keys: Sequence[str]) -> str:
    """SHA-1 of the cells, genes, values and the obs columns ``keys`` (detects a changed input on resume)."""
    h = hashlib.sha1()
    for part in (adata.obs_names, adata.var_names, *(adata.obs[k].astype(str) for k in keys)):
        h.update("\x1f".join(map(str, part)).encode())
    h.update(np.ascontiguousarray(to_dense(adata.X), dtype=np.float32).tobytes())
    return h.hexdigest()


def benchmark_units(models: Sequence[str], targets: Sequence[str], seeds: Sequence[int],
                    variants: Sequence[str] = VARIANTS, include_baselines: bool = True) -> list[BenchmarkUnit]:
    """All units (model x target x variant x seed), baselines added, duplicates removed.

    Raises
    ------
    ValueError
        For an unknown model or variant, or an empty list.
    """
    models = list(dict.fromkeys([*models, *(BASELINES if include_baselines else ())]))
    for what, values, allowed in (("model", models, MODELS), ("variant", variants, VARIANTS)):
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ValueError(f"unknown {what}(s) {unknown}; choose from {', '.join(allowed)}")
    for what, values in (("models", models), ("targets", targets), ("seeds", seeds), ("variants", variants)):
        if len(values) == 0:
            raise ValueError(f"no {what} given")
    return [BenchmarkUnit(m, str(t), v, int(s))
            for m, t, v, s in itertools.product(models, targets, dict.fromkeys(variants), dict.fromkeys(seeds))]


def run_benchmark(adata: ad.AnnData, out_dir: str | Path, models: Sequence[str] = ("scgen", "scpram"),
                  targets: Sequence[str] | None = None, seeds: Sequence[int] = (0,),
                  variants: Sequence[str] = VARIANTS, settings: BenchmarkSettings | None = None,
                  n_jobs: int = 1, scheduler=None, overwrite: bool = False, report: bool = True,
                  progress: bool = True, min_cells: int = 30) -> BenchmarkResult:
    """Run (or resume) a benchmark and write its table and report.

    Every unit holds out the stimulated cells of one target cell type
    (:func:`perturblab.predict.loco_split`), alters the training cells by the dataset variant
    (:func:`perturblab.predict.benchmark_variants.make_variant`), trains the model with the unit's seed, predicts
    the target's stimulated cells from its control cells and evaluates them
    (:func:`perturblab.predict.evaluate`). The baselines of
    :data:`perturblab.predict.BASELINES` are always included, as Systema and PerturBench
    recommend.

    Parameters
    ----------
    adata
        All cells, **log-normalised** (cells x genes), e.g. ``prepare(kang2018())``.
    out_dir
        Output folder. Finished units are kept under ``out_dir/units``; calling again with the
        same data and settings resumes (only missing units run; more targets or seeds may be
        added).
    models
        Models of :data:`perturblab.predict.MODELS` to compare (baselines are added).
    targets
        Held-out cell types (default: :func:`perturblab.predict.loco_targets` with
        ``min_cells`` cells per condition).
    seeds
        Seeds; each unit's seed drives the variant's draws, the model and the bootstrap.
    variants
        Dataset variants (default all of :data:`perturblab.predict.benchmark_variants.VARIANTS`).
    settings
        Model, training, evaluation and variant parameters, obs keys, device
        (:class:`~perturblab.predict.benchmark_units.BenchmarkSettings`).
    n_jobs
        Local processes (joblib); ignored with ``scheduler``.
    scheduler
        Dask distributed scheduler address or ``distributed.Client``.
    overwrite
        Delete the finished units of a different configuration instead of refusing.
    report
        Write ``report.html``.
    progress
        Show progress bars.
    min_cells
        See ``targets``.

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    ValueError
        Unknown model/variant/target, missing keys or conditions, or an output folder holding
        units of another configuration (without ``overwrite``).
    RuntimeError
        When a unit fails (finished units stay on disk).
    """
    t0 = time.perf_counter()
    settings = settings or BenchmarkSettings()
    keys = (settings.condition_key, settings.cell_type_key)
    check_conditions(adata, *keys, settings.control, settings.stimulated)
    if targets is None:
        targets = loco_targets(adata, min_cells, *keys, settings.control, settings.stimulated)
    present = set(adata.obs[settings.cell_type_key].astype(str))
    missing = [t for t in targets if str(t) not in present]
    if missing:
        raise ValueError(f"target cell type(s) {missing} not found in adata.obs[{settings.cell_type_key!r}]")
    units = benchmark_units(models, targets, seeds, variants)
    store = UnitStore(out_dir)
    store.check_config({"settings": settings.fingerprint(), "data": data_fingerprint(adata, keys)}, overwrite)
    ran = execute_units(adata, units, settings, store, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    table = store.load(units)
    ranking, tests = rank_models(table), paired_tests(table)
    out = store.folder
    write_table(out / "benchmark.parquet", table)
    write_table(out / "ranking.csv", ranking)
    write_table(out / "paired_tests.csv", tests)
    wall = time.perf_counter() - t0
    summary = {"n_units": len(units), "n_run_now": len(ran), "models": list(dict.fromkeys(u.model for u in units)),
               "baselines": list(BASELINES), "targets": list(map(str, targets)), "seeds": list(map(int, seeds)),
               "variants": list(variants), "wall_time_s": wall,
               "best": ranking[ranking["rank"] == 1].to_dict(orient="records")}
    write_json(out / "summary.json", summary)
    if report:
        shown = {"models": ", ".join(summary["models"]), "targets": ", ".join(summary["targets"]),
                 "seeds": summary["seeds"], "variants": ", ".join(variants), **settings.fingerprint()}
        benchmark_report(table, settings=shown, baselines=BASELINES).write(out / "report.html")
    return BenchmarkResult(table, ranking, tests, units, len(ran), out, wall)
