"""Evaluation of predicted cells against real stimulated cells: a tidy metric table with CIs.

Input representation everywhere: **log-normalised** expression (``normalize_total`` +
``log1p``), cells x genes, the same genes in the same order in all three AnnData.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_finite, to_dense, warn_representation
from . import metrics as M

__all__ = ["rank_degs", "evaluate", "METRIC_DEFINITIONS"]

#: Formula and tool behind each metric name of :func:`evaluate` (also a column of its table).
METRIC_DEFINITIONS = {
    "r2_pearson_mean": "r(mean P, mean S)^2 over genes (scGen, pertpy, scPRAM)",
    "r2_score_mean": "1 - SS_res/SS_tot of mean P vs mean S, S as truth (ECCB tutorial)",
    "r2_pearson_var": "r(var P, var S)^2 over genes (scGen variance plot)",
    "r2_score_var": "1 - SS_res/SS_tot of var P vs var S",
    "mse_mean": "mean_g (mean P - mean S)^2 (cell-eval, tutorial)",
    "pearson_delta": "r(mean P - mean C, mean S - mean C) (cell-eval)",
    "wasserstein": "mean over genes of 1-D Wasserstein-1(P_g, S_g) (scPRAM)",
    "edistance": "2 mean D_PS - mean D_PP - mean D_SS, Euclidean, PCA fitted on real cells (pertpy)",
    "edistance_sq": "as edistance with squared Euclidean distances (scPerturb)",
    "mmd_linear": "||mean P - mean S||^2 in PCA space (pertpy default MMD)",
    "mmd_rbf": "MMD with exp(-||x-y||^2) kernel in PCA space (pertpy kernel='rbf', gamma 1)",
    "kde_distance": "L1 between Gaussian KDEs of per-gene (mean, var) points on a 50x50 grid (ECCB tutorial)",
    "deg_jaccard": "Jaccard of top-k DEG sets of P vs C and S vs C (ECCB tutorial)",
    "deg_overlap_at_k": "|top_k(P vs C) & top_k(S vs C)| / k (cell-eval overlap_at_k)",
    "direction_match": "share of the real top-k DEGs whose predicted change has the real sign (cell-eval)",
}

_GENE_SET_METRICS = ("r2_pearson_mean", "r2_score_mean", "r2_pearson_var", "r2_score_var", "mse_mean",
                     "pearson_delta", "wasserstein")


def rank_degs(X_group, X_ref, var_names=None, method: str = "wilcoxon", use_scanpy: bool = False) -> np.ndarray:
    """Rank genes as DEGs of ``X_group`` vs ``X_ref`` (log-normalised, cells x genes).

    Parameters
    ----------
    X_group, X_ref
        Dense arrays with the same genes (columns).
    var_names
        Gene names; when given, names are returned instead of column indices.
    method
        ``"wilcoxon"``: descending Wilcoxon rank-sum z-score, the order of scanpy's
        ``rank_genes_groups(method="wilcoxon")`` "first 100" (up-regulated genes first);
        ``"mean_diff"``: descending ``|mean(group) - mean(ref)|``. The second exists
        because the Wilcoxon ranking is degenerate for shift-style predictions: a
        constant added to genes that are all-zero in the controls separates them
        perfectly, so they fill the top of the list (spec pitfall).
    use_scanpy
        For ``"wilcoxon"``, call :func:`scanpy.tl.rank_genes_groups` itself instead of the
        vectorised equivalent :func:`metrics.wilcoxon_scores` (same scores; tested).

    Returns
    -------
    numpy.ndarray
        All genes, best-ranked first (indices, or names when ``var_names`` is given).
    """
    X_group, X_ref = np.asarray(X_group), np.asarray(X_ref)
    if method == "wilcoxon":
        if use_scanpy:
            order = _scanpy_wilcoxon_order(X_group, X_ref)
        else:
            order = np.argsort(-M.wilcoxon_scores(X_group, X_ref), kind="stable")
    elif method == "mean_diff":
        order = np.argsort(-np.abs(X_group.mean(0) - X_ref.mean(0)), kind="stable")
    else:
        raise ValueError(f"unknown DEG ranking {method!r}; use 'wilcoxon' or 'mean_diff'")
    return np.asarray(var_names)[order] if var_names is not None else order


def _scanpy_wilcoxon_order(X_group, X_ref) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    a = ad.AnnData(np.vstack([X_group, X_ref]).astype(np.float32))
    a.var_names = [str(i) for i in range(a.n_vars)]
    a.obs["group"] = pd.Categorical(["group"] * len(X_group) + ["ref"] * len(X_ref))
    sc.tl.rank_genes_groups(a, "group", groups=["group"], reference="ref", method="wilcoxon",
                            n_genes=a.n_vars, key_added="rgg")
    return a.uns["rgg"]["names"]["group"].astype(int)


def _metrics_once(P, S, C, pca, degs_real, n_degs, ks, rank_pred, rank_real, ids_p=None, ids_s=None) -> dict:
    """All metrics for one (re)sample; returns {(metric, gene_set): value}."""
    out: dict = {}
    mp, ms, mc = P.mean(0), S.mean(0), C.mean(0)
    vp, vs = P.var(0), S.var(0)
    w = M.wasserstein_per_gene(P, S)
    for gset, idx in (("all", slice(None)), (f"top{n_degs}_degs", degs_real)):
        out[("r2_pearson_mean", gset)] = M.r2_pearson(mp[idx], ms[idx])
        out[("r2_score_mean", gset)] = M.r2_score(ms[idx], mp[idx])
        out[("r2_pearson_var", gset)] = M.r2_pearson(vp[idx], vs[idx])
        out[("r2_score_var", gset)] = M.r2_score(vs[idx], vp[idx])
        out[("mse_mean", gset)] = M.mse(ms[idx], mp[idx])
        out[("pearson_delta", gset)] = M.pearson_delta(mp[idx], ms[idx], mc[idx])
        out[("wasserstein", gset)] = float(w[idx].mean())
    zp, zs = pca.transform(P), pca.transform(S)
    out[("edistance", "pca")] = M.edistance(zp, zs, ids_x=ids_p, ids_y=ids_s)
    out[("edistance_sq", "pca")] = M.edistance(zp, zs, squared=True, ids_x=ids_p, ids_y=ids_s)
    out[("mmd_linear", "pca")] = M.mmd(zp, zs, "linear")
    out[("mmd_rbf", "pca")] = M.mmd(zp, zs, "rbf", gamma=1.0, ids_x=ids_p, ids_y=ids_s)
    out[("kde_distance", "all")] = M.kde_distance(np.c_[mp, vp], np.c_[ms, vs])
    for method in ("wilcoxon", "mean_diff"):
        rp, rs = rank_pred(method), rank_real(method)
        out[(f"deg_jaccard[{method}]", f"top{n_degs}_degs")] = M.jaccard(rp[:n_degs], rs[:n_degs])
        for k in ks:
            out[(f"deg_overlap_at_k[{method}]", f"top{k}_degs")] = M.overlap_at_k(rp, rs, k)
        out[(f"direction_match[{method}]", f"top{n_degs}_degs")] = M.direction_match(mp, ms, mc, rs[:n_degs])
    return out


def _to_dense_checked(adata, name: str, layer: str | None) -> np.ndarray:
    X = adata.layers[layer] if layer else adata.X
    check_finite(X, name)
    warn_representation(X, "log1p", name)
    return to_dense(X, np.float64)


def evaluate(pred, real_stim, ctrl, n_degs: int = 100, ks=(50, 100, 200), n_pcs: int = 30,
             n_bootstrap: int = 100, resample: str = "bootstrap", fraction: float = 0.8,
             ci: float = 0.95, layer: str | None = None, random_state: int = 0) -> pd.DataFrame:
    """Compare predicted to real stimulated cells of one cell type; one row per metric.

    Parameters
    ----------
    pred, real_stim, ctrl
        AnnData of predicted cells, real stimulated cells and real control cells of the
        held-out cell type; log-normalised (cells x genes), identical ``var_names``.
    n_degs
        Size of the real DEG set (scanpy ``rank_genes_groups`` Wilcoxon, real stimulated
        vs control, first ``n_degs`` genes; scGen's "top-100 DEGs") used for the
        gene-set metrics and for the Jaccard.
    ks
        Values of ``k`` for :func:`metrics.overlap_at_k`.
    n_pcs
        Principal components of the space of the E-distance and MMD; the PCA is fitted
        on the real cells only (stimulated + control), then applied to the prediction.
    n_bootstrap
        Number of resamples for the confidence intervals (0: no intervals).
    resample
        ``"bootstrap"`` (default): each group's cells are resampled with replacement
        (percentile bootstrap). ``"subsample"``: draws of ``fraction`` of the cells without
        replacement, as scPRAM and the ECCB tutorial (100 draws of 80%). Differs from
        those anchors by default: the spread of 80% subsamples is about half the sampling
        standard error, so their intervals are too narrow.
    ci
        Central coverage of the percentile interval.
    layer
        Layer to read instead of ``X``.
    random_state
        Seed of the resampling; the same seed gives identical numbers.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, gene_set, value, ci_low, ci_high, n_bootstrap, definition``.
        The real DEG set and DEG rankings are recomputed inside each resample
        (vectorised Wilcoxon, same scores as scanpy); gene-set metrics keep the DEG set of
        the full data. In bootstrap resamples, pairs of copies of one cell are left out of the
        within-group terms of the E-distance and the RBF MMD (duplicates would bias them).

    Raises
    ------
    ValueError
        If genes differ between the inputs, a group has fewer than 2 cells, values are
        NaN/inf, or ``resample`` is unknown.
    """
    from sklearn.decomposition import PCA

    for name, a in (("real_stim", real_stim), ("ctrl", ctrl)):
        if list(a.var_names) != list(pred.var_names):
            raise ValueError(f"pred and {name} have different genes (var_names); evaluate on the same genes in the "
                             "same order")
    if resample not in ("bootstrap", "subsample"):
        raise ValueError(f"unknown resample {resample!r}; use 'bootstrap' or 'subsample'")
    P = _to_dense_checked(pred, "pred", layer)
    S = _to_dense_checked(real_stim, "real_stim", layer)
    C = _to_dense_checked(ctrl, "ctrl", layer)
    for name, X in (("pred", P), ("real_stim", S), ("ctrl", C)):
        if X.shape[0] < 2:
            raise ValueError(f"{name} has {X.shape[0]} cells; at least 2 are needed")
    n_pcs = min(n_pcs, S.shape[0] + C.shape[0] - 1, S.shape[1])
    pca = PCA(n_components=n_pcs, random_state=random_state).fit(np.vstack([S, C]))
    real_rank = {m: rank_degs(S, C, method=m, use_scanpy=(m == "wilcoxon")) for m in ("wilcoxon", "mean_diff")}
    degs = real_rank["wilcoxon"][:n_degs]
    point = _metrics_once(P, S, C, pca, degs, n_degs, ks,
                          lambda m: rank_degs(P, C, method=m, use_scanpy=(m == "wilcoxon")), real_rank.__getitem__)

    rng = np.random.default_rng(random_state)
    draws: dict = {key: [] for key in point}

    def pick(n):
        if resample == "bootstrap":
            return rng.integers(0, n, size=n)
        return rng.choice(n, size=max(2, int(round(fraction * n))), replace=False)

    for _ in range(n_bootstrap):
        ip, is_, ic = pick(len(P)), pick(len(S)), pick(len(C))
        Pb, Sb, Cb = P[ip], S[is_], C[ic]
        rr: dict = {}
        vals = _metrics_once(Pb, Sb, Cb, pca, degs, n_degs, ks, lambda m: rank_degs(Pb, Cb, method=m),
                             lambda m: rr.setdefault(m, rank_degs(Sb, Cb, method=m)), ip, is_)
        for key, v in vals.items():
            draws[key].append(v)

    alpha = (1 - ci) / 2
    rows = []
    for (metric, gset), value in point.items():
        d = np.asarray(draws[(metric, gset)], dtype=float)
        lo, hi = (np.nanquantile(d, [alpha, 1 - alpha]) if d.size and np.isfinite(d).any() else (np.nan, np.nan))
        base = metric.split("[")[0]
        rows.append({"metric": metric, "gene_set": gset, "value": float(value), "ci_low": float(lo),
                     "ci_high": float(hi), "n_bootstrap": int(n_bootstrap), "definition": METRIC_DEFINITIONS[base]})
    return pd.DataFrame(rows)
