"""Metrics of perturbation-response prediction, each with its exact formula.

All functions take plain arrays of **log-normalised** expression (cells x genes,
``normalize_total`` + ``log1p``) or per-gene vectors, and return floats (or one
value per gene). Several tools give the same name to different formulas; every
docstring says which formula is computed and which tool uses it (spec:
``perturbation-models.md``, "Metric definitions").

Notation: ``P`` predicted cells, ``S`` real stimulated cells, ``C`` real control
cells (of the held-out cell type); ``mean(.)``/``var(.)`` are per-gene.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import gaussian_kde, rankdata

__all__ = [
    "direction_match",
    "edistance",
    "jaccard",
    "kde_distance",
    "mae",
    "mae_delta",
    "mmd",
    "mse",
    "mse_delta",
    "overlap_at_k",
    "pearson_delta",
    "pearson_delta_reference",
    "r2_pearson",
    "r2_score",
    "wasserstein_per_gene",
    "weighted_mse",
    "weighted_r2_delta",
    "wilcoxon_scores",
]


def _vec(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {x.size}")
    return x


def r2_pearson(x, y) -> float:
    """Squared Pearson correlation of two per-gene vectors: ``r(x, y)**2``.

    The "R2" of scGen's and pertpy's regression plots and of scPRAM's evaluation
    (there on per-gene means of predicted vs real stimulated cells). Symmetric in
    ``x`` and ``y``; blind to scale and offset errors. Returns NaN when either
    vector is constant.
    """
    x, y = _vec(x, "x"), _vec(y, "y")
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` with ``y_true`` as truth.

    ``SS_res = sum (y_true - y_pred)^2``, ``SS_tot = sum (y_true - mean(y_true))^2``.
    The ECCB 2025 VT-8 tutorial's "R2" (on per-gene means). Can be negative; it
    penalises offsets and scale errors that :func:`r2_pearson` ignores.
    """
    t, p = _vec(y_true, "y_true"), _vec(y_pred, "y_pred")
    ss_tot = np.sum((t - t.mean()) ** 2)
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - np.sum((t - p) ** 2) / ss_tot)


def mse(y_true, y_pred) -> float:
    """Mean over genes of ``(y_pred - y_true)^2`` (on per-gene means: cell-eval's ``mse``, tutorial).

    cell-eval 0.8.1 (``metrics/_anndata.py``): ``sklearn.metrics.mean_squared_error(mean P, mean S)``
    on all genes of the log-normalised data.
    """
    t, p = _vec(y_true, "y_true"), _vec(y_pred, "y_pred")
    return float(np.mean((p - t) ** 2))


def mae(y_true, y_pred) -> float:
    """Mean over genes of ``|y_pred - y_true|``: cell-eval's ``mae`` on per-gene means ``mean S``, ``mean P``."""
    t, p = _vec(y_true, "y_true"), _vec(y_pred, "y_pred")
    return float(np.mean(np.abs(p - t)))


def mse_delta(pred_mean, real_mean, ctrl_mean) -> float:
    """cell-eval's ``mse_delta``: ``mean_g ((mean P - mean C) - (mean S - mean C))^2``.

    With one control for both sides (perturblab passes the real control cells, as a cell-eval prediction
    file carrying the real controls does) the control cancels and this equals :func:`mse`; it differs when
    the prediction brings its own controls (cell-eval reads the controls of the prediction file).
    """
    c = _vec(ctrl_mean, "ctrl_mean")
    return mse(_vec(real_mean, "real_mean") - c, _vec(pred_mean, "pred_mean") - c)


def mae_delta(pred_mean, real_mean, ctrl_mean) -> float:
    """cell-eval's ``mae_delta``: ``mean_g |(mean P - mean C) - (mean S - mean C)|`` (see :func:`mse_delta`)."""
    c = _vec(ctrl_mean, "ctrl_mean")
    return mae(_vec(real_mean, "real_mean") - c, _vec(pred_mean, "pred_mean") - c)


def pearson_delta(pred_mean, real_mean, ctrl_mean) -> float:
    """Pearson r of the predicted and real changes, cell-eval's ``pearson_delta``.

    ``r(mean(P) - mean(C), mean(S) - mean(C))``; the reference is the control mean
    of the same cell type (Systema instead uses the mean of all perturbed centroids).
    """
    d_pred = _vec(pred_mean, "pred_mean") - _vec(ctrl_mean, "ctrl_mean")
    d_real = _vec(real_mean, "real_mean") - _vec(ctrl_mean, "ctrl_mean")
    if d_pred.std() == 0 or d_real.std() == 0:
        return float("nan")
    return float(np.corrcoef(d_pred, d_real)[0, 1])


def pearson_delta_reference(pred_mean, real_mean, reference) -> float:
    """Systema's Pearson delta against a reference other than the control.

    ``r(mean P - ref, mean S - ref)`` (mlbio-epfl/systema ``pearson_delta_reference_metrics``: the
    reference is the average of the perturbed centroids of the training data,
    ``eval_utils.average_of_perturbation_centroids``). Against that reference, predicting the average
    perturbed state scores 0 (NaN: a zero vector has no correlation), so the metric rewards only what is
    specific to the held-out target. Same formula as :func:`pearson_delta` with another reference.
    """
    return pearson_delta(pred_mean, real_mean, reference)


