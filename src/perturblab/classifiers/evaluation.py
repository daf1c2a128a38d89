"""Accuracy, macro-F1 and one-vs-rest AUROC of a fitted classifier on labelled test cells."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import CellTypeClassifier

__all__ = ["evaluate_classifier", "scores_by_label"]


def scores_by_label(clf: CellTypeClassifier, proba: np.ndarray, labels) -> pd.DataFrame:
    """Per-cell scores of each dataset label: the ``predict_proba`` columns of the classifier
    classes that :meth:`~CellTypeClassifier.map_labels` sends to that label, summed (e.g. scType's
    "Naive B cells" + "Memory B cells" -> "B"). Labels no class maps to are absent."""
    mapped = clf.map_labels(clf.classes_)
    out = {}
    for lab in sorted(set(map(str, labels))):
        cols = np.flatnonzero(mapped.astype(str) == lab)
        if cols.size:
            out[lab] = proba[:, cols].sum(axis=1)
    return pd.DataFrame(out)


def evaluate_classifier(clf: CellTypeClassifier, test_adata, label_key: str, name: str | None = None,
                        n_bootstrap: int = 0, random_state: int = 0) -> pd.DataFrame:
    """Score a fitted classifier on raw-count ``test_adata`` against ``test_adata.obs[label_key]``.

    Predictions are mapped to dataset labels with ``clf.map_labels`` (scType's ``label_map``).
    Abstentions ("Unknown", CHETAH's "Unassigned"/"Node<k>") and unmapped answers count as errors
    in accuracy and macro-F1 (scikit-learn ``f1_score`` averaged over the dataset's labels).
    AUROC: one-vs-rest ``roc_auc_score`` per dataset label on :func:`scores_by_label` of the
    classifier's ``auroc_scores(X)`` when it has one (CellTypist: decision scores, as its sigmoid
    probabilities saturate to tied 0/1 values), else ``predict_proba(X)``; labels that
    no classifier class maps to (the classifier cannot predict them) get no AUROC, and the macro
    AUROC averages the others (their number is ``n_auroc_labels``).

    Parameters
    ----------
    clf
        A fitted classifier.
    test_adata
        Raw UMI counts, cells x genes, labels in ``obs[label_key]``.
    label_key
        Label column.
    name
        Name in the ``classifier`` column (default: the class name).
    n_bootstrap
        Resamples of the test cells (with replacement, seeded by ``random_state``) for 95% percentile
        intervals of accuracy and macro-F1 (0: no interval, NaN bounds). Both are averages over cells
        (accuracy) or per-label ratios of counts, which the percentile bootstrap covers without the bias it
        has for statistics of group means.

    Returns
    -------
    pandas.DataFrame
        One row: ``classifier``, ``n_cells``, ``accuracy``, ``accuracy_ci_low``, ``accuracy_ci_high``,
        ``macro_f1``, ``macro_f1_ci_low``, ``macro_f1_ci_high``, ``macro_auroc``, ``n_labels``,
        ``n_auroc_labels``, ``not_a_label`` (fraction of cells whose answer is not a dataset label: abstentions
        and unmapped names).
    """
    from sklearn.metrics import f1_score, roc_auc_score

    y = clf._labels(test_adata, label_key)
    X = clf.preprocess(test_adata)
    pred = clf.map_labels(clf.predict(X)).astype(str)
    labels = sorted(set(y))
    scores = scores_by_label(clf, getattr(clf, "auroc_scores", clf.predict_proba)(X), labels)
    aurocs = [roc_auc_score(y == lab, scores[lab]) for lab in scores.columns if 0 < (y == lab).sum() < len(y)]

    def f1(idx) -> float:
        return float(f1_score(y[idx], pred[idx], labels=labels, average="macro", zero_division=0))

    everyone = np.arange(len(y))
    acc_ci, f1_ci = (np.nan, np.nan), (np.nan, np.nan)
    if n_bootstrap > 0:
        rng = np.random.default_rng(random_state)
        draws = [rng.integers(0, len(y), len(y)) for _ in range(n_bootstrap)]
        acc = np.array([np.mean(pred[d] == y[d]) for d in draws])
        f1s = np.array([f1(d) for d in draws])
        acc_ci = tuple(np.percentile(acc, [2.5, 97.5]))
        f1_ci = tuple(np.percentile(f1s, [2.5, 97.5]))
    return pd.DataFrame([{
        "classifier": name or type(clf).__name__,
        "n_cells": len(y),
        "accuracy": float(np.mean(pred == y)),
        "accuracy_ci_low": float(acc_ci[0]),
        "accuracy_ci_high": float(acc_ci[1]),
        "macro_f1": f1(everyone),
        "macro_f1_ci_low": float(f1_ci[0]),
        "macro_f1_ci_high": float(f1_ci[1]),
        "macro_auroc": float(np.mean(aurocs)) if aurocs else float("nan"),
        "n_labels": len(labels),
        "n_auroc_labels": len(aurocs),
        "not_a_label": float(np.mean(~np.isin(pred, labels))),
    }])
