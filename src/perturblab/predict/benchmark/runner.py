"""Benchmark perturbation-response models: models x targets x seeds x dataset variants, leave one cell type out,
baselines always included, resumable (:mod:`perturblab.runs`), parallel (joblib or Dask).

:func:`run_benchmark` is the runner; :func:`perturblab.predict.run_loco` is its one-variant, one-seed case.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd

from ..._validation import check_values_present
from ...exceptions import InputError, UnknownNameError
from ...io import TABLE_FORMATS, write_json, write_table
from ..data import check_conditions, loco_targets
from ..models import BASELINES, baselines_for
from ..models.registry import ModelSpec, resolve_models
from .tables import collect
from .units import (
    CEILING,
    BenchmarkInputs,
    BenchmarkSettings,
    BenchmarkUnit,
    run_unit,
)
from .variants import VARIANTS

__all__ = ["BenchmarkResult", "benchmark_units", "execute_benchmark", "model_fingerprint", "model_specs",
           "prepare_input", "run_benchmark"]

log = logging.getLogger(__name__)


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced.

    Attributes
    ----------
    table
        Tidy table, one row per unit and metric: ``model, target, variant, seed, metric,
        gene_set, value, ci_low, ci_high, n_bootstrap, definition, ci_method, ci_flag, bias, paired,
        train_seconds, n_epochs, n_train_stimulated``. The data ceiling is the model ``"ceiling"``; the
        per-target metrics over targets (discrimination scores, centroid accuracy) are rows too.
    target_metrics
        :func:`perturblab.predict.evaluate_targets` per model, variant and seed (with the mean over targets
        and ``de_spearman_sig``).
    calibration
        :func:`perturblab.predict.calibrate`: each model between the ceiling and ``train_mean``.
    ranking
        :func:`~perturblab.predict.benchmark.rank_models` of ``table``.
    tests
        :func:`~perturblab.predict.benchmark.paired_tests` of ``table``.
    training
        One row per unit: training time, CPU time, peak memory, epochs, best epoch, how training stopped.
    units
        Every unit of the benchmark; ``n_run``: how many this call computed (the others were found
        finished in the output folder).
    out_dir
        Output folder (``benchmark.parquet``, ``ranking``, ``paired_tests``, ``summary.json``,
        ``report.html``, ``units/``, ``run.json``); ``None`` when nothing was kept.
    wall_time_s
        Seconds this call took.
    predictions, histories
        ``{unit: AnnData}`` of predicted cells and ``{unit: DataFrame}`` of training histories (filled when
        predictions are kept, as :func:`~perturblab.predict.run_loco` does).
    """

    table: pd.DataFrame
    ranking: pd.DataFrame
    tests: pd.DataFrame
    training: pd.DataFrame
    units: list[BenchmarkUnit]
    n_run: int
    out_dir: Path | None
    wall_time_s: float
    predictions: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    target_metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    data: dict = field(default_factory=dict)


def model_specs(models, baselines: Sequence[str] | None = None,
                include_baselines: bool = True) -> dict[str, ModelSpec]:
    """``{name: ModelSpec}`` of the models (names, unfitted instances, classes, or a ``{name: model}``
    mapping) followed by the baselines (default :data:`perturblab.predict.BASELINES`)."""
    extra = (BASELINES if baselines is None else tuple(baselines)) if include_baselines else ()
    if isinstance(models, str):
        models = [models]
    given: list[tuple[str | None, Any]]
    if isinstance(models, Mapping):
        given = [(str(k), v) for k, v in models.items()]
    else:
        given = [(None, m) for m in models if not (isinstance(m, str) and m == CEILING)]
    return resolve_models(given + [(None, b) for b in extra])


def model_fingerprint(specs: dict[str, ModelSpec]) -> dict:
    """The run-fingerprint entry of the models that are not perturblab's own names (instances, classes,
    registered and plugin models): ``{"model_specs": {name: {"class", "params"}}}``, or ``{}`` when every model
    is built in (so the fingerprints of such runs are unchanged). A changed class or parameter is a changed run:
    ``--resume`` refuses it."""
    own = {n: s.fingerprint() for n, s in specs.items() if not s.builtin}
    return {"model_specs": own} if own else {}


