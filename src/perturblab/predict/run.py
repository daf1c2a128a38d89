"""The leave-one-cell-type-out (LOCO) protocol: train, predict and evaluate models x targets, write the report.

:func:`run_loco` is the one-variant ("balanced"), one-seed case of the benchmark runner
(:func:`perturblab.predict.benchmark.run_benchmark`), keeping the predicted cells for the report.
``perturblab predict`` calls it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..exceptions import InputError
from ..io import TABLE_FORMATS, write_json, write_table
from .benchmark.runner import (
    _targets,
    benchmark_units,
    execute_benchmark,
    model_fingerprint,
    model_specs,
    prepare_input,
)
from .benchmark.tables import collect
from .benchmark.units import CEILING, BenchmarkSettings
from .data import loco_split
from .models import baselines_for
from .training import TrainingHistory

__all__ = ["LocoResult", "run_loco"]

log = logging.getLogger(__name__)


@dataclass
class LocoResult:
    """Results of :func:`run_loco`.

    Attributes
    ----------
    metrics
        Tidy table: ``target, model`` + the columns of :func:`~perturblab.predict.evaluate`; the data
        ceiling is the model ``"ceiling"``; the per-target discrimination scores and centroid accuracy are rows
        too (with two targets or more).
    training
        One row per (target, model): ``train_seconds`` (wall, model construction + training),
        ``train_cpu_seconds`` (process CPU time; less sensitive to a busy machine), ``peak_memory_mb`` (above
        the start of the unit) and ``peak_rss_mb`` (see :func:`perturblab.runs.peak_memory`), ``epochs``,
        ``best_epoch``, ``stopped_by``, ``n_train_stimulated``.
    predictions
        ``{(target, model): AnnData}`` of predicted cells.
    splits
        ``{target: LocoSplit}``.
    histories
        ``{(target, model): TrainingHistory}``.
    summary
        The JSON summary (also ``OUT/summary.json``).
    out_dir
        Output folder (``None`` when nothing was kept).
    target_metrics
        :func:`~perturblab.predict.evaluate_targets` per model over the targets (empty with one target).
    calibration
        :func:`~perturblab.predict.calibrate`: each model between the ceiling and ``train_mean``.
    """

    metrics: pd.DataFrame
    training: pd.DataFrame
    predictions: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    out_dir: Path | None = None
    target_metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_adata(self, target: str):
        """The control, real stimulated and every model's predicted cells of ``target`` in one AnnData
        (:func:`perturblab.predict.combine_cells`: ``obs["perturblab_source"]`` is control / real / predicted,
        ``obs["perturblab_model"]`` names the model), for scanpy, :func:`perturblab.predict.distance` and
        :mod:`perturblab.predict.pl`.

        Raises
        ------
        UnknownNameError
            A target that was not held out in this run.
        """
        from .._validation import check_values_present
        from .cells import combine_cells

        check_values_present([str(target)], list(self.splits), "target (held out in this run)")
        split = self.splits[str(target)]
        preds = {m: p for (t, m), p in self.predictions.items() if t == str(target)}
        return combine_cells(preds, split.target_ctrl, split.target_stim)


def run_loco(data, models: Sequence | Mapping = ("scgen",), targets: Sequence[str] | None = ("CD14 Mono",), *,
             out=None, settings: BenchmarkSettings | None = None, random_state: int = 0, n_jobs: int = 1,
             scheduler=None, resume: bool = False, overwrite: bool = False, table_format: str = "parquet",
             report: bool = True) -> LocoResult:
    """Leave one cell type out: for each target, train each model without the target's stimulated cells,
    predict them from the target's control cells, evaluate, and write tables, summary and report.

    Parameters
    ----------
    data
        Raw UMI counts (cells x genes) with condition and cell-type columns: an AnnData, a dataset name
        (``"kang2018"``) or an ``.h5ad`` path; already log-normalised cells when ``settings.preprocessing`` is
        None.
    models
        Names of :data:`perturblab.predict.MODELS` (built-in, registered with
        :func:`~perturblab.predict.register_model` or by a ``perturblab.models`` plugin), unfitted model instances
        (``ScGen(n_latent=10)``), model classes, or a ``{name: model}`` mapping; an instance's class and
        parameters enter the run's fingerprint (a changed model is not reused on ``resume``). The baselines
        (:func:`perturblab.predict.baselines_for`:
        :data:`~perturblab.predict.BASELINES`, and ``additive`` where the data hold combinations) and the data
        ceiling are always added.
    targets
        Cell types to hold out (``None`` or ``["all"]``: those with ``settings.min_cells`` cells per condition).
    out
        Output folder (``metrics``, ``training``, ``summary.json``, ``report.html``, ``units/``); ``None``: a
        temporary folder, nothing kept. Follows :func:`perturblab.runs.open_run`'s contract.
    settings
        Keys, preprocessing, hyperparameters (``model_params``), training (``train_params``), evaluation
        (``evaluate_params``, e.g. ``{"n_bootstrap": 100}``), device (:class:`BenchmarkSettings`).
    random_state
        Seed of the models and the bootstraps.
    n_jobs, scheduler
        Parallel units (joblib processes, or a Dask scheduler).
    resume, overwrite
        What to do when ``out`` already holds a ``predict`` run.
    table_format
        ``"parquet"`` or ``"csv"``.
    report
        Write ``report.html``.

    Returns
    -------
    LocoResult

    Raises
    ------
    UnknownNameError, InputError, MissingKeyError
        Unknown model or target (with "did you mean"), missing keys or conditions, invalid settings.
    RunFolderError, SettingsMismatchError
        ``out`` cannot be used as asked.

    Examples
    --------
    >>> import perturblab as plab
    >>> res = plab.predict.run_loco("kang2018", ["scgen"], ["CD14 Mono"], out="results/predict")  # doctest: +SKIP
    >>> res.metrics.query("metric == 'r2_pearson_mean'")  # doctest: +SKIP
    """
    from ..datasets import load
    from ..runs import UnitStore, data_checksum, open_run

    t0 = time.perf_counter()
    settings = settings or BenchmarkSettings()
    if table_format not in TABLE_FORMATS:
        raise InputError(f"table format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}")
    if len(models):
        model_specs(models, include_baselines=False)  # unknown names fail before the data load
    raw = load(data)
    adata = prepare_input(raw, settings)
    targets = _targets(adata, targets, settings)
    base = baselines_for(adata, settings.condition_key, settings.control)
    specs = model_specs(models, base)
    units = benchmark_units(specs, targets, [random_state], ["balanced"], baselines=base)
    names = list(dict.fromkeys(u.model for u in units if u.model != CEILING))
    tmp = tempfile.TemporaryDirectory(prefix="perturblab-predict-") if out is None else None
    run_settings = {"models": names, "targets": targets, "seed": int(random_state), **settings.fingerprint(),
                    **model_fingerprint(specs)}
    checksum = data_checksum(raw)
    run = open_run(tmp.name if tmp else out, "predict", run_settings, checksum, resume=resume,
                   overwrite=overwrite)
    log.info("%d cells x %d genes; targets %s; models %s; protocol %s", adata.n_obs, adata.n_vars, targets, names,
             settings.protocol)
    store = UnitStore(run)
    n_run = execute_benchmark(adata, units, settings, store, n_jobs=n_jobs, scheduler=scheduler,
                              keep_predictions=True, specs=specs)
    got = collect(store, units, list(adata.var_names), ["balanced"], keep_predictions=True)
    training = got.training
    result = LocoResult(
        metrics=got.table.drop(columns=["variant", "seed"]),
        training=training.drop(columns=["variant", "seed"]),
        predictions={(u.target, u.model): got.predictions[u] for u in units if u in got.predictions},
        splits={t: loco_split(adata, t, **settings.keys) for t in targets},
        histories={(u.target, u.model): _history(got.histories[u], info)
                   for u, info in zip(units, training.to_dict(orient="records"))},
        out_dir=None if tmp else run.path,
        target_metrics=got.target_metrics.drop(columns=["variant", "seed"]),
        calibration=got.calibration.drop(columns=["variant", "seed"], errors="ignore"),
    )
    from .provenance import describe_data

    result.summary = _summary(result, describe_data(data, raw, adata, settings, [random_state], checksum), names,
                              base, targets, settings, random_state, n_run, len(units), time.perf_counter() - t0)
    if tmp is not None:
        tmp.cleanup()
    else:
        _write(result, run, table_format, report)
    return result


def _history(table: pd.DataFrame, info: dict) -> TrainingHistory:
    return TrainingHistory(table, int(info.get("best_epoch", 0)), str(info.get("stopped_by", "none")),
                           float(info.get("train_seconds", float("nan"))))


def _summary(result: LocoResult, desc: dict, names, baselines, targets, settings, seed, n_run, n_units,
             wall) -> dict:
    from .report import summary_table

    rows = summary_table(result.metrics, result.training)
    return {"data": desc, "n_cells": desc["n_cells_used"], "n_genes": desc["n_genes_used"], "targets": targets,
            "models": names, "baselines": list(baselines), "ceiling": CEILING, "protocol": settings.protocol,
            "seed": int(seed), "preprocessing": settings.fingerprint()["preprocessing"],
            "n_bootstrap": settings.evaluate_params.get("n_bootstrap"), "n_units": n_units, "n_units_run": n_run,
            "wall_time_s": wall, "rows": rows.to_dict(orient="records")}


def _write(result: LocoResult, run, table_format: str, report: bool) -> None:
    from .report import build_report, summary_table

    write_table(run.file(f"metrics.{table_format}"), result.metrics)
    write_table(run.file(f"training.{table_format}"), result.training)
    write_table(run.file(f"summary.{table_format}"), summary_table(result.metrics, result.training))
    write_table(run.file(f"target_metrics.{table_format}"), result.target_metrics)
    write_table(run.file(f"calibration.{table_format}"), result.calibration)
    write_json(run.file("summary.json"), result.summary)
    if report:
        title = f"perturblab predict: {result.summary['data']['file']} (protocol {result.summary['protocol']})"
        build_report(result, title=title).write(run.file("report.html"))
