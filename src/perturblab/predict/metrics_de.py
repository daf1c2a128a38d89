"""cell-eval's DE metrics: agreement between the differential expression of the prediction and of the truth.

Each function takes two :class:`~perturblab.predict.de.DEResult` of one target (held-out cell type or
perturbation) over the same genes: ``real`` (real stimulated vs control) and ``pred`` (predicted vs the
same control), as cell-eval 0.8.1 builds them with pdex (``metrics/_de.py``, ``_types/_de.py``). A gene is
"significant" when its Benjamini-Hochberg FDR is below ``fdr`` (0.05, strictly below, as cell-eval). The
formulas and the quirks kept for comparability are written in each docstring.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from .de import DEResult

__all__ = [
    "de_direction_match",
    "de_nsig_counts",
    "de_pr_auc",
    "de_roc_auc",
    "de_sig_genes_recall",
    "de_spearman_lfc_sig",
    "de_spearman_sig",
    "overlap_at_n",
    "precision_at_n",
]


def _overlap(real: DEResult, pred: DEResult, k: int | None, fdr: float, on: str) -> float:
    if k is not None and k < 1:
        raise ValueError(f"N must be >= 1 or None (the number of significant genes), got {k}")
    r, p = real.ranked_significant(fdr), pred.ranked_significant(fdr)
    size = r.size if on == "real" else p.size
    k_eff = min(k if k else size, size)
    if k_eff == 0:
        return 0.0
    return float(np.intersect1d(r[:k_eff], p[:k_eff]).size / k_eff)


def overlap_at_n(real: DEResult, pred: DEResult, n: int | None = None, fdr: float = 0.05) -> float:
    """cell-eval's ``overlap_at_N`` (``n=None``) and ``overlap_at_50/100/200/500`` (``n`` given).

    Both sides' significant genes are sorted by decreasing ``|log2 fold change|`` (ties by p-value, then gene
    order: :meth:`DEResult.ranked_significant`; cell-eval's order within ties is arbitrary);
    ``k = min(n or |sig real|, |sig real|)``; the value is ``|top_k(real) & top_k(pred)| / k``, 0 when
    ``k = 0`` (no real DEG; cell-eval also returns 0 for every target when no target has any DEG). So with
    fewer real DEGs than ``n`` the score is a recall over all real DEGs.
    """
    return _overlap(real, pred, n, fdr, "real")


def precision_at_n(real: DEResult, pred: DEResult, n: int | None = None, fdr: float = 0.05) -> float:
    """cell-eval's ``precision_at_N`` / ``precision_at_50...``: as :func:`overlap_at_n` with
    ``k = min(n or |sig pred|, |sig pred|)``.

    Kept as cell-eval computes it: the REAL list is also cut at ``k``, so this is not the textbook
    precision of the predicted DEGs against all real DEGs (a predicted DEG ranked beyond ``k`` on the real
    side counts as a miss). 0 when the prediction has no significant gene.
    """
    return _overlap(real, pred, n, fdr, "pred")


def de_direction_match(real: DEResult, pred: DEResult, fdr: float = 0.05) -> float:
    """cell-eval's ``de_direction_match``: over the real significant genes, the share whose predicted
    log2 fold change (significant or not) has the real one's sign (``sign(0) = 0`` matches only 0).
    NaN when there is no real DEG (cell-eval leaves the target out)."""
    sig = real.significant(fdr)
    if sig.size == 0:
        return float("nan")
    return float(np.mean(np.sign(real.log2_fold_change[sig]) == np.sign(pred.log2_fold_change[sig])))


def de_spearman_lfc_sig(real: DEResult, pred: DEResult, fdr: float = 0.05) -> float:
    """cell-eval's ``de_spearman_lfc_sig``: Spearman correlation of real and predicted log2 fold changes
    over the real significant genes (average ranks; +-inf ranks at the ends). NaN with fewer than 2 real
    DEGs or a constant side."""
    sig = real.significant(fdr)
    if sig.size < 2:
        return float("nan")
    a = real.log2_fold_change[sig].astype(np.float64)
    b = pred.log2_fold_change[sig].astype(np.float64)
    if np.unique(a).size < 2 or np.unique(b).size < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def de_sig_genes_recall(real: DEResult, pred: DEResult, fdr: float = 0.05) -> float:
    """cell-eval's ``de_sig_genes_recall``: ``|sig real & sig pred| / |sig real|``; NaN without real DEGs."""
    r = real.significant(fdr)
    if r.size == 0:
        return float("nan")
    return float(np.intersect1d(r, pred.significant(fdr)).size / r.size)


def de_nsig_counts(real: DEResult, pred: DEResult, fdr: float = 0.05) -> tuple[int, int]:
    """cell-eval's ``de_nsig_counts``: numbers of significant genes ``(real, pred)``."""
    return int(real.significant(fdr).size), int(pred.significant(fdr).size)


def _auc_inputs(real: DEResult, pred: DEResult, fdr: float):
    labels = (real.fdr < np.float32(fdr)).astype(np.float64)
    q = np.clip(pred.fdr.astype(np.float32), np.float32(1e-10), np.float32(1.0))
    return labels, -np.log10(q)


def de_pr_auc(real: DEResult, pred: DEResult, fdr: float = 0.05) -> float:
    """cell-eval's ``pr_auc``: average precision (``sklearn.metrics.average_precision_score``) of the
    scores ``-log10(clip(FDR_pred, 1e-10, 1))`` for the labels "real FDR < 0.05", over all genes. NaN when
    every gene or no gene is a real DEG."""
    from sklearn.metrics import average_precision_score

    labels, scores = _auc_inputs(real, pred, fdr)
    if not 0 < labels.sum() < labels.size:
        return float("nan")
    return float(average_precision_score(labels, scores))


def de_roc_auc(real: DEResult, pred: DEResult, fdr: float = 0.05) -> float:
    """cell-eval's ``roc_auc``: area under the ROC curve of the same scores and labels as
    :func:`de_pr_auc` (``sklearn.metrics.roc_curve`` + ``auc``); NaN when one class is empty."""
    from sklearn.metrics import auc, roc_curve

    labels, scores = _auc_inputs(real, pred, fdr)
    if not 0 < labels.sum() < labels.size:
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(auc(fpr, tpr))


def de_spearman_sig(counts_real, counts_pred) -> float:
    """cell-eval's ``de_spearman_sig``, a metric over targets: Spearman correlation between the real and
    predicted numbers of significant genes of every target.

    cell-eval returns 1.0 when no target has a real DEG ("perfect agreement"); here that case and a
    constant side are NaN, since no correlation is defined (a deliberate deviation: a made-up 1.0 would
    be reported as a perfect score).
    """
    a, b = np.asarray(counts_real, dtype=np.float64), np.asarray(counts_pred, dtype=np.float64)
    if a.size != b.size:
        raise ValueError(f"counts_real and counts_pred have {a.size} and {b.size} targets; they must match")
    if a.size < 2 or np.unique(a).size < 2 or np.unique(b).size < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)
