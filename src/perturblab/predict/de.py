"""Differential expression as cell-eval computes it (pdex), vectorised over genes, and the t-tests of
scPerturBench and Mejia et al. 2025.

Input everywhere: dense arrays of **log-normalised** expression (``normalize_total`` + ``log1p``), cells x
genes, the same genes in the same order in both groups.

pdex (ArcInstitute/pdex @ d7232d0, called by cell-eval 0.8.1 ``_build_pdex_kwargs``) computes, per gene:

- a two-sided Mann-Whitney U test of the group against the reference (asymptotic normal approximation,
  tie correction, continuity correction 0.5; numba-mwu's ``mannwhitneyu_columns``, the same p-values as
  ``scipy.stats.mannwhitneyu(method="asymptotic")``); a gene constant in both groups gets p = 1;
- Benjamini-Hochberg FDR over all genes of the comparison (``scipy.stats.false_discovery_control``);
- ``log2_fold_change = log2(expm1(mean(X_group)) / expm1(mean(X_ref)))``: the geometric mean of the
  counts, back-transformed (``is_log1p=True, geometric_mean=True``), with cell-eval's pseudocount
  ``epsilon = 0`` (pdex >= 0.2.5 defaults to 1e-9; cell-eval pins 0). ``0 / 0`` is 0, a one-sided zero
  is +-inf. cell-eval stores fold changes and FDRs as float32 before sorting and thresholding, which
  decides ties; :class:`DEResult` keeps that float32 copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr
from scipy.stats import false_discovery_control, rankdata

__all__ = [
    "DEResult",
    "deg_weights",
    "differential_expression",
    "mann_whitney",
    "rank_sum_stats",
    "top_degs_ttest",
    "weights_from_scores",
    "welch_t_scores",
]


def _ranks_and_ties(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) of each column of ``X`` and each column's tie term ``sum(t^3 - t)``."""
    n, g = X.shape
    xs = np.sort(X, axis=0)
    new = np.ones(xs.shape, dtype=bool)
    new[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(new.T.ravel())  # column-major positions where a run of equal values starts
    col = starts // n
    t = (np.minimum(np.append(starts[1:], n * g), (col + 1) * n) - starts).astype(np.float64)
    ties = np.bincount(col, weights=t ** 3 - t, minlength=g)
    return rankdata(X, axis=0), ties


def rank_sum_stats(X_group, X_ref) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Rank sum of the group's cells and tie term of each gene, pooled ranking of both groups.

    Returns
    -------
    tuple
        ``(R1, tie_term, n1, n2)``: per-gene sum of the group's average ranks, per-gene
        ``sum(t^3 - t)`` over the tie runs of the pooled column, and the two group sizes.
    """
    Xg, Xr = np.asarray(X_group, dtype=np.float64), np.asarray(X_ref, dtype=np.float64)
    ranks, ties = _ranks_and_ties(np.vstack([Xg, Xr]))
    return ranks[: len(Xg)].sum(axis=0), ties, len(Xg), len(Xr)


def mann_whitney(X_group=None, X_ref=None, stats=None) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Mann-Whitney U test of every gene (asymptotic, tie- and continuity-corrected).

    ``U1 = R1 - n1 (n1 + 1) / 2``, ``U = max(U1, n1 n2 - U1)``,
    ``z = (U - n1 n2 / 2 - 0.5) / sqrt(n1 n2 / 12 (n + 1 - T / (n (n - 1))))`` with ``T`` the tie term,
    ``p = min(1, 2 Phi(-z))``; ``p = 1`` where the variance is 0 (all values tied). The same numbers as
    ``scipy.stats.mannwhitneyu(x, y, method="asymptotic")`` and pdex's numba-mwu.

    Parameters
    ----------
    X_group, X_ref
        Cells x genes arrays (ignored when ``stats`` is given).
    stats
        Precomputed :func:`rank_sum_stats` output (reused by callers that also need z-scores).

    Returns
    -------
    tuple of numpy.ndarray
        ``(U1, p_value)``, one value per gene.
    """
    R1, ties, n1, n2 = stats if stats is not None else rank_sum_stats(X_group, X_ref)
    n = n1 + n2
    U1 = R1 - n1 * (n1 + 1.0) / 2.0
    U = np.maximum(U1, n1 * n2 - U1)
    s2 = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (U - n1 * n2 / 2.0 - 0.5) / np.sqrt(s2)
    p = np.where(s2 > 0, np.clip(2.0 * ndtr(-z), 0.0, 1.0), 1.0)
    return U1, p


@dataclass
class DEResult:
    """Per-gene differential expression of a group against a reference (pdex's columns).

    Attributes
    ----------
    target_mean, ref_mean
        Geometric means in count space, ``expm1(mean(log1p values))``.
    log2_fold_change
        ``log2(target_mean / ref_mean)``, 0 for 0/0, +-inf for one-sided zeros; float32 as cell-eval stores it.
    p_value, fdr
        Mann-Whitney p-value and its Benjamini-Hochberg adjustment; ``fdr`` is float32 as in cell-eval.
    statistic
        ``U1``, the U statistic of the group.
    """

    target_mean: np.ndarray
    ref_mean: np.ndarray
    log2_fold_change: np.ndarray
    p_value: np.ndarray
    fdr: np.ndarray
    statistic: np.ndarray

    def significant(self, fdr: float = 0.05) -> np.ndarray:
        """Indices of genes with ``fdr < fdr`` (strictly, as cell-eval)."""
        return np.flatnonzero(self.fdr < np.float32(fdr))

    def ranked_significant(self, fdr: float = 0.05) -> np.ndarray:
        """Significant genes sorted by decreasing ``|log2_fold_change|`` (cell-eval's ``get_top_genes``).

        Ties of the float32 ``|log2FC|`` are broken by increasing p-value, then gene order. Ties are common:
        every gene with a one-sided zero has ``|log2FC| = inf`` (hundreds with 2,000 HVGs). cell-eval ranks
        with polars' ``struct(...).rank("ordinal", descending=True)``, whose order within ties is that of an
        unstable sort (neither gene order nor p-value), so its top-N lists are arbitrary where such a tie
        crosses the cut N; here the order is defined and favours the more significant gene.
        """
        sig = self.significant(fdr)
        key = np.abs(self.log2_fold_change[sig]).astype(np.float32)
        return sig[np.lexsort((sig, self.p_value[sig], -key))]


def differential_expression(X_group, X_ref, epsilon: float = 0.0, stats=None) -> DEResult:
    """pdex's ``mode="ref"`` differential expression of one group against the reference.

    Parameters
    ----------
    X_group, X_ref
        Log-normalised cells x genes arrays (same genes).
    epsilon
        Pseudocount added to both geometric means before the ratio (cell-eval: 0).
    stats
        Optional precomputed :func:`rank_sum_stats` of the two groups.

    Returns
    -------
    DEResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ctrl = rng.poisson(1.0, (40, 3)).astype(float)
    >>> stim = ctrl + np.array([0.0, 0.0, 3.0])
    >>> de = differential_expression(np.log1p(stim), np.log1p(ctrl))
    >>> [int(g) for g in de.significant()]
    [2]
    """
    Xg, Xr = np.asarray(X_group, dtype=np.float64), np.asarray(X_ref, dtype=np.float64)
    tm, rm = np.expm1(Xg.mean(axis=0)), np.expm1(Xr.mean(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lfc = np.log2((tm + epsilon) / (rm + epsilon))
    lfc[np.isnan(lfc)] = 0.0
    U1, p = mann_whitney(stats=stats if stats is not None else rank_sum_stats(Xg, Xr))
    fdr = false_discovery_control(p) if p.size else p
    return DEResult(tm, rm, lfc.astype(np.float32), p, np.asarray(fdr).astype(np.float32), U1)


def welch_t_scores(X_group, X_ref, overestimate_var: bool = False) -> np.ndarray:
    """Welch t statistic of every gene, as scanpy ``rank_genes_groups(method="t-test")`` scores it.

    ``t = (mean_g - mean_r) / sqrt(var_g / n_g + var_r / n_r)`` with unbiased variances (ddof 1) of the
    log-normalised values; NaN (both variances 0, equal means) becomes 0 as in scanpy. With
    ``overestimate_var=True`` scanpy's ``"t-test_overestim_var"``: the reference variance is divided by
    the group's size instead of its own.
    """
    Xg, Xr = np.asarray(X_group, dtype=np.float64), np.asarray(X_ref, dtype=np.float64)
    ng, nr = len(Xg), len(Xr)
    if ng < 2 or nr < 2:
        raise ValueError(f"a t-test needs at least 2 cells per group, got {ng} and {nr}")
    vg, vr = Xg.var(axis=0, ddof=1), Xr.var(axis=0, ddof=1)
    denom = np.sqrt(vg / ng + vr / (ng if overestimate_var else nr))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (Xg.mean(axis=0) - Xr.mean(axis=0)) / denom
    t[np.isnan(t)] = 0.0
    return t


def top_degs_ttest(X_group, X_ref, n: int = 100) -> np.ndarray:
    """scPerturBench's DEG set: the ``n`` genes of largest ``|t|`` (scanpy ``"t-test"``, group vs reference).

    scPerturBench (bm2-lab/scPerturBench, ``Cellular_context_generalization``) ranks the held-out cell
    type's stimulated cells against its control cells with scanpy's Welch t-test and keeps the first 100
    genes by ``|score|``; ties keep gene order. Returns gene indices.
    """
    t = welch_t_scores(X_group, X_ref)
    return np.argsort(-np.abs(t), kind="stable")[:n]


def weights_from_scores(scores) -> np.ndarray:
    """Mejia et al.'s transform of DE scores into gene weights: ``|s|`` min-max scaled to [0, 1], squared,
    divided by the sum (a constant ``|s|`` gives denominator 1, as there). All-zero weights (nothing
    differs) become uniform, so the weighted metrics fall back to the unweighted ones instead of dividing
    by 0."""
    s = np.abs(np.asarray(scores, dtype=np.float64))
    span = s.max() - s.min()
    w = ((s - s.min()) / (span if span > 0 else 1.0)) ** 2
    total = w.sum()
    return w / total if total > 0 else np.full(s.shape, 1.0 / s.size)


def deg_weights(X_group, X_ref) -> np.ndarray:
    """Mejia et al. 2025's per-gene DEG weights (sum 1) for weighted MSE and weighted delta R2.

    The scores are scanpy's ``"t-test_overestim_var"`` t statistics of the group against the reference
    (:func:`welch_t_scores`), turned into weights by :func:`weights_from_scores` (shiftbioscience "Diversity
    by design" ``calculate_weights``: reference "rest" = the other perturbations' cells, or "control").
    """
    return weights_from_scores(welch_t_scores(X_group, X_ref, overestimate_var=True))
