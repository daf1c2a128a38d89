"""Robustness curves: test-half accuracy, macro-F1 and AUROC as the attack strength grows.

Two strength axes, each attack applied to every audited cluster at once (a per-cell classifier
sees each cluster's cells only through their own rows, so the clusters' attacks are
independent and their union is the attacked test half):

- ``"genes"``: ``k`` = number of the cluster's marker genes switched against the cluster
  (one-vs-rest Wilcoxon ranking on the test half; a gene higher in the cluster is set to its
  1st percentile ``perc1``, a lower one to its 99th ``perc99``; statistics over all cells);
- ``"cgd"``: CGD (:func:`perturblab.attack.cgd.cgd_attack`) with step ``alpha = epsilon =
  strength`` over the signature genes, towards the automatically chosen new target.

Strength 0 is the unattacked data. Metrics (:func:`attacked_metrics`) are computed overall and
per cluster on the model input (``space = "model_input"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import InputError

__all__ = ["marker_ranking", "attacked_metrics", "robustness_unit"]


def marker_ranking(X, clusters, gene_names, n_top: int = 100) -> dict:
    """One-vs-rest marker genes of every cluster.

    Parameters
    ----------
    X
        Cells x genes (any representation; the Wilcoxon statistic is rank-based).
    clusters
        Cluster of each cell.
    gene_names
        Column names.
    n_top
        Genes kept per cluster.

    Returns
    -------
    dict
        ``{cluster: (genes, signs)}``: gene names by decreasing ``|z|`` and the sign of ``z``
        (+1 higher in the cluster).
    """
    from ..classifiers.svm import wilcoxon_z

    clusters = np.asarray(clusters).astype(str)
    names = np.unique(clusters)
    z = wilcoxon_z(np.asarray(X), clusters[:, None] == names[None, :])
    genes = np.asarray(gene_names).astype(str)
    out = {}
    for k, c in enumerate(names):
        order = np.argsort(-np.abs(z[k]), kind="stable")[:n_top]
        out[c] = (genes[order].tolist(), np.sign(z[k, order]).astype(int).tolist())
    return out


def attacked_metrics(classifier, X, y, clusters=None) -> pd.DataFrame:
    """Accuracy, F1 and one-vs-rest AUROC of ``classifier`` on model input ``X`` against labels ``y``.

    As :func:`perturblab.classifiers.evaluate_classifier` (answers mapped with ``map_labels``;
    abstentions and unmapped answers are errors; AUROC on
    :func:`~perturblab.classifiers.evaluation.scores_by_label`), but on a given matrix.

    Returns
    -------
    pandas.DataFrame
        One row ``scope="overall"`` (accuracy, macro-F1 as ``f1``, macro AUROC as ``auroc``) and one
        per cluster of ``clusters`` (default: every label): accuracy within the cluster (recall),
        F1 and AUROC of that label (NaN when the classifier has no class mapped to it).
    """
    from sklearn.metrics import f1_score, roc_auc_score

    from ..classifiers.evaluation import scores_by_label

    y = np.asarray(y).astype(str)
    labels = sorted(set(y))
    pred = np.asarray(classifier.map_labels(classifier.predict(X))).astype(str)
    S = scores_by_label(classifier, classifier.predict_proba(X), labels)
    auroc = {c: roc_auc_score(y == c, S[c]) for c in S.columns if 0 < (y == c).sum() < len(y)}
    f1 = dict(zip(labels, f1_score(y, pred, labels=labels, average=None, zero_division=0)))
    rows = [{"scope": "overall", "n_cells": len(y), "accuracy": float(np.mean(pred == y)),
             "f1": float(np.mean(list(f1.values()))),
             "auroc": float(np.mean(list(auroc.values()))) if auroc else np.nan}]
    for c in labels if clusters is None else clusters:
        m = y == c
        rows.append({"scope": c, "n_cells": int(m.sum()), "accuracy": float(np.mean(pred[m] == c)),
                     "f1": float(f1.get(c, np.nan)), "auroc": float(auroc.get(c, np.nan))})
    return pd.DataFrame(rows)


def robustness_unit(ctx, unit) -> tuple[dict, dict]:
    """One point of a robustness curve: every audited cluster attacked at ``unit.strength``."""
    from ..attack.cgd import cgd_attack
    from ..attack.modifications import get_modification

    clf, X = ctx.classifier, ctx.X
    genes = np.asarray(clf.genes_).astype(str)
    pos = {g: i for i, g in enumerate(genes)}
    clusters = list(ctx.attacked)
    Xa = X.copy()
    n_calls = 0
    s = unit.strength
    for c in clusters:
        mask = ctx.clusters == c
        rows = np.flatnonzero(mask)
        if unit.axis == "genes" and s > 0:
            names, signs = ctx.markers[c]
            known = [i for i, g in enumerate(names) if g in pos][: int(s)]  # markers the classifier reads
            idx = np.array([pos[names[i]] for i in known], dtype=np.intp)
            signs = np.asarray(signs)[known]
            for mod, sel in (("perc1", signs > 0), ("perc99", signs <= 0)):
                if sel.any():
                    Xa[np.ix_(rows, idx[sel])] = get_modification(mod).values(X, mask, idx[sel])
        elif unit.axis == "cgd" and s > 0:
            res = cgd_attack(clf, X, ctx.clusters, c, ctx.cgd_genes_in(genes), alpha=s, epsilon=s,
                             gene_names=genes)
            Xa[rows] = res.X[rows]
            n_calls += res.n_classifier_calls
        elif unit.axis not in ("genes", "cgd"):
            raise InputError(f"unknown robustness axis {unit.axis!r}: use 'genes' or 'cgd'")
    table = attacked_metrics(clf, Xa, ctx.clusters, clusters)
    table.insert(0, "strength", s)
    table.insert(0, "axis", unit.axis)
    table.insert(0, "classifier", unit.classifier)
    table.insert(3, "space", "model_input")
    table["n_classifier_calls"] = n_calls + 1  # CGD's calls + the evaluation of the attacked test half
    return {"n_classifier_calls": n_calls + 1}, {"robustness": table}
