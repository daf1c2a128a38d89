"""Abstention as an outcome: "Unknown" answers and the margin to the runner-up, before and after an attack.

Classifiers may abstain: the SVMs answer "Unknown" below their probability threshold, CHETAH stops at
"Unassigned" or an intermediate "Node<k>" when unsure, scType's cluster call is "Unknown" when its
summed score is low. An attack that only moves cells to an abstention has not made the classifier
wrong, it has made it silent; :func:`abstention_table` reports it as such (``outcome``).

Per cluster, before and after: the abstention rate, the mean margin between the highest and the
second-highest class score (``predict_proba``: probabilities, or CHETAH's path confidence), the
majority answer, and how the cells' answers moved (to an abstention, to another label, back from an
abstention). ``outcome``:

``flip``
    the majority answer changed to another label;
``flip_to_abstention``
    the majority answer is now an abstention;
``only_abstention``
    the majority is unchanged, some cells changed, all of them to an abstention;
``partial``
    the majority is unchanged, some cells moved to other labels;
``no_change``
    no cell's answer changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..classifiers.base import is_abstention, majority_vote
from ..exceptions import InputError

__all__ = ["OUTCOMES", "abstention_table", "probability_margin"]

OUTCOMES = ("flip", "flip_to_abstention", "only_abstention", "partial", "no_change")


def probability_margin(P) -> np.ndarray:
    """Per cell, the highest minus the second-highest class score of ``P`` (cells x classes)."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] < 2:
        raise InputError(f"class scores must be cells x classes with at least 2 classes, got shape {P.shape}")
    top2 = np.partition(P, P.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def abstention_table(
    classifier,
    X_before,
    X_after,
    clusters,
    targets: Sequence[str] | None = None,
    *,
    attack: str = "",
    name: str | None = None,
) -> pd.DataFrame:
    """Abstentions and margins per cluster before and after an attack (see the module docstring).

    Parameters
    ----------
    classifier
        A fitted per-cell classifier with ``predict`` and ``predict_proba``.
    X_before, X_after
        Dense cells x genes model input without and with the attack (e.g. ``X`` and ``result.X`` of
        :func:`~perturblab.attack.cgd.cgd_attack` or :func:`~perturblab.attack.whitebox.whitebox_attack`);
        only the rows of ``targets`` are scored.
    clusters, targets
        Cluster label per cell; clusters to report (default: every cluster whose rows differ, or all
        when none differ).
    attack, name
        Labels of the attack and the classifier in the table.

    Returns
    -------
    pandas.DataFrame
        One row per cluster: classifier, attack, cluster, n_cells, abstention_before/after (fractions),
        margin_before/after (means), majority_before/after, n_changed, n_to_abstention, n_to_label,
        n_from_abstention, outcome (:data:`OUTCOMES`).

    Raises
    ------
    InputError
        If the matrices or cluster labels do not have the same cells.

    Examples
    --------
    Did CGD's push move scType's B cells to another label or to an abstention?

    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.ScTypeClassifier().fit(train)
    >>> X = clf.preprocess(test)
    >>> panel = ["MS4A1", "CD79A", "CD79B", "SSR4", "CD74", "HLA-DRA", "NKG7", "GNLY", "CD3E", "LYZ"]
    >>> res = plab.attack.cgd_attack(clf, X, test.obs["cell_type"], "B", panel, alpha=1, epsilon=1)
    >>> tab = plab.attack.abstention_table(clf, X, res.X, test.obs["cell_type"], ["B"], attack="cgd")
    >>> print(tab[["majority_before", "majority_after", "n_cells", "n_to_label", "n_to_abstention",
    ...            "outcome"]].to_string(index=False))
    majority_before majority_after  n_cells  n_to_label  n_to_abstention outcome
      Naive B cells Plasma B cells      172          72                0    flip
    """
    Xb, Xa = np.asarray(X_before, dtype=np.float32), np.asarray(X_after, dtype=np.float32)
    clusters = np.asarray(clusters).astype(str)
    if Xb.shape != Xa.shape or clusters.shape != (Xb.shape[0],):
        raise InputError(f"X_before {Xb.shape}, X_after {Xa.shape} and {clusters.size} cluster labels must describe "
                         "the same cells and genes")
    if targets is None:
        changed = np.flatnonzero((Xb != Xa).any(axis=1))
        targets = list(dict.fromkeys(clusters[changed].tolist() if len(changed) else clusters.tolist()))
    rows = []
    for t in targets:
        mask = clusters == str(t)
        if not mask.any():
            raise InputError(f"cluster {t!r} has no cells; pass targets among the cluster labels")
        lb = np.asarray(classifier.predict(Xb[mask])).astype(str)
        la = np.asarray(classifier.predict(Xa[mask])).astype(str)
        ab, aa = is_abstention(classifier, lb), is_abstention(classifier, la)
        mb = probability_margin(classifier.predict_proba(Xb[mask]))
        ma = probability_margin(classifier.predict_proba(Xa[mask]))
        cb, ca = majority_vote(lb).label, majority_vote(la).label
        moved = lb != la
        to_abs = moved & aa
        to_lab = moved & ~aa
        if ca != cb:
            outcome = "flip_to_abstention" if is_abstention(classifier, [ca])[0] else "flip"
        elif not moved.any():
            outcome = "no_change"
        elif not to_lab.any():
            outcome = "only_abstention"
        else:
            outcome = "partial"
        rows.append({"classifier": name or type(classifier).__name__, "attack": attack, "cluster": str(t),
                     "n_cells": int(mask.sum()), "abstention_before": float(ab.mean()),
                     "abstention_after": float(aa.mean()), "margin_before": float(mb.mean()),
                     "margin_after": float(ma.mean()), "majority_before": cb, "majority_after": ca,
                     "n_changed": int(moved.sum()), "n_to_abstention": int(to_abs.sum()),
                     "n_to_label": int(to_lab.sum()), "n_from_abstention": int((moved & ab & ~aa).sum()),
                     "outcome": outcome})
    return pd.DataFrame(rows)
