"""The metric suite of :func:`perturblab.predict.evaluate` on one sample of cells, and the definition of
every metric name it reports.

Representation: dense float64 arrays of **log-normalised** expression (cells x genes) for the predicted
(``P``), real stimulated (``S``) and real control (``C``) cells of one target. What stays fixed across the
resamples of one evaluation (the PCA, the gene sets, the DEG weights, the references) is held in a
:class:`SuiteContext` computed once on the full data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import de as DE
from . import metrics as M
from . import metrics_de as MD

__all__ = ["METRIC_DEFINITIONS", "SuiteContext", "compute_suite", "definition", "higher_is_better", "metric_bounds",
           "wilcoxon_order"]

#: Formula and tool behind each metric name (also a column of :func:`evaluate`'s table). Names of
#: cell-eval's metrics are cell-eval's (``mse_mean`` is cell-eval's ``mse``; it keeps its older name).
METRIC_DEFINITIONS = {
    "r2_pearson_mean": "r(mean P, mean S)^2 over genes (scGen, pertpy, scPRAM)",
    "r2_score_mean": "1 - SS_res/SS_tot of mean P vs mean S, S as truth (ECCB tutorial)",
    "r2_pearson_var": "r(var P, var S)^2 over genes (scGen variance plot)",
    "r2_score_var": "1 - SS_res/SS_tot of var P vs var S",
    "mse_mean": "mean_g (mean P - mean S)^2 (cell-eval 'mse', tutorial)",
    "mae": "mean_g |mean P - mean S| (cell-eval 'mae')",
    "mse_delta": "mean_g ((mean P - mean C) - (mean S - mean C))^2 (cell-eval 'mse_delta')",
    "mae_delta": "mean_g |(mean P - mean C) - (mean S - mean C)| (cell-eval 'mae_delta')",
    "pearson_delta": "r(mean P - mean C, mean S - mean C) (cell-eval; on the t-test top DEGs: scPerturBench's "
                     "PCC-delta)",
    "pearson_delta_perturbed": "r(mean P - ref, mean S - ref), ref = mean of the training perturbed centroids "
                               "(Systema)",
    "weighted_mse": "sum_g w_g (mean P - mean S)^2, w = squared min-max |t| DEG weights summing to 1 "
                    "(Mejia et al. 2025)",
    "weighted_r2_delta": "weighted R2 of mean P - mean C against mean S - mean C, DEG weights (Mejia et al. 2025)",
    "weighted_r2_delta_perturbed": "weighted R2 of deltas from Systema's perturbed centroid, DEG weights "
                                   "(Mejia et al. 2025's reference)",
    "wasserstein": "mean over genes of 1-D Wasserstein-1(P_g, S_g) (scPRAM)",
    "edistance": "2 mean D_PS - mean D_PP - mean D_SS, Euclidean, PCA fitted on real cells (pertpy)",
    "edistance_sq": "as edistance with squared Euclidean distances (scPerturb)",
    "mmd_linear": "||mean P - mean S||^2 in PCA space (pertpy default MMD)",
    "mmd_rbf": "MMD with exp(-||x-y||^2) kernel in PCA space (pertpy kernel='rbf', gamma 1)",
    "kde_distance": "L1 between Gaussian KDEs of per-gene (mean, var) points on a 50x50 grid (ECCB tutorial)",
    "deg_jaccard": "Jaccard of top-k DEG sets of P vs C and S vs C (ECCB tutorial)",
    "deg_overlap_at_k": "|top_k(P vs C) & top_k(S vs C)| / k of score-ranked genes (no significance filter)",
    "direction_match": "share of the real top-k DEGs whose predicted change has the real sign",
    "overlap_at": "cell-eval overlap_at_N: |top_k real & top_k pred| / k, pdex DEGs (Wilcoxon, BH FDR < 0.05) "
                  "sorted by |log2FC|, k = min(N or #real DEGs, #real DEGs)",
    "precision_at": "cell-eval precision_at_N: as overlap_at_N with k = min(N or #pred DEGs, #pred DEGs)",
    "de_direction_match": "cell-eval: share of real DEGs whose predicted log2FC has the real sign",
    "de_spearman_lfc_sig": "cell-eval: Spearman r of real and predicted log2FC over the real DEGs",
    "de_sig_genes_recall": "cell-eval: |real DEGs & predicted DEGs| / |real DEGs|",
    "de_nsig_counts_real": "cell-eval de_nsig_counts 'real': number of real DEGs (FDR < 0.05)",
    "de_nsig_counts_pred": "cell-eval de_nsig_counts 'pred': number of predicted DEGs (FDR < 0.05)",
    "pr_auc": "cell-eval: average precision of -log10 FDR_pred for the labels real FDR < 0.05",
    "roc_auc": "cell-eval: ROC AUC of -log10 FDR_pred for the labels real FDR < 0.05",
}


def definition(metric: str) -> str:
    """The definition of a metric name of :func:`evaluate` (``overlap_at_100``, ``deg_jaccard[wilcoxon]``...)."""
    base = metric.split("[")[0]
    if base in METRIC_DEFINITIONS:
        return METRIC_DEFINITIONS[base]
    for prefix in ("overlap_at", "precision_at"):
        if base.startswith(prefix + "_"):
            return METRIC_DEFINITIONS[prefix]
    raise KeyError(f"no definition for metric {metric!r}")


_UNIT = ("r2_pearson", "deg_jaccard", "deg_overlap_at_k", "direction_match", "overlap_at", "precision_at",
         "de_direction_match", "de_sig_genes_recall", "pr_auc", "roc_auc", "discrimination_score",
         "centroid_accuracy", "perfect_discrimination")
_CORRELATION = ("pearson_delta", "de_spearman_lfc_sig", "de_spearman_sig")
_NON_NEGATIVE = ("mse", "mae", "weighted_mse", "wasserstein", "edistance_sq", "mmd", "kde_distance",
                 "de_nsig_counts")
_AT_MOST_ONE = ("r2_score", "weighted_r2_delta")


_LOWER_IS_BETTER = ("mse", "mae", "weighted_mse", "wasserstein", "edistance", "mmd", "kde_distance")


def higher_is_better(metric: str) -> bool | None:
    """The better direction of a metric name: True for scores (R2, correlations, overlaps, AUCs, discrimination
    scores), False for errors and distances (MSE, MAE, weighted MSE, Wasserstein, E-distance, MMD, KDE distance),
    None for the DEG counts ``de_nsig_counts_*`` (no better direction: left out of rankings, tests and
    calibration). The one direction rule of every table, ranking and report."""
    if metric.startswith("de_nsig_counts"):
        return None
    return not metric.split("[")[0].startswith(_LOWER_IS_BETTER)


def metric_bounds(metric: str) -> tuple[float, float]:
    """The range a metric's value can take (its interval is clipped to it): [0, 1] for shares, squared
    correlations and AUCs, [-1, 1] for correlations, [0, inf) for errors and distances, (-inf, 1] for R2
    scores; (-inf, inf) otherwise (the E-distance estimator can be slightly negative)."""
    base = metric.split("[")[0]
    if base.startswith(_CORRELATION):
        return -1.0, 1.0
    if base.startswith(_UNIT):
        return 0.0, 1.0
    if base.startswith(_AT_MOST_ONE):
        return -np.inf, 1.0
    if base.startswith(_NON_NEGATIVE):
        return 0.0, np.inf
    return -np.inf, np.inf


@dataclass
class SuiteContext:
    """What one evaluation keeps fixed across its resamples (computed on the full data).

    Attributes
    ----------
    pca
        PCA fitted on the real cells (E-distance, MMD space).
    degs
        Indices of the real top ``n_degs`` DEGs (Wilcoxon score order).
    n_degs, ks
        DEG-set size and the ``k`` of ``deg_overlap_at_k``.
    ttest_degs
        scPerturBench's top DEGs (Welch t, ``|score|``).
    weights, weight_label
        Mejia et al.'s DEG weights and how they were computed (``"vsrest"`` / ``"vscontrol"``).
    reference
        Systema's perturbed centroid, or None.
    de_ns, fdr
        ``N`` of cell-eval's overlap/precision metrics (None = number of DEGs) and the FDR threshold.
    """

    pca: Any
    degs: np.ndarray
    n_degs: int
    ks: tuple
    ttest_degs: np.ndarray
    weights: np.ndarray
    weight_label: str
    reference: np.ndarray | None = None
    de_ns: tuple = (50, 100, 200, None)
    fdr: float = 0.05
    extra: dict = field(default_factory=dict)


def wilcoxon_order(stats) -> np.ndarray:
    """Genes by decreasing Wilcoxon z (no tie correction, scanpy's score) from :func:`de.rank_sum_stats`."""
    R1, _, n1, n2 = stats
    z = (R1 - n1 * (n1 + n2 + 1) / 2.0) / np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
    return np.argsort(-z, kind="stable")


def _mean_diff_order(X, C) -> np.ndarray:
    return np.argsort(-np.abs(X.mean(0) - C.mean(0)), kind="stable")


def compute_suite(P, S, C, ctx: SuiteContext, order_pred: dict | None = None, order_real: dict | None = None,
                  ids_p=None, ids_s=None) -> dict:
    """Every metric of one sample; returns ``{(metric, gene_set): value}``.

    ``order_pred`` / ``order_real`` may carry precomputed DEG orderings (``{"wilcoxon": ..., "mean_diff": ...}``,
    e.g. scanpy's on the full data); missing ones are computed here. ``ids_p`` / ``ids_s`` identify the
    original cell of each row of a resample (see :func:`metrics.edistance`).
    """
    out: dict = {}
    mp, ms, mc = P.mean(0), S.mean(0), C.mean(0)
    vp, vs = P.var(0), S.var(0)
    w = M.wasserstein_per_gene(P, S)
    n_degs = ctx.n_degs
    for gset, idx in (("all", slice(None)), (f"top{n_degs}_degs", ctx.degs)):
        out[("r2_pearson_mean", gset)] = M.r2_pearson(mp[idx], ms[idx])
        out[("r2_score_mean", gset)] = M.r2_score(ms[idx], mp[idx])
        out[("r2_pearson_var", gset)] = M.r2_pearson(vp[idx], vs[idx])
        out[("r2_score_var", gset)] = M.r2_score(vs[idx], vp[idx])
        out[("mse_mean", gset)] = M.mse(ms[idx], mp[idx])
        out[("pearson_delta", gset)] = M.pearson_delta(mp[idx], ms[idx], mc[idx])
        out[("wasserstein", gset)] = float(w[idx].mean())
        if ctx.reference is not None:
            out[("pearson_delta_perturbed", gset)] = M.pearson_delta_reference(mp[idx], ms[idx], ctx.reference[idx])
    out[("mae", "all")] = M.mae(ms, mp)
    out[("mse_delta", "all")] = M.mse_delta(mp, ms, mc)
    out[("mae_delta", "all")] = M.mae_delta(mp, ms, mc)
    out[("pearson_delta", f"top{len(ctx.ttest_degs)}_degs_ttest")] = M.pearson_delta(
        mp[ctx.ttest_degs], ms[ctx.ttest_degs], mc[ctx.ttest_degs])
    wset = f"deg_weights[{ctx.weight_label}]"
    out[("weighted_mse", wset)] = M.weighted_mse(ms, mp, ctx.weights)
    out[("weighted_r2_delta", wset)] = M.weighted_r2_delta(mp, ms, mc, ctx.weights)
    if ctx.reference is not None:
        out[("weighted_r2_delta_perturbed", wset)] = M.weighted_r2_delta(mp, ms, ctx.reference, ctx.weights)
    zp, zs = ctx.pca.transform(P), ctx.pca.transform(S)
    out[("edistance", "pca")] = M.edistance(zp, zs, ids_x=ids_p, ids_y=ids_s)
    out[("edistance_sq", "pca")] = M.edistance(zp, zs, squared=True, ids_x=ids_p, ids_y=ids_s)
    out[("mmd_linear", "pca")] = M.mmd(zp, zs, "linear")
    out[("mmd_rbf", "pca")] = M.mmd(zp, zs, "rbf", gamma=1.0, ids_x=ids_p, ids_y=ids_s)
    out[("kde_distance", "all")] = M.kde_distance(np.c_[mp, vp], np.c_[ms, vs])

    stats_p, stats_s = DE.rank_sum_stats(P, C), DE.rank_sum_stats(S, C)
    order_pred, order_real = dict(order_pred or {}), dict(order_real or {})
    order_pred.setdefault("wilcoxon", wilcoxon_order(stats_p))
    order_real.setdefault("wilcoxon", wilcoxon_order(stats_s))
    order_pred.setdefault("mean_diff", _mean_diff_order(P, C))
    order_real.setdefault("mean_diff", _mean_diff_order(S, C))
    for method in ("wilcoxon", "mean_diff"):
        rp, rs = order_pred[method], order_real[method]
        out[(f"deg_jaccard[{method}]", f"top{n_degs}_degs")] = M.jaccard(rp[:n_degs], rs[:n_degs])
        for k in ctx.ks:
            out[(f"deg_overlap_at_k[{method}]", f"top{k}_degs")] = M.overlap_at_k(rp, rs, k)
        out[(f"direction_match[{method}]", f"top{n_degs}_degs")] = M.direction_match(mp, ms, mc, rs[:n_degs])

    real = DE.differential_expression(S, C, stats=stats_s)
    pred = DE.differential_expression(P, C, stats=stats_p)
    dset = f"pdex_fdr{ctx.fdr:g}"
    for n in ctx.de_ns:
        label = "N" if n is None else str(n)
        out[(f"overlap_at_{label}", dset)] = MD.overlap_at_n(real, pred, n, ctx.fdr)
        out[(f"precision_at_{label}", dset)] = MD.precision_at_n(real, pred, n, ctx.fdr)
    out[("de_direction_match", dset)] = MD.de_direction_match(real, pred, ctx.fdr)
    out[("de_spearman_lfc_sig", dset)] = MD.de_spearman_lfc_sig(real, pred, ctx.fdr)
    out[("de_sig_genes_recall", dset)] = MD.de_sig_genes_recall(real, pred, ctx.fdr)
    n_real, n_pred = MD.de_nsig_counts(real, pred, ctx.fdr)
    out[("de_nsig_counts_real", dset)] = float(n_real)
    out[("de_nsig_counts_pred", dset)] = float(n_pred)
    out[("pr_auc", dset)] = MD.de_pr_auc(real, pred, ctx.fdr)
    out[("roc_auc", dset)] = MD.de_roc_auc(real, pred, ctx.fdr)
    return out