def benchmark_units(models, targets: Sequence[str], seeds: Sequence[int],
                    variants: Sequence[str] = VARIANTS, include_baselines: bool = True,
                    baselines: Sequence[str] | None = None, ceiling: bool = True) -> list[BenchmarkUnit]:
    """All units (model x target x variant x seed), baselines added, duplicates removed.

    ``models``: names, unfitted model instances, classes, or a ``{name: model}`` mapping (see
    :func:`model_specs`); a unit holds the model's name.

    ``baselines`` (default :data:`perturblab.predict.BASELINES`; :func:`perturblab.predict.baselines_for` adds
    ``additive`` where the data hold combinations) are added when ``include_baselines``. With ``ceiling``, one
    ``"ceiling"`` unit per target and seed (of the first variant: the ceiling does not depend on the variant).

    Raises
    ------
    UnknownNameError
        For an unknown model or variant.
    InputError
        For an empty list or a negative seed.
    """
    models = list(model_specs(models, baselines, include_baselines))
    for v in variants:
        if v not in VARIANTS:
            raise UnknownNameError("dataset variant", v, VARIANTS)
    for what, values in (("targets", targets), ("seeds", seeds), ("variants", variants)):
        if len(values) == 0:
            raise InputError(f"no {what} given")
    if any(int(s) < 0 for s in seeds):
        raise InputError(f"seeds must be >= 0, got {list(seeds)}")
    units = [BenchmarkUnit(m, str(t), v, int(s))
             for m, t, v, s in itertools.product(models, targets, dict.fromkeys(variants), dict.fromkeys(seeds))]
    if ceiling:
        first = next(iter(dict.fromkeys(variants)))
        units += [BenchmarkUnit(CEILING, str(t), first, int(s)) for t in targets for s in dict.fromkeys(seeds)]
    return units


def prepare_input(adata: ad.AnnData, settings: BenchmarkSettings) -> ad.AnnData:
    """The cells every unit works on: ``adata``'s keys checked and, unless ``settings.preprocessing`` is None,
    log-normalised to the HVGs."""
    check_conditions(adata, settings.condition_key, settings.cell_type_key, settings.control, settings.stimulated)
    if settings.preprocessing is None:
        from ..._validation import warn_representation

        warn_representation(adata.X, "log1p", "adata.X")
        return adata
    return settings.preprocessing.apply(adata, **settings.keys)


def _targets(adata, targets, settings: BenchmarkSettings) -> list[str]:
    if targets is None or list(targets) == ["all"]:
        return loco_targets(adata, settings.min_cells, **settings.keys)
    present = adata.obs[settings.cell_type_key].astype(str).unique()
    check_values_present(list(targets), present, f"cell type (in adata.obs[{settings.cell_type_key!r}])")
    return [str(t) for t in targets]


def execute_benchmark(adata: ad.AnnData, units: list[BenchmarkUnit], settings: BenchmarkSettings, store, *,
                      n_jobs: int = 1, scheduler=None, keep_predictions: bool = False,
                      specs: dict[str, ModelSpec] | None = None) -> int:
    """Run the units ``store`` does not hold yet and persist each as it finishes; returns how many ran.

    ``specs`` (:func:`model_specs`) carries the models that are not built-in names (instances, registered and
    plugin models) to the workers."""
    from ...runs import execute, progress

    todo = [u for u in units if not store.done(u.key)]
    inputs = BenchmarkInputs(adata, settings, keep_predictions, dict(specs or {}))
    with progress.task("benchmark units", total=len(units), completed=len(units) - len(todo)) as bar:
        for unit, out in execute(run_unit, todo, shared={"inputs": inputs}, n_jobs=n_jobs, scheduler=scheduler):
            store.save(unit.key, summary=out.training, tables={"metrics": out.table, "history": out.history},
                       adata=out.prediction, arrays=out.arrays)
            v = out.table.set_index(["metric", "gene_set"])["value"] if len(out.table) else pd.Series(dtype=float)
            log.info("%s: R2 %.3f, E-distance %.2f, training %.1f s", unit, v.get(("r2_pearson_mean", "all")),
                     v.get(("edistance", "pca")), out.training["train_seconds"])
            bar.advance()
    return len(todo)


