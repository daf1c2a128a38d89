"""Plots of the interpretability analyses (matplotlib; every function takes the analysis' table, draws on ``ax``
or a new figure, and returns the :class:`matplotlib.axes.Axes`).

Examples
--------
>>> from perturblab.interpret import pl
>>> ax = pl.layer_profiles(recovery)  # doctest: +SKIP
>>> ax.figure.savefig("layers.png")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError
from ._types import records

__all__ = ["ablation", "balance", "baseline_vs_edge", "coexpression_map", "cssi", "cssi_scan", "decomposition",
           "in_silico", "layer_profiles", "per_tf_forest", "scaling", "sensitivity_heatmap", "split_designs"]

_KIND_COLOURS = {"attention": "tab:blue", "correlation": "tab:orange", "baseline": "tab:green", "value": "tab:purple",
                 "embedding": "tab:brown", "sae": "tab:pink", "in-silico": "tab:red"}


def _ax(ax, size=(6.0, 3.6)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def _need(df: pd.DataFrame, cols, what: str) -> None:
    missing = sorted(set(cols) - set(df.columns))
    if missing:
        raise MissingKeyError(f"{what} table lacks column(s) {missing}")
    if df.empty:
        raise InputError(f"{what} table is empty: nothing to plot")


def layer_profiles(recovery: pd.DataFrame, metric: str = "auroc", head: str = "mean", ax=None):
    """Reference recovery per layer (one line per reference; dotted: the same metric of ``|Spearman|``).

    ``recovery``: :func:`~perturblab.interpret.references.reference_recovery` over attention layers.
    """
    from matplotlib.ticker import MaxNLocator

    _need(recovery, {"kind", "layer", "head", "reference", metric}, "recovery")
    ax = _ax(ax)
    att = recovery[recovery["kind"].eq("attention") & recovery["head"].eq(head)].dropna(subset=[metric])
    for i, (ref, g) in enumerate(att.groupby("reference", sort=True)):
        g = g.sort_values("layer")
        colour = f"C{i}"
        ax.plot(g["layer"].astype(int), g[metric], marker="o", color=colour, label=str(ref))
        c = recovery[recovery["kind"].eq("correlation") & recovery["reference"].eq(ref)][metric].dropna()
        if len(c):
            ax.axhline(float(c.iloc[0]), color=colour, ls=":", lw=1)
    if metric == "auroc":
        ax.axhline(0.5, color="black", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel(metric.upper() if metric == "auroc" else metric)
    ax.set_title(f"Reference recovery per layer (attention, {head} over heads; dotted: |Spearman|)")
    ax.legend(fontsize=7)
    return ax


def baseline_vs_edge(per_pert: pd.DataFrame, metric: str = "auroc", ax=None):
    """Per-perturbation AUROC of edge scores vs gene-level baselines (bars: mean; dots: knock-outs)."""
    _need(per_pert, {"score", "kind", metric}, "per-perturbation")
    d = per_pert.dropna(subset=[metric])
    order = d.groupby("score")[metric].mean().sort_values()
    ax = _ax(ax, (6.5, 0.35 * len(order) + 1.5))
    kind = d.drop_duplicates("score").set_index("score")["kind"]
    for i, s in enumerate(order.index):
        v = d.loc[d["score"] == s, metric].to_numpy()
        ax.barh(i, order[s], color=_KIND_COLOURS.get(kind[s], "grey"), alpha=0.6)
        ax.scatter(v, np.full(v.size, i), s=10, color="black", zorder=3)
    ax.set_yticks(range(len(order)), order.index, fontsize=7)
    ax.axvline(0.5, color="black", lw=0.6)
    ax.set_xlabel(f"{metric.upper()} of knock-out targets")
    ax.set_title("Edge scores vs gene-level baselines")
    return ax


def ablation(table: pd.DataFrame, ax=None):
    """Ablation dose-response: degradation of the downstream outcome after zeroing the top, bottom or random k heads
    (points: mean over seeds; bars: range; positive = worse).

    ``table``: the ``ablation`` table of :func:`~perturblab.interpret.ablation.ablation_experiment` (columns
    ``intervention``, ``k``, ``degradation``).
    """
    _need(table, {"intervention", "k", "degradation"}, "ablation")
    d = table[table["intervention"].isin(["top", "bottom", "random"])].dropna(subset=["degradation"])
    _need(d, {"k"}, "ablation (top / bottom / random rows with a finite degradation)")
    ax = _ax(ax)
    for name, g in d.groupby("intervention"):
        m = g.groupby("k")["degradation"].agg(["mean", "min", "max"]).sort_index()
        ax.errorbar(m.index, m["mean"], yerr=[m["mean"] - m["min"], m["max"] - m["mean"]], marker="o", capsize=3,
                    label=str(name))
    ax.axhline(0.0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("heads ablated (k)")
    ax.set_ylabel("degradation of the downstream outcome")
    ax.set_title("Ablation dose-response (positive = worse)")
    ax.legend(fontsize=7)
    return ax


def cssi(table: pd.DataFrame, metric: str = "auroc", ax=None):
    """CSSI against pooled edge scores: ``metric`` per reference (bars: scores, pooled and cell-state stratified).

    ``table``: the ``cssi_recovery`` table of the pipeline (columns ``reference``, ``score``, ``metric``).
    """
    _need(table, {"reference", "score", metric}, "CSSI")
    d = table.dropna(subset=[metric])
    _need(d, {metric}, f"CSSI (rows with a finite {metric})")
    wide = d.pivot_table(index="reference", columns="score", values=metric)
    ax = _ax(ax, (7.0, 3.8))
    x = np.arange(len(wide))
    w = 0.8 / max(len(wide.columns), 1)
    for i, c in enumerate(wide.columns):
        ax.bar(x + i * w, wide[c], width=w, label=str(c))
    ax.set_xticks(x + 0.4 - w / 2, wide.index, fontsize=8)
    if metric == "auroc":
        ax.axhline(0.5, color="black", lw=0.6)
    ax.set_ylabel(metric.upper() if metric == "auroc" else metric)
    ax.set_title("CSSI vs pooled edge scores")
    ax.legend(fontsize=6, ncol=2)
    return ax


def sensitivity_heatmap(scan: pd.DataFrame, statistic: str = "delta_vs_best_baseline", score: str | None = None,
                        ax=None):
    """Heatmap of a statistic of :func:`~perturblab.interpret.sensitivity.sensitivity_scan` for one score
    (default: the tested one): rows = (control cells, genes), columns = ``|log2FC|`` threshold; a star marks the
    configurations where the score beats every baseline."""
    _need(scan, {"lfc_threshold", "n_cells_used", "n_genes_used", "score", "tested", statistic}, "sensitivity")
    d = scan[scan["score"] == score] if score is not None else scan[scan["tested"].astype(bool)]
    if d.empty:
        raise InputError(f"no rows for score {score!r} in the sensitivity table")
    wide = d.pivot_table(index=["n_cells_used", "n_genes_used"], columns="lfc_threshold", values=statistic)
    beats = (d.pivot_table(index=["n_cells_used", "n_genes_used"], columns="lfc_threshold",
                           values="beats_all_baselines", aggfunc="first") if "beats_all_baselines" in d else None)
    ax = _ax(ax, (5.0, 0.45 * len(wide) + 1.6))
    v = wide.to_numpy(float)
    lim = np.nanmax(np.abs(v)) if np.isfinite(v).any() else 1.0
    im = ax.imshow(v, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    # NaN: not computed; aligned on the statistic's grid (pivot_table drops all-NaN rows and columns)
    beats_v = beats.reindex(index=wide.index, columns=wide.columns).to_numpy(dtype=float) if beats is not None else None
    for (i, j), x in np.ndenumerate(v):
        b = beats_v[i, j] if beats_v is not None else np.nan
        star = "*" if np.isfinite(b) and bool(b) else ""
        ax.text(j, i, f"{x:+.3f}{star}" if np.isfinite(x) else "n/a", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(wide.shape[1]), [f"|LFC| > {c:g}" for c in wide.columns], fontsize=7)
    ax.set_yticks(range(wide.shape[0]), [f"{a} cells, {b} genes" for a, b in wide.index.to_list()], fontsize=7)
    ax.figure.colorbar(im, ax=ax, label=statistic)
    ax.set_title(f"Sensitivity of {d['score'].iloc[0]} (* beats every baseline)")
    return ax


def cssi_scan(scan: pd.DataFrame, metric: str = "auroc", ax=None):
    """:func:`~perturblab.interpret.cssi_scan.strata_scan`: CSSI recovery vs number of strata, real vs nulls."""
    _need(scan, {"k", "strata", "score", metric}, "strata scan")
    ax = _ax(ax)
    m = scan.groupby(["strata", "score", "k"])[metric].mean()
    styles = {"real": "-", "shuffled": "--", "random": ":"}
    for key, g in m.groupby(level=[0, 1]):
        strata, score = (str(x) for x in cast(tuple, key))
        if score == "pooled":
            continue
        g = g.droplevel([0, 1])
        ax.plot(g.index, g.to_numpy(), ls=styles.get(strata, "-"), marker="o",
                color="tab:blue" if score == "CSSI-max" else "tab:orange", label=f"{score}, {strata} strata")
    pooled = scan.loc[scan["score"] == "pooled", metric]
    if len(pooled):
        ax.axhline(float(pooled.mean()), color="black", lw=0.8, label="pooled")
    ax.set_xlabel("number of strata K")
    ax.set_ylabel(metric)
    ev = f"{scan['evidence'].iloc[0]}, {scan['data'].iloc[0]} data" if {"evidence", "data"} <= set(scan) else ""
    ax.set_title(f"CSSI vs number of strata ({ev})")
    ax.legend(fontsize=6, ncol=2)
    return ax


def scaling(curve: pd.DataFrame, metrics=("auroc", "topk_f1"), ax=None):
    """:func:`~perturblab.interpret.cssi_scan.scaling_curve`: metrics vs number of cells (mean +- SD)."""
    _need(curve, {"n_cells", *metrics}, "scaling")
    ax = _ax(ax)
    for m in metrics:
        g = curve.groupby("n_cells")[m].agg(["mean", "std"])
        ax.errorbar(g.index.to_numpy(), g["mean"].to_numpy(float), yerr=g["std"].fillna(0).to_numpy(float), marker="o",
                    capsize=3, label=m)
    ax.set_xlabel("cells")
    ax.set_ylabel("metric")
    ax.set_title("Pooled edge recovery vs number of cells")
    ax.legend(fontsize=7)
    return ax


def balance(table: pd.DataFrame, threshold: float = 0.1, ax=None):
    """Love plot of :func:`~perturblab.interpret.matching.balance_table`: ``|SMD|`` before and after matching."""
    _need(table, {"covariate", "smd_before", "smd_after"}, "balance")
    ax = _ax(ax, (5.5, 0.3 * len(table) + 1.5))
    y = np.arange(len(table))
    ax.scatter(table["smd_before"].abs(), y, marker="o", facecolors="none", edgecolors="grey", label="before")
    ax.scatter(table["smd_after"].abs(), y, marker="o", color="tab:blue", label="after")
    ax.axvline(threshold, color="red", ls="--", lw=0.8)
    ax.set_yticks(y, table["covariate"], fontsize=7)
    ax.set_xlabel("|standardised mean difference|")
    ax.set_title("Covariate balance of reference edges vs matched non-edges")
    ax.legend(fontsize=7)
    return ax


def decomposition(table: pd.DataFrame, ax=None):
    """Stacked bars of :func:`~perturblab.interpret.decomposition.recovery_decomposition` (AUROC - 0.5 split into
    degree, expression and residual parts) per score."""
    _need(table, {"score", "part", "contribution"}, "decomposition")
    parts = [p for p in table["part"].unique() if p != "total"]
    wide = table[table["part"] != "total"].pivot_table(index="score", columns="part", values="contribution")[parts]
    ax = _ax(ax, (6.0, 0.4 * len(wide) + 1.5))
    left_pos = np.zeros(len(wide))
    left_neg = np.zeros(len(wide))
    for i, p in enumerate(parts):
        v = wide[p].to_numpy(float)
        left = np.where(v >= 0, left_pos, left_neg)
        ax.barh(range(len(wide)), v, left=left, color=f"C{i}", label=p)
        left_pos += np.where(v >= 0, v, 0)
        left_neg += np.where(v < 0, v, 0)
    ax.set_yticks(range(len(wide)), wide.index, fontsize=7)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("AUROC - 0.5")
    ax.set_title("Reference recovery: degree, expression and residual parts")
    ax.legend(fontsize=7)
    return ax


def per_tf_forest(table: pd.DataFrame, score: str | None = None, ax=None):
    """Forest plot of :func:`~perturblab.interpret.decomposition.per_tf_recovery` (AUROC and CI per TF)."""
    _need(table, {"score", "tf", "auroc", "ci_low", "ci_high"}, "per-TF")
    d = table[table["score"] == (score or table["score"].iloc[0])].sort_values("auroc")
    ax = _ax(ax, (5.0, 0.25 * len(d) + 1.5))
    y = np.arange(len(d))
    err = np.vstack([(d["auroc"] - d["ci_low"]).to_numpy(float), (d["ci_high"] - d["auroc"]).to_numpy(float)])
    ax.errorbar(d["auroc"].to_numpy(float), y, xerr=err, fmt="o", ms=3, capsize=2)
    ax.axvline(0.5, color="black", lw=0.6)
    ax.set_yticks(y, d["tf"], fontsize=6)
    ax.set_xlabel("AUROC of the TF's reference targets (95% CI)")
    ax.set_title(f"Per-TF recovery: {d['score'].iloc[0]}")
    return ax


def split_designs(table: pd.DataFrame, ax=None):
    """:func:`~perturblab.interpret.splits.split_design`: delta AUROC (with CI) over gene features per split,
    model and edge score."""
    _need(table, {"model", "split", "features", "delta_auroc", "delta_auroc_ci_low", "delta_auroc_ci_high"}, "split")
    d = table[table["features"] != "gene"].reset_index(drop=True)
    ax = _ax(ax, (6.0, 0.3 * len(d) + 1.5))
    y = np.arange(len(d))
    err = np.vstack([(d["delta_auroc"] - d["delta_auroc_ci_low"]).to_numpy(float),
                     (d["delta_auroc_ci_high"] - d["delta_auroc"]).to_numpy(float)])
    ax.errorbar(d["delta_auroc"].to_numpy(float), y, xerr=np.abs(err), fmt="o", ms=3, capsize=2)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(y, [f"{r.features} | {r.model} | {r.split}" for r in records(d)], fontsize=6)
    ax.set_xlabel("delta AUROC over gene features (95% CI)")
    ax.set_title("Incremental value under each split design")
    return ax


def coexpression_map(table: pd.DataFrame, value: str = "spearman_rho", ax=None):
    """Heatmap of :func:`~perturblab.interpret.coexpression.attention_coexpression` per layer x head."""
    _need(table, {"layer", "head", value}, "co-expression")
    d = table[table["head"].astype(str).str.isdigit()]
    if d.empty:
        raise InputError("the co-expression table has no per-head rows; pass per_head=True attention scores")
    wide = d.assign(head=d["head"].astype(int)).pivot_table(index="layer", columns="head", values=value)
    ax = _ax(ax, (0.5 * wide.shape[1] + 2.5, 0.4 * wide.shape[0] + 1.5))
    im = ax.imshow(wide.to_numpy(float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(wide.shape[1]), wide.columns)
    ax.set_yticks(range(wide.shape[0]), wide.index)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.figure.colorbar(im, ax=ax, label=value)
    ax.set_title("Attention vs co-expression per head")
    return ax


def in_silico(table: pd.DataFrame, metric: str = "auroc", ax=None):
    """:func:`~perturblab.interpret.in_silico.score_in_silico`: in-silico scores vs gene-level baselines."""
    _need(table, {"score", "kind", "perturbation", metric}, "in-silico")
    return baseline_vs_edge(table, metric=metric, ax=ax)
