"""Cluster gradient descent (adverSCarial's ``advCGD``, R/advCGD.R).

One pass over the genes (in the given order). For gene ``j``:

1. **probe**: the cluster's cells not yet labelled ``new_target`` get
   ``x -> (1 + alpha*sign(x)) * x + epsilon`` on gene ``j`` (1 classifier call on
   the cluster's rows);
2. per probed cell, ``slope = delta score(new_target) - delta score(original)``
   (class scores = ``predict_proba``, the anchor's ``typePredictions``);
3. **commit**: cells with ``slope > 0`` take the probe step, cells with
   ``slope < 0`` the opposite step ``x -> (1 - alpha*sign(x)) * x - epsilon``;
   the cluster is re-scored (1 call);
4. stop when more cluster cells are labelled ``new_target`` than the original
   label (``stop_at_switch``).

Differences from adverSCarial (bugs not copied):
- ``new_target`` (given or, when ``None``, picked once from the baseline: the second
  most frequent per-cell label, or the highest mean score after the original when one
  label covers all cells) stays fixed; the anchor re-picks it after every gene
  (target drift), even when the user gave it.
- The commit step uses the same rule as the probe (the anchor's data.frame branch
  commits ``x(1-alpha) - eps`` for negative slopes whatever the sign of ``x``, which
  is inconsistent with the probe on scaled data).
Per-cell labels are the argmax of the class scores, as in the anchor. Genes outside
``classifier.used_genes_`` cannot change the scores and are visited without calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._engine import AttackTarget

__all__ = ["CGDResult", "cgd_attack"]


@dataclass
class CGDResult:
    """Result of :func:`cgd_attack`.

    ``X``: the modified model-input matrix (all cells; only the cluster's rows differ);
    ``by_gene``: one row per visited gene (order, gene, n_cells_modified, frac_original,
    frac_new_target, score_original, score_new_target - mean scores over the cluster);
    ``summary``: one-row DataFrame.
    """

    X: np.ndarray
    modified_genes: list[str]
    by_gene: pd.DataFrame
    summary: pd.DataFrame
    original_label: str
    new_target: str
    switched: bool
    n_classifier_calls: int
    n_batched_calls: int
    wall_time_s: float


def _step(x: np.ndarray, alpha: float, eps: float, direction: float) -> np.ndarray:
    return (1 + direction * alpha * np.sign(x)) * x + direction * eps


def cgd_attack(
    classifier,
    X,
    clusters,
    target: str,
    genes,
    *,
    new_target: str | None = None,
    excluded_new_targets=(),
    alpha: float = 0.1,
    epsilon: float = 0.0,
    stop_at_switch: bool = True,
    gene_names=None,
) -> CGDResult:
    """Push cluster ``target`` towards ``new_target`` gene by gene (see the module docstring).

    Parameters
    ----------
    classifier
        A fitted per-cell classifier with ``predict_proba`` and ``classes_``
        (:mod:`perturblab.classifiers`).
    X
        Dense cells x genes model input (``classifier.preprocess(adata)``).
    clusters, target
        Cluster label per cell; the cluster to attack.
    genes
        Gene names in the order to visit (e.g. ``signature_genes(...)["gene"][:500]``,
        most variable genes, or a seeded permutation).
    new_target
        The label to push towards (a ``classes_`` entry); ``None`` picks it from the baseline.
    excluded_new_targets
        Labels never picked automatically.
    alpha, epsilon
        Multiplicative and additive step (anchor defaults 0.1 and 0).

    Returns
    -------
    CGDResult

    Raises
    ------
    ValueError
        Unknown cluster or genes, ``new_target`` not a class, no possible new target, or a
        classifier without per-cell ``predict_proba``.
    """
    t0 = time.perf_counter()
    tgt = AttackTarget(classifier, X, clusters, target, gene_names=gene_names)
    if not tgt.per_cell or not hasattr(classifier, "predict_proba"):
        raise ValueError("CGD needs a per-cell classifier with predict_proba (class scores per cell)")
    classes = np.asarray(classifier.classes_).astype(str)
    gidx = tgt.gene_indices(list(genes))
    Xc = tgt.Xc.copy()
    used = tgt.used_gene_mask()

    def score(M):
        tgt.n_calls += 1
        tgt.n_batched_calls += 1
        P = np.asarray(classifier.predict_proba(M), dtype=np.float64)
        return P, P.argmax(axis=1)

    P, lab = score(Xc)
    counts = np.bincount(lab, minlength=len(classes))
    orig = int(counts.argmax())  # majority of argmax labels; ties -> first in classes_ order (sorted)
    if new_target is None:
        excl = {str(e) for e in excluded_new_targets} | {classes[orig]}
        present = [k for k in np.argsort(-counts, kind="stable") if counts[k] > 0 and classes[k] not in excl]
        if present:
            new = int(present[0])
        else:
            means = [k for k in np.argsort(-P.mean(axis=0), kind="stable") if classes[k] not in excl]
            if not means:
                raise ValueError("no label left to push the cluster towards")
            new = int(means[0])
    else:
        if str(new_target) not in set(classes):
            raise ValueError(f"new_target {new_target!r} is not a class of the classifier: {list(classes)[:30]}")
        new = int(np.flatnonzero(classes == str(new_target))[0])
    n = len(Xc)
    rows = [dict(order=0, gene="#", n_cells_modified=0, frac_original=np.mean(lab == orig),
                 frac_new_target=np.mean(lab == new), score_original=P[:, orig].mean(),
                 score_new_target=P[:, new].mean())]
    modified, switched = [], False
    for order, j in enumerate(gidx, start=1):
        todo = np.flatnonzero(lab != new)
        if len(todo) == 0:
            break
        if not used[j]:  # provably no effect on the scores: slope 0 everywhere, nothing to commit
            rows.append(dict(rows[-1], order=order, gene=str(tgt.genes[j]), n_cells_modified=0))
            continue
        probe = Xc[todo].copy()
        probe[:, j] = _step(probe[:, j], alpha, epsilon, +1)
        Pp, _ = score(probe)
        slope = (Pp[:, new] - P[todo, new]) - (Pp[:, orig] - P[todo, orig])
        up, down = todo[slope > 0], todo[slope < 0]
        n_mod = len(up) + len(down)
        if n_mod:
            Xc[up, j] = _step(Xc[up, j], alpha, epsilon, +1)
            Xc[down, j] = _step(Xc[down, j], alpha, epsilon, -1)
            P, lab = score(Xc)
            modified.append(str(tgt.genes[j]))
        rows.append(dict(order=order, gene=str(tgt.genes[j]), n_cells_modified=n_mod, frac_original=np.mean(lab == orig),
                         frac_new_target=np.mean(lab == new), score_original=P[:, orig].mean(),
                         score_new_target=P[:, new].mean()))
        if n_mod and stop_at_switch and (lab == new).sum() > (lab == orig).sum():
            switched = True
            break
    switched = switched or (lab == new).sum() > (lab == orig).sum()
    by_gene = pd.DataFrame(rows)
    Xout = tgt.X.copy()
    Xout[tgt.rows] = Xc
    summary = pd.DataFrame([{
        "target": tgt.target, "n_cells": n, "original_label": str(classes[orig]), "new_target": str(classes[new]),
        "alpha": alpha, "epsilon": epsilon, "n_genes_modified": len(modified), "n_genes_visited": len(rows) - 1,
        "frac_original_start": rows[0]["frac_original"], "frac_new_target_start": rows[0]["frac_new_target"],
        "frac_original_end": rows[-1]["frac_original"], "frac_new_target_end": rows[-1]["frac_new_target"],
        "switched": switched, "n_classifier_calls": tgt.n_calls,
    }])
    return CGDResult(X=Xout, modified_genes=modified, by_gene=by_gene, summary=summary,
                     original_label=str(classes[orig]), new_target=str(classes[new]), switched=bool(switched),
                     n_classifier_calls=tgt.n_calls, n_batched_calls=tgt.n_batched_calls,
                     wall_time_s=time.perf_counter() - t0)
