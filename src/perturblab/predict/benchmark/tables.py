"""The tables of a finished benchmark, read back from its unit store: per-unit metrics (the ceiling's rows
shared by every dataset variant), the metrics over targets (:func:`perturblab.predict.evaluate_targets` from
each unit's stored summary) and the calibration against the positive and negative controls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from ..ceiling import calibrate
from ..evaluate_targets import TargetSummary, targets_table
from .units import CEILING, UNIT_COLUMNS

__all__ = ["PER_TARGET_METRICS", "CollectedRun", "calibration", "collect", "target_metrics"]

log = logging.getLogger(__name__)

#: Metrics over targets that have one value per target: they join the main table (rankings, tests).
PER_TARGET_METRICS = ("discrimination_score_l1", "discrimination_score_l2", "discrimination_score_cosine",
                      "centroid_accuracy")


@dataclass
class CollectedRun:
    """What :func:`collect` read back: ``table`` (every unit's metrics, plus the per-target metrics over
    targets), ``training``, ``target_metrics`` (:func:`target_metrics`), ``calibration``
    (:func:`calibration`), and per unit the predictions (when kept) and training histories."""

    table: pd.DataFrame
    training: pd.DataFrame
    target_metrics: pd.DataFrame
    calibration: pd.DataFrame
    predictions: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)


def collect(store, units, genes, variants, keep_predictions: bool = False, ci: float = 0.95,
            ci_method: str = "centered") -> CollectedRun:
    """Read every unit of ``units`` back from ``store`` and build the benchmark's tables.

    Parameters
    ----------
    store
        The run's :class:`~perturblab.runs.UnitStore` (every unit finished).
    units
        The benchmark's units; a ``"ceiling"`` unit of the first variant stands for every variant (the truth
        and the reference are the same in all of them).
    genes
        Gene names of the evaluated cells, in order.
    variants
        The benchmark's dataset variants.
    keep_predictions
        Read the predicted cells back too.
    ci, ci_method
        Interval of the metrics over targets.
    """
    tables, training, preds, hists, summaries = [], [], {}, {}, {}
    for u in units:
        stored = store.load(u.key)
        t = stored.tables["metrics"]
        training.append(stored.summary)
        hists[u] = stored.tables["history"]
        copies = [u.variant] if u.model != CEILING else list(variants)
        for v in copies:
            tables.append(t.assign(variant=v) if len(t) else t)
            if (stored.path / "arrays.npz").is_file():
                summaries[(u.model, v, u.seed, u.target)] = TargetSummary.from_arrays(stored.arrays(), genes)
        if keep_predictions and u.model != CEILING and (stored.path / "adata.h5ad").is_file():
            preds[u] = stored.adata()
    table = pd.concat([t for t in tables if len(t)], ignore_index=True)
    tm = target_metrics(summaries, ci=ci, ci_method=ci_method)
    if len(tm):
        per = tm[tm["metric"].isin(PER_TARGET_METRICS) & ~tm["target"].isin(["mean", "all"])]
        table = pd.concat([table, per[[c for c in per.columns if c in table.columns]]], ignore_index=True)
    return CollectedRun(table, pd.DataFrame(training), tm, calibration(table), preds, hists)


def target_metrics(summaries: dict, ci: float = 0.95, ci_method: str = "centered") -> pd.DataFrame:
    """:func:`perturblab.predict.evaluate_targets.targets_table` of each (model, variant, seed) over its
    targets; ``summaries`` maps ``(model, variant, seed, target)`` to a :class:`TargetSummary`. Groups with
    fewer than 2 targets have no such metrics (logged)."""
    groups: dict = {}
    for (model, variant, seed, target), s in summaries.items():
        groups.setdefault((model, variant, seed), {})[target] = s
    rows = []
    for (model, variant, seed), by_target in groups.items():
        if len(by_target) < 2:
            log.info("%s / %s / seed %s: one target, no metrics over targets", model, variant, seed)
            continue
        t = targets_table(by_target, ci=ci, ci_method=ci_method)
        t.insert(0, "seed", seed)
        t.insert(0, "variant", variant)
        t.insert(0, "model", model)
        rows.append(t)
    if not rows:
        return pd.DataFrame(columns=[*UNIT_COLUMNS, "metric", "gene_set", "value", "ci_low", "ci_high"])
    out = pd.concat(rows, ignore_index=True)
    return out[["model", "target", "variant", "seed", *[c for c in out.columns if c not in UNIT_COLUMNS]]]


def calibration(table: pd.DataFrame, positive: str = CEILING, negative: str = "train_mean") -> pd.DataFrame:
    """:func:`perturblab.predict.calibrate` of a benchmark table per target, variant and seed: every model
    between the data ceiling (1) and scPerturBench's trainMean (0). Empty when either control is absent."""
    present = set(table["model"].astype(str)) if len(table) else set()
    if positive not in present or negative not in present:
        return pd.DataFrame(columns=["target", "variant", "seed", "metric", "gene_set", "model", "value",
                                     "positive", "negative", "scaled", "calibrated", "separated"])
    return calibrate(table, positive=positive, negative=negative, by=("target", "variant", "seed"))
