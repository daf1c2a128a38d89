"""Ranking metrics for edge recovery: AUROC, AUPRC, early-precision ratio, top-K F1.

All functions take a score vector (higher = more likely an edge) and a boolean
label vector of the same length (True = edge in the reference / DE target).
AUROC and AUPRC are scikit-learn's ``roc_auc_score`` and
``average_precision_score``; :func:`auroc_ranks` is the same AUROC through
Mann-Whitney ranks, vectorised for the many evaluations of the null models.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..exceptions import InputError

__all__ = ["auroc", "auprc", "auroc_ranks", "early_precision_ratio", "topk_f1", "ranking_metrics"]


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise InputError(f"scores ({scores.size}) and labels ({labels.size}) must have the same length")
    if not np.isfinite(scores).all():
        raise InputError("scores contain NaN or infinite values; edge scores must be finite")
    return scores, labels


def _has_both(labels: np.ndarray) -> bool:
    return bool(labels.any() and (~labels).any())


def auroc(scores, labels) -> float:
    """Area under the ROC curve (ties count one half); NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    scores, labels = _check(scores, labels)
    return float(roc_auc_score(labels, scores)) if _has_both(labels) else float("nan")


def auroc_ranks(scores, labels) -> np.ndarray:
    """AUROC via Mann-Whitney U, vectorised over the last axis.

    Parameters
    ----------
    scores
        ``(n,)`` or ``(r, n)`` scores; each row is one evaluation.
    labels
        ``(n,)`` or ``(r, n)`` booleans, broadcast against ``scores``.

    Returns
    -------
    ``(r,)`` array (or a 0-d array) of AUROCs, identical to :func:`auroc` (average ranks for ties).
    """
    scores, labels = np.broadcast_arrays(np.atleast_2d(np.asarray(scores, dtype=float)),
                                         np.atleast_2d(np.asarray(labels, dtype=bool)))
    ranks = rankdata(scores, axis=-1)
    n1 = labels.sum(axis=-1)
    n0 = labels.shape[-1] - n1
    u = (ranks * labels).sum(axis=-1) - n1 * (n1 + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((n1 > 0) & (n0 > 0), u / (n1 * n0), np.nan)
    return out.squeeze()


def auprc(scores, labels) -> float:
    """Average precision (step-wise area under the precision-recall curve); NaN without positives."""
    from sklearn.metrics import average_precision_score

    scores, labels = _check(scores, labels)
    return float(average_precision_score(labels, scores)) if labels.any() else float("nan")


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    # stable order: ties broken by position, so the result is deterministic
    return np.argsort(-scores, kind="stable")[:k]


def _top_k_hits(scores, labels, k: int | None) -> tuple[int, int, int, int] | None:
    """(true positives among the top ``k``, k, n positives, n edges); None without positives."""
    scores, labels = _check(scores, labels)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return None
    k = n_pos if k is None else int(k)
    if not 0 < k <= scores.size:
        raise InputError(f"k must be in 1..{scores.size}, got {k}")
    return int(labels[_top_k(scores, k)].sum()), k, n_pos, labels.size


def early_precision_ratio(scores, labels, k: int | None = None) -> float:
    """Early-precision ratio (BEELINE): precision among the top ``k`` edges divided by the positive rate.

    ``k`` defaults to the number of positives. 1 = random ranking; NaN without positives.
    """
    hits = _top_k_hits(scores, labels, k)
    if hits is None:
        return float("nan")
    tp, k, n_pos, n = hits
    return float((tp / k) / (n_pos / n))


def topk_f1(scores, labels, k: int | None = None) -> float:
    """F1 of calling the top ``k`` edges (default: as many as there are positives); NaN without positives."""
    hits = _top_k_hits(scores, labels, k)
    if hits is None:
        return float("nan")
    tp, k, n_pos, _ = hits
    precision, recall = tp / k, tp / n_pos
    return float(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))


def ranking_metrics(scores, labels, k: int | None = None) -> dict[str, float]:
    """AUROC, AUPRC, early-precision ratio and top-K F1 plus the counts, as one dict (a table row)."""
    scores, labels = _check(scores, labels)
    return {
        "n_candidates": int(labels.size),
        "n_positive": int(labels.sum()),
        "auroc": auroc(scores, labels),
        "auprc": auprc(scores, labels),
        "epr": early_precision_ratio(scores, labels, k),
        "topk_f1": topk_f1(scores, labels, k),
    }