def _weights(weights, n: int) -> np.ndarray:
    w = _vec(weights, "weights")
    if w.size != n:
        raise ValueError(f"weights has {w.size} values for {n} genes; give one weight per gene")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return w / w.sum()


def weighted_mse(y_true, y_pred, weights) -> float:
    """DEG-weighted MSE of Mejia et al. 2025 ("Diversity by design"): ``sum_g w_g (p_g - t_g)^2 / sum w``.

    ``weights`` are per-gene DEG weights (:func:`perturblab.predict.de.deg_weights`); shiftbioscience's
    ``wmse`` normalises them to sum 1 the same way. Lower is better.
    """
    t, p = _vec(y_true, "y_true"), _vec(y_pred, "y_pred")
    return float(np.sum(_weights(weights, t.size) * (p - t) ** 2))


def weighted_r2_delta(pred_mean, real_mean, reference, weights) -> float:
    """Weighted delta R2 of Mejia et al. 2025: ``sklearn.metrics.r2_score(d_S, d_P, sample_weight=w)``.

    ``d_S = mean S - ref``, ``d_P = mean P - ref``; ``1 - sum w (d_S - d_P)^2 / sum w (d_S - wmean(d_S))^2``
    with ``wmean`` the weighted mean (the paper's reference is the mean of all perturbed cells; perturblab
    passes the control mean or Systema's perturbed centroid and names which). NaN when ``d_S`` is constant
    under the weights.
    """
    ref = _vec(reference, "reference")
    ds, dp = _vec(real_mean, "real_mean") - ref, _vec(pred_mean, "pred_mean") - ref
    w = _weights(weights, ds.size)
    ss_tot = np.sum(w * (ds - np.sum(w * ds)) ** 2)
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - np.sum(w * (ds - dp) ** 2) / ss_tot)


def _within_mean(D: np.ndarray, ids=None, diagonal: bool = False) -> float:
    """Mean of a within-group matrix over pairs i < j (or all pairs with ``diagonal``); with
    ``ids``, off-diagonal pairs of copies of the same cell (bootstrap duplicates) are left out."""
    n = D.shape[0]
    if n < 2:
        raise ValueError("distances need at least 2 cells in each group")
    keep = np.triu(np.ones((n, n), dtype=bool), k=1)
    if ids is not None:
        ids = np.asarray(ids)
        keep &= ids[:, None] != ids[None, :]
    if diagonal:
        keep |= keep.T
        keep[np.diag_indices(n)] = True
    return float(D[keep].mean())


