"""The HTML report of a benchmark (perturblab.report): the data, ranking per metric (every metric, the ceiling
and the baselines beside the models), model x target heatmaps, the metrics over targets, the calibration
against the ceiling and trainMean, paired tests between models, and the degradation across variants.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...report import Report
from .. import pl
from .stats import degradation, paired_tests, rank_models

__all__ = ["HEADLINE_METRICS", "benchmark_report"]

#: Metrics shown in figures (every gene set of each); all metrics are in the tables and files.
HEADLINE_METRICS = ("r2_pearson_mean", "edistance", "mse_mean", "pearson_delta", "deg_overlap_at_k[mean_diff]",
                    "overlap_at_N", "discrimination_score_l1", "weighted_mse")


def _headline(table: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = table[["metric", "gene_set"]].drop_duplicates()
    pairs = pairs[pairs["metric"].isin(HEADLINE_METRICS)]
    order = {m: i for i, m in enumerate(HEADLINE_METRICS)}
    return sorted(map(tuple, pairs.to_numpy()), key=lambda p: (order[p[0]], p[1] != "all", p[1]))


def _interval_table(table: pd.DataFrame, keys) -> pd.DataFrame:
    """Mean over seeds per (model, target, metric): ``value [ci_low, ci_high]`` when the interval is meaningful
    (empty ``ci_flag``), else the value and the flag; the interval method and the mean bias beside it."""
    from ..report import format_value

    rows = []
    for key, g in table.groupby(keys, observed=True, sort=False):
        r = {"value": g["value"].mean(), "ci_low": g["ci_low"].mean(), "ci_high": g["ci_high"].mean(),
             "ci_flag": "; ".join(sorted({str(f) for f in g.get("ci_flag", pd.Series(dtype=str)).fillna("")
                                          if str(f)}))}
        rows.append({**dict(zip(keys, key)), "value [95% CI]": format_value(r),
                     "ci_method": ", ".join(sorted(set(g["ci_method"].astype(str)))) if "ci_method" in g else "",
                     "bias": g["bias"].mean() if "bias" in g else np.nan})
    return pd.DataFrame(rows)


def benchmark_report(table: pd.DataFrame, title: str = "Perturbation-response benchmark",
                     settings: dict | None = None, baselines=(), target_metrics: pd.DataFrame | None = None,
                     calibration: pd.DataFrame | None = None, data: dict | None = None) -> Report:
    """Build the report of a benchmark table (see :func:`perturblab.predict.benchmark.run_benchmark`).

    Parameters
    ----------
    table
        Tidy benchmark table (``model, target, variant, seed, metric, gene_set, value, ci_low,
        ci_high, ...``).
    title
        Report title.
    settings
        Shown as the run's settings (JSON-like dict).
    baselines
        Names of the baseline models (marked in the ranking).
    target_metrics, calibration
        The benchmark's metrics over targets and calibration tables (sections left out when None).
    data
        :func:`perturblab.predict.provenance.describe_data` of the run (file, cells, genes, normalisation,
        protocol, seeds, version, checksum).

    Returns
    -------
    perturblab.report.Report
        Call ``.write(path)`` to save the self-contained HTML page.
    """
    from ..provenance import data_items

    variants = list(dict.fromkeys(table["variant"]))
    rep = Report(title, subtitle=f"{table['model'].nunique()} models x {table['target'].nunique()} targets x "
                                 f"{table['seed'].nunique()} seeds x {len(variants)} dataset variants")
    if data:
        sec = rep.section("Data", id="data")
        sec.items(data_items(data), caption="dataset")
        cells = pd.DataFrame(data["cells"]).T.fillna(0).astype(int)
        sec.table(cells.reset_index(names="cell type"), caption="cells used per cell type and condition")
    sec = rep.section("Set-up", id="setup")
    sec.text("Leave-one-cell-type-out: each target's stimulated cells are held out, the model is trained on the "
             "remaining cells (altered by the dataset variant) and predicts the target's stimulated cells from its "
             "control cells. Variants change only the training cells; the truth is the same in every variant. "
             "Baselines (not trained) are always included: " + ", ".join(baselines) + ". The data ceiling "
             "(model 'ceiling': half of the real stimulated cells as the prediction of the other half, the "
             "positive control) is in every table. scgen_unbalanced is a trained model (scGen without its "
             "cell-type balancing), run only when asked for.")
    sec.items([f"{k}: {v}" for k, v in (settings or {}).items()], caption="settings")

    ranking = rank_models(table)
    ranking["baseline"] = ranking["model"].isin(list(baselines))
    ranking["ceiling"] = ranking["model"] == "ceiling"
    sec = rep.section("Ranking per metric", id="ranking")
    sec.text("Mean over targets (each target's value averaged over seeds); rank 1 = best. Lower is better for "
             "errors and distances (MSE, MAE, weighted MSE, Wasserstein, E-distance, MMD, KDE distance), higher for "
             "the others; DEG counts (de_nsig_counts_*) have no better direction and are not ranked. The ceiling "
             "is ranked too: a model ranked above it on a metric beats two halves of the real cells there.")
    heads = _headline(table)
    head_rank = pd.concat([ranking[(ranking["metric"] == m) & (ranking["gene_set"] == g)] for m, g in heads])
    sec.table(head_rank, caption="headline metrics")
    sec.table(ranking, caption="every metric (also ranking.csv)", max_rows=5000)

    sec = rep.section("Values with intervals", id="values")
    sec.text("Mean over seeds per model, target and metric. Brackets: 95% resampling interval, shown only where it "
             "is meaningful; otherwise the value is followed by the reason (ci_flag: NaN estimate, constant under "
             "resampling, undefined resamples, too few cells). ci_method names the interval; bias is the mean of "
             "the resamples minus the estimate.")
    vals = _interval_table(table, ["variant", "model", "target", "metric", "gene_set"])
    head_keys = set(heads)
    sec.table(vals[[k in head_keys for k in zip(vals["metric"], vals["gene_set"])]], caption="headline metrics",
              max_rows=5000)

    sec = rep.section("Model x target", id="heatmaps")
    for metric, gset in heads:
        sec.figure(pl.metric_heatmap(table, metric=metric, gene_set=gset, variants=variants)[0].figure,
                   caption=f"{metric} ({gset}), mean over seeds")

    if target_metrics is not None and len(target_metrics):
        sec = rep.section("Metrics over targets", id="targets")
        sec.text("cell-eval's discrimination scores (1 - rank/T of the target's own real delta among all targets' "
                 "real deltas, by distance to its predicted delta), Systema's centroid accuracy and cell-eval's "
                 "de_spearman_sig (Spearman over targets of real and predicted DEG counts). Deltas from each "
                 "target's own control cells. perfect_discrimination_l2_*: the l2 score a perfect prediction is "
                 "expected to reach on these data, when it is made by shifting the control cells (and carries "
                 "their sample mean, which cell-eval's score subtracts from both deltas) or is decoded (does not "
                 "carry it): a model's score is read against the first or the second.")
        tm = target_metrics[target_metrics["target"].isin(["mean", "all"])]
        sec.table(_interval_table(tm, ["variant", "model", "target", "metric"]), caption="mean over targets",
                  max_rows=5000)

    if calibration is not None and len(calibration):
        sec = rep.section("Calibration", id="calibration")
        sec.text("Mejia et al. 2025: each model placed between the negative control (train_mean, 0) and the positive "
                 "control (the ceiling, 1), per target; a metric is calibrated where the ceiling beats train_mean "
                 "(share of targets below) and separated where their intervals do not overlap.")
        cal = calibration.groupby(["variant", "metric", "gene_set", "model"], observed=True).agg(
            scaled=("scaled", "mean"), calibrated=("calibrated", "mean"),
            separated=("separated", lambda x: pd.Series(pd.to_numeric(x, errors="coerce")).mean())).reset_index()
        sec.table(cal[cal["metric"].isin(HEADLINE_METRICS)], caption="headline metrics, mean over targets and seeds",
                  max_rows=5000)
        per_metric = cal.groupby(["variant", "metric", "gene_set"], observed=True)[["calibrated", "separated"]].first()
        sec.table(per_metric.reset_index(), caption="is each metric calibrated (share of targets)?", max_rows=5000)

    tests = paired_tests(table)
    sec = rep.section("Paired tests between models", id="tests")
    sec.text("Wilcoxon signed-rank test per pair of models, paired by target (values averaged over seeds), "
             "Benjamini-Hochberg adjusted within each variant, metric and gene set. NaN: fewer than two targets or "
             "no difference. With few targets the smallest attainable p-value is large (0.25 for 3 targets).")
    head_tests = pd.concat([tests[(tests["metric"] == m) & (tests["gene_set"] == g)] for m, g in heads])
    sec.table(head_tests, caption="headline metrics (all metrics: paired_tests.csv)")

    deg = degradation(table)
    sec = rep.section("Degradation across dataset variants", id="degradation")
    if deg.empty:
        sec.text("Only one dataset variant (or no balanced reference) was run: nothing to compare.")
    else:
        sec.text("Change of each metric from the balanced data to the other variants, signed so that positive means "
                 "worse. unbalanced: 20% of each cell type's stimulated training cells kept; proportion_shift: a "
                 "seeded share per cell type, so the stimulated cell-type composition differs from the control's.")
        for metric, gset in heads:
            sec.figure(pl.degradation(deg, metric=metric, gene_set=gset).figure, caption=f"{metric} ({gset})")
        summary = deg.groupby(["variant", "metric", "gene_set", "model"], observed=True)["worse_by"].agg(
            ["mean", "min", "max"]).reset_index()
        sec.table(summary[summary["metric"].isin(HEADLINE_METRICS)], caption="worse_by over targets and seeds")
    return rep
