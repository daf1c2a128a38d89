"""HTML report of a LOCO run (perturblab.report: self-contained, autoescaped)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import Report
from . import pl
from .cells import combine_cells
from .evaluate import rank_degs

__all__ = ["KEY_METRICS", "format_value", "summary_table", "versus_baseline", "build_report"]

#: (metric, gene_set) pairs shown in the headline tables.
KEY_METRICS = [("r2_pearson_mean", "all"), ("r2_pearson_mean", "top100_degs"), ("r2_score_mean", "all"),
               ("r2_score_mean", "top100_degs"), ("r2_pearson_var", "all"), ("pearson_delta", "all"),
               ("pearson_delta", "top100_degs_ttest"), ("edistance", "pca"), ("mmd_linear", "pca"),
               ("wasserstein", "all"), ("kde_distance", "all"), ("weighted_mse", "deg_weights[vsrest]"),
               ("weighted_mse", "deg_weights[vscontrol]"), ("overlap_at_N", "pdex_fdr0.05"),
               ("discrimination_score_l1", "all"), ("deg_jaccard[wilcoxon]", "top100_degs"),
               ("deg_jaccard[mean_diff]", "top100_degs"), ("direction_match[mean_diff]", "top100_degs")]


def format_value(row) -> str:
    """``"value [ci_low, ci_high]"`` when the row's interval is meaningful (``ci_flag`` empty and finite
    bounds), else ``"value (flag)"``, or the value alone without an interval (3 significant digits)."""
    flag = str(row.get("ci_flag", "") or "")
    if flag == "nan":
        flag = ""
    value = f"{row['value']:.3g}"
    lo, hi = row.get("ci_low", np.nan), row.get("ci_high", np.nan)
    if flag:
        return f"{value} ({flag})"
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        return f"{value} [{lo:.3g}, {hi:.3g}]"
    return value


def summary_table(metrics: pd.DataFrame, training: pd.DataFrame | None = None) -> pd.DataFrame:
    """Wide table, one row per (target, model): key metrics as :func:`format_value` ("value [ci_low, ci_high]",
    or the value and why its interval is not shown), the interval method, plus training; ``note`` says why a
    model gave no metrics (not applicable to the data)."""
    rows = []
    for (target, model), g in metrics.groupby(["target", "model"], sort=False):
        v = g.set_index(["metric", "gene_set"])
        row = {"target": target, "model": model}
        for key in KEY_METRICS:
            if key in v.index:
                r = v.loc[key]
                r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
                row[f"{key[0]} ({key[1]})"] = format_value(r)
        if "ci_method" in g:
            row["ci_method"] = ", ".join(sorted(set(g["ci_method"].astype(str)) - {"none"})) or "none"
        if "note" in g and g["note"].notna().any():
            row["note"] = str(g["note"].dropna().iloc[0])
        rows.append(row)
    out = pd.DataFrame(rows)
    if training is not None and len(training):
        out = out.merge(training[["target", "model", "train_seconds", "peak_memory_mb", "epochs"]],
                        on=["target", "model"], how="left")
    return out


def versus_baseline(metrics: pd.DataFrame, baseline: str = "mean_delta") -> list[str]:
    """One sentence per (target, model) saying whether the model beats ``baseline`` on R2 (all genes and
    the real top DEGs, higher is better) and E-distance (lower is better), with the numbers, and why a
    distance may favour the baseline (its variance R2 against the model's)."""
    from .models import BASELINES

    skip = {*BASELINES, "additive", "ceiling"}
    lines = []
    for target, g in metrics.groupby("target", sort=False):
        v = g.set_index(["model", "metric", "gene_set"])["value"]
        if (baseline, "edistance", "pca") not in v.index:
            continue
        degs = next(s for s in g.loc[g["metric"] == "r2_pearson_mean", "gene_set"] if s != "all")
        for model in [m for m in dict.fromkeys(g["model"]) if m not in skip]:
            r2, r2d = v[(model, "r2_pearson_mean", "all")], v[(model, "r2_pearson_mean", degs)]
            b2, b2d = v[(baseline, "r2_pearson_mean", "all")], v[(baseline, "r2_pearson_mean", degs)]
            e, be = v[(model, "edistance", "pca")], v[(baseline, "edistance", "pca")]
            verdict = "beats" if (r2 > b2 and r2d > b2d and e < be) else "does NOT beat"
            text = (f"{target}: {model} {verdict} {baseline} (R2 all {r2:.3f} vs {b2:.3f}, {degs} {r2d:.3f} vs "
                    f"{b2d:.3f}, E-distance {e:.2f} vs {be:.2f}).")
            if e >= be:
                mv, bv = v[(model, "r2_pearson_var", "all")], v[(baseline, "r2_pearson_var", "all")]
                text += (f" The E-distance compares whole cell distributions and {baseline} shifts real control cells, "
                         f"keeping their own cell-to-cell spread (variance R2 {mv:.3f} for {model} vs {bv:.3f})"
                         + ("; the predicted cells' gene variances match the real ones less well." if mv < bv else
                            "; here the gap is not explained by the gene variances but by the cells' joint structure."))
            lines.append(text)
    return lines


def build_report(result, title: str = "Perturbation-response prediction", n_violin: int = 6,
                 notes: list[str] | None = None) -> Report:
    """Build the report of a :class:`~perturblab.predict.run.LocoResult`.

    Per target: metric table (values with bootstrap CIs, baselines beside the models), gene-mean
    and gene-variance scatter with R2 (top-100 DEGs highlighted), PCA of control / real
    stimulated / predicted cells, violins of the top DEGs, training curves.
    """
    from .provenance import data_items

    rep = Report(title, "Leave-one-cell-type-out: each target's stimulated cells are held out of training and "
                        "predicted from its control cells. Expression is log-normalised.")
    data = result.summary.get("data") if result.summary else None
    if data:
        sec = rep.section("Data", id="data")
        sec.items(data_items(data), caption="dataset")
        cells = pd.DataFrame(data["cells"]).T.fillna(0).astype(int)
        sec.table(cells.reset_index(names="cell type"), caption="cells used per cell type and condition")
    baselines = result.summary.get("baselines", []) if result.summary else []
    sec = rep.section("Summary", id="summary")
    sec.text("R2 (squared Pearson of gene means, scGen/scPRAM/pertpy) and 1 - SS_res/SS_tot (ECCB tutorial) on all "
             "genes and the real top-100 DEGs (Wilcoxon, real stimulated vs control); pearson_delta on all genes "
             "(cell-eval) and on the t-test top-100 DEGs (scPerturBench); E-distance on 30 PCs fitted on the real "
             "cells (Euclidean, pertpy); weighted MSE (Mejia et al.); cell-eval's overlap_at_N and discrimination "
             "score. Brackets: 95% resampling intervals (method in ci_method), shown only where meaningful, else "
             "the reason. Baselines (not trained): " + ", ".join(baselines) + ". The ceiling (half of the real "
             "stimulated cells predicting the other half) is the achievable. scgen_unbalanced is a trained model, "
             "run only when asked for.")
    sec.items([*(notes or []), *versus_baseline(result.metrics)])
    sec.table(summary_table(result.metrics, result.training), caption="Key metrics per target and model")
    tm = getattr(result, "target_metrics", None)
    if tm is not None and len(tm):
        sec.table(tm[tm["target"].isin(["mean", "all"])].assign(**{"value [95% CI]": lambda d: [
            format_value(r) for _, r in d.iterrows()]})[["model", "target", "metric", "value [95% CI]",
                                                         "ci_method"]],
            caption="Metrics over targets (discrimination scores, centroid accuracy, de_spearman_sig)")
    cal = getattr(result, "calibration", None)
    if cal is not None and len(cal):
        keys = set(KEY_METRICS)
        shown = cal[[k in keys for k in zip(cal["metric"], cal["gene_set"])]]
        sec.table(shown[["target", "model", "metric", "gene_set", "value", "positive", "negative", "scaled",
                         "calibrated", "separated"]],
                  caption="Calibration (Mejia et al. 2025): scaled = 0 at train_mean, 1 at the ceiling")
    for target, split in result.splits.items():
        preds = {m: p for (t, m), p in result.predictions.items() if t == target}
        s = rep.section(f"Target: {target}", id=f"target-{target}")
        s.text(f"{split.target_ctrl.n_obs} control cells predicted; {split.target_stim.n_obs} real stimulated "
               f"cells held out; {split.train.n_obs} training cells.")
        sub = result.metrics[result.metrics["target"] == target].copy()
        sub["value [95% CI]"] = [format_value(r) for _, r in sub.iterrows()]
        cols = ["model", "metric", "gene_set", "value [95% CI]", "ci_method", "bias"]
        s.table(sub[[c for c in cols if c in sub]], caption="All metrics (definitions in metrics.parquet)",
                max_rows=5000)
        degs = rank_degs(split.target_stim.X, split.target_ctrl.X, split.target_stim.var_names, use_scanpy=True)
        if sub["value"].notna().any() and ((sub["metric"] == "r2_pearson_mean") & (sub["gene_set"] == "all")).any():
            s.figure(pl.metric_bars(sub, target=target).figure,
                     caption="R2 of the gene means (all genes) per model, with its 95% interval")
        if preds:
            cells = combine_cells(preds, split.target_ctrl, split.target_stim)
            s.figure(pl.mean_var_scatter(cells, degs=degs[:100])[0].figure,
                     caption="Per-gene means: predicted vs real stimulated (red: real top-100 DEGs)")
            s.figure(pl.mean_var_scatter(cells, degs=degs[:100], stat="var")[0].figure,
                     caption="Per-gene variances: predicted vs real stimulated")
            s.figure(pl.pca_overlay(cells)[0].figure,
                     caption="PCA fitted on the real cells only; predicted cells projected")
            s.figure(pl.deg_violins(cells, degs[:n_violin])[0].figure, caption=f"Top {n_violin} real DEGs")
        hists = {m: h for (t, m), h in result.histories.items() if t == target and len(h.history)}
        if hists:
            s.figure(pl.training_curves(hists).figure, caption="Training objective per epoch (dotted: kept epoch)")
    return rep