def edistance(X, Y, squared: bool = False, ids_x=None, ids_y=None) -> float:
    """Energy distance ``2 mean D_xy - mean D_xx - mean D_yy`` between two sets of cells.

    ``D`` is the Euclidean distance (pertpy ``Distance("edistance")``, on ``X_pca``)
    or, with ``squared=True``, the squared Euclidean distance (scPerturb).
    ``D_xy`` averages over all cross pairs; ``D_xx``/``D_yy`` over the pairs
    ``i < j`` within a group (the diagonal is excluded), as in pertpy.
    Inputs are cells x dimensions (use PCA coordinates fitted on real cells only).
    ``ids_x``/``ids_y`` (optional) identify the original cell of each row of a bootstrap
    resample: pairs of copies of one cell are left out of the within-group means, which
    would otherwise be biased towards 0 by the duplicates.
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    metric = "sqeuclidean" if squared else "euclidean"
    dxy = cdist(X, Y, metric).mean()
    return float(2 * dxy - _within_mean(cdist(X, X, metric), ids_x) - _within_mean(cdist(Y, Y, metric), ids_y))


def mmd(X, Y, kernel: str = "linear", gamma: float = 1.0, ids_x=None, ids_y=None) -> float:
    """Maximum mean discrepancy (biased V-statistic) ``mean K_xx + mean K_yy - 2 mean K_xy``.

    ``kernel="linear"`` (pertpy's default): ``K = x.y``, which equals
    ``||mean(X) - mean(Y)||^2``. ``kernel="rbf"``: ``K = exp(-gamma ||x - y||^2)``
    (pertpy's ``kernel="rbf"``, gamma 1). Means include the diagonal, as in pertpy;
    ``ids_x``/``ids_y`` leave out pairs of bootstrap copies of one cell (see :func:`edistance`).
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if kernel == "linear":
        d = X.mean(0) - Y.mean(0)
        return float(d @ d)
    if kernel == "rbf":
        def k(A, B):
            return np.exp(-gamma * cdist(A, B, "sqeuclidean"))

        return float(_within_mean(k(X, X), ids_x, diagonal=True) + _within_mean(k(Y, Y), ids_y, diagonal=True)
                     - 2 * k(X, Y).mean())
    raise ValueError(f"unknown MMD kernel {kernel!r}; use 'linear' or 'rbf'")


def wasserstein_per_gene(X, Y) -> np.ndarray:
    """1-D Wasserstein-1 distance between the two cells' distributions of each gene.

    ``W1 = integral |F_X(t) - F_Y(t)| dt`` over the empirical CDFs, the same value
    as :func:`scipy.stats.wasserstein_distance` per gene (scPRAM's per-gene
    Wasserstein), computed for all genes at once. Returns one value per gene.
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y have {X.shape[1]} and {Y.shape[1]} genes; they must match")
    n, m = X.shape[0], Y.shape[0]
    allv = np.vstack([X, Y])
    order = np.argsort(allv, axis=0, kind="stable")
    vals = np.take_along_axis(allv, order, axis=0)
    from_x = order < n
    cdf_x = np.cumsum(from_x, axis=0)[:-1] / n
    cdf_y = np.cumsum(~from_x, axis=0)[:-1] / m
    return np.sum(np.abs(cdf_x - cdf_y) * np.diff(vals, axis=0), axis=0)


def kde_distance(points_pred, points_real, grid_size: int = 50) -> float:
    """L1 distance between Gaussian KDEs of per-gene (mean, variance) points (ECCB tutorial).

    Each input is genes x 2 (per-gene mean and variance of a set of cells). A
    :class:`scipy.stats.gaussian_kde` (Scott's bandwidth) is fitted to each point
    cloud and evaluated on a ``grid_size`` x ``grid_size`` grid spanning both
    clouds; each density is normalised to sum 1 over the grid and the distance is
    ``sum |p - q|`` (0 = identical, 2 = disjoint).
    """
    a = np.asarray(points_pred, dtype=np.float64)
    b = np.asarray(points_real, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or b.ndim != 2 or b.shape[1] != 2:
        raise ValueError("kde_distance expects two arrays of shape (genes, 2): per-gene mean and variance")
    both = np.vstack([a, b])
    lo, hi = both.min(0), both.max(0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid_size), np.linspace(lo[1], hi[1], grid_size))
    grid = np.vstack([gx.ravel(), gy.ravel()])
    p, q = _kde_on_grid(a, grid.T), _kde_on_grid(b, grid.T)
    return float(np.abs(p / p.sum() - q / q.sum()).sum())


def _kde_on_grid(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Unnormalised Gaussian KDE with scipy's (Scott) bandwidth matrix, evaluated at once."""
    kde = gaussian_kde(points.T)
    L = np.linalg.cholesky(np.linalg.inv(kde.covariance))
    return np.exp(-0.5 * cdist(grid @ L, points @ L, "sqeuclidean")).sum(axis=1)


def wilcoxon_scores(X_group, X_ref) -> np.ndarray:
    """Wilcoxon rank-sum z-score of each gene, group vs reference.

    ``z = (R - n1 (n1 + n2 + 1) / 2) / sqrt(n1 n2 (n1 + n2 + 1) / 12)`` with ``R``
    the rank sum of the group's cells (average ranks for ties, no tie correction):
    the statistic scanpy's ``rank_genes_groups(method="wilcoxon")`` sorts by,
    vectorised so bootstraps can recompute DEGs quickly.
    """
    X_group, X_ref = np.asarray(X_group), np.asarray(X_ref)
    n1, n2 = X_group.shape[0], X_ref.shape[0]
    ranks = rankdata(np.vstack([X_group, X_ref]), axis=0)
    r = ranks[:n1].sum(0)
    return (r - n1 * (n1 + n2 + 1) / 2.0) / np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)


def jaccard(a, b) -> float:
    """Jaccard index ``|A & B| / |A | B|`` of two gene sets (the tutorial's DEG overlap)."""
    a, b = set(a), set(b)
    if not a and not b:
        return float("nan")
    return len(a & b) / len(a | b)


def overlap_at_k(pred_ranked, real_ranked, k: int) -> float:
    """cell-eval's ``overlap_at_k``: ``|top_k(pred) & top_k(real)| / k`` of two ranked gene lists."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return len(set(list(pred_ranked)[:k]) & set(list(real_ranked)[:k])) / k


def direction_match(pred_mean, real_mean, ctrl_mean, genes=None) -> float:
    """Fraction of genes whose predicted change has the real change's sign.

    ``mean_g [sign(mean(P)_g - mean(C)_g) == sign(mean(S)_g - mean(C)_g)]`` over
    the gene indices ``genes`` (default: all), e.g. the real top DEGs (cell-eval's
    direction match).
    """
    d_pred = np.asarray(pred_mean, dtype=np.float64) - np.asarray(ctrl_mean, dtype=np.float64)
    d_real = np.asarray(real_mean, dtype=np.float64) - np.asarray(ctrl_mean, dtype=np.float64)
    if genes is not None:
        d_pred, d_real = d_pred[genes], d_real[genes]
    if d_real.size == 0:
        return float("nan")
    return float(np.mean(np.sign(d_pred) == np.sign(d_real)))