def run_benchmark(data, out=None, models: Sequence[str] = ("scgen", "scpram"), targets: Sequence[str] | None = None,
                  seeds: Sequence[int] = (0,), variants: Sequence[str] = VARIANTS,
                  settings: BenchmarkSettings | None = None, *, n_jobs: int = 1, scheduler=None,
                  resume: bool = False, overwrite: bool = False, report: bool = True,
                  table_format: str = "parquet") -> BenchmarkResult:
    """Run (or resume) a benchmark and write its table and report.

    Every unit holds out the stimulated cells of one target cell type
    (:func:`perturblab.predict.loco_split`), alters the training cells by the dataset variant
    (:func:`~perturblab.predict.benchmark.make_variant`), trains the model with the unit's seed, predicts the
    target's stimulated cells from its control cells and evaluates them (:func:`perturblab.predict.evaluate`).
    The baselines (:data:`perturblab.predict.BASELINES`) are always added.

    Parameters
    ----------
    data
        Raw UMI counts (cells x genes) with condition and cell-type columns: an AnnData, a dataset name
        (``"kang2018"``) or an ``.h5ad`` path; log-normalised cells when ``settings.preprocessing`` is None.
    out
        Output folder (``None``: a temporary folder, nothing kept). Follows the run contract of
        :func:`perturblab.runs.open_run` (``resume`` continues a run with identical settings and data).
    models
        Models of :data:`perturblab.predict.MODELS` to compare (baselines are added).
    targets
        Held-out cell types (default, or ``["all"]``: every cell type with ``settings.min_cells`` cells per
        condition).
    seeds
        Seeds; each unit's seed drives the variant's draws, the model and the bootstrap.
    variants
        Dataset variants (default all of :data:`~perturblab.predict.benchmark.VARIANTS`).
    settings
        Keys, preprocessing, model, training, evaluation and variant parameters, device
        (:class:`BenchmarkSettings`).
    n_jobs
        Local processes (joblib; -1 all cores); ignored with ``scheduler``.
    scheduler
        Dask distributed scheduler address or ``distributed.Client``.
    resume, overwrite
        What to do when ``out`` already holds a benchmark.
    report
        Write ``report.html``.
    table_format
        ``"parquet"`` or ``"csv"`` for the tables.

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    UnknownNameError, InputError, MissingKeyError
        Unknown model/variant/target, missing keys or conditions, invalid settings.
    RunFolderError, SettingsMismatchError
        ``out`` cannot be used as asked.
    RunFailedError
        When a unit fails (finished units stay on disk; ``resume`` continues).

    Examples
    --------
    >>> import perturblab as plab
    >>> from perturblab.predict.benchmark import BenchmarkSettings, run_benchmark
    >>> fast = BenchmarkSettings(preprocessing=plab.predict.Preprocessing(n_top_genes=100),
    ...                          evaluate_params={"n_bootstrap": 0})
    >>> res = run_benchmark("kang2018", models=["mean_delta"], targets=["B"], variants=["balanced"], settings=fast)
    >>> sorted(set(res.table["model"]))
    ['ceiling', 'identity', 'linear', 'matching_mean', 'mean_delta', 'pca_mean_delta', 'train_mean']

    scGen on one target, results kept in a folder:

    >>> res = run_benchmark("kang2018", "results/bench", models=["scgen"], targets=["B"],
    ...                     settings=BenchmarkSettings(train_params={"scgen": {"max_epochs": 5}}))  # doctest: +SKIP
    >>> res.ranking.head()  # doctest: +SKIP
    """
    from ...runs import UnitStore, data_checksum, open_run

    t0 = time.perf_counter()
    settings = settings or BenchmarkSettings()
    if table_format not in TABLE_FORMATS:
        raise InputError(f"table format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}")
    from ... import datasets

    if len(models):
        model_specs(models, include_baselines=False)  # unknown names fail before the data load
    raw = datasets.load(data)
    adata = prepare_input(raw, settings)
    targets = _targets(adata, targets, settings)
    base = baselines_for(adata, settings.condition_key, settings.control)
    specs = model_specs(models, base)
    units = benchmark_units(specs, targets, seeds, variants, baselines=base)
    tmp = tempfile.TemporaryDirectory(prefix="perturblab-benchmark-") if out is None else None
    run_settings = {"models": list(dict.fromkeys(u.model for u in units if u.model != CEILING)),
                    "targets": targets, "seeds": [int(s) for s in dict.fromkeys(seeds)],
                    "variants": list(dict.fromkeys(variants)), **settings.fingerprint(), **model_fingerprint(specs)}
    checksum = data_checksum(raw)
    run = open_run(tmp.name if tmp else out, "benchmark", run_settings, checksum, resume=resume,
                   overwrite=overwrite)
    store = UnitStore(run)
    n_run = execute_benchmark(adata, units, settings, store, n_jobs=n_jobs, scheduler=scheduler, specs=specs)
    got = collect(store, units, list(adata.var_names), run_settings["variants"])
    from ..provenance import describe_data
    from .report import benchmark_report
    from .stats import paired_tests, rank_models

    table = got.table
    ranking, tests = rank_models(table), paired_tests(table)
    wall = time.perf_counter() - t0
    desc = describe_data(data, raw, adata, settings, run_settings["seeds"], checksum)
    result = BenchmarkResult(table, ranking, tests, got.training, units, n_run, None if tmp else run.path, wall,
                             histories=got.histories, target_metrics=got.target_metrics,
                             calibration=got.calibration, data=desc)
    if tmp is not None:
        tmp.cleanup()
        return result
    write_table(run.file(f"benchmark.{table_format}"), table)
    write_table(run.file(f"ranking.{table_format}"), ranking)
    write_table(run.file(f"paired_tests.{table_format}"), tests)
    write_table(run.file(f"training.{table_format}"), got.training)
    write_table(run.file(f"target_metrics.{table_format}"), got.target_metrics)
    write_table(run.file(f"calibration.{table_format}"), got.calibration)
    best = ranking[ranking["model"] != CEILING].groupby(["variant", "metric", "gene_set"], sort=False).head(1)
    summary = {"n_units": len(units), "n_run_now": n_run, "models": run_settings["models"],
               "baselines": list(base), "ceiling": CEILING, "protocol": settings.protocol, "data": desc,
               "targets": targets, "seeds": run_settings["seeds"], "variants": run_settings["variants"],
               "wall_time_s": wall, "best": best.to_dict(orient="records")}
    write_json(run.file("summary.json"), summary)
    if report:
        shown = {"protocol": settings.protocol, **run_settings}
        benchmark_report(table, settings=shown, baselines=base, target_metrics=got.target_metrics,
                         calibration=got.calibration, data=desc).write(run.file("report.html"))
    return result
