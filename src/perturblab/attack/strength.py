"""Response to modification strength: how many single genes flip a cluster, how many cells move.

The adverSCarial paper (Fievet et al.) states that tree ensembles plateau beyond medium
modifications and that MLPs are unresponsive below medium modifications and very vulnerable
beyond ("thousands of possible attacks"). :func:`strength_response` measures it: for each cluster
and each modification of a strength ladder (``decile-9`` ... ``decile+9``, ``perc1`` / ``perc99``,
``negative_aberrant`` / ``positive_aberrant``, fixed values), every candidate gene is modified alone
in the cluster's cells (exhaustive single-gene search) and the per-cell answers are recorded:

- ``n_flipping_genes``: genes whose modification alone changes the cluster's majority answer;
- ``frac_cells_changed_mean`` / ``_max``: over the evaluated genes, the mean and largest fraction of the
  cluster's cells whose own answer changed (a gene can move many cells without flipping the majority).

Genes outside ``classifier.used_genes_`` are provably without effect: they count as evaluated, with no
cell changed. Per-cell answers come from the classifiers' fast paths (scType, MLP, random forest;
exact: near-tied cells are re-scored by the classifier itself) or from stacked ``predict`` calls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..classifiers.base import majority_vote
from ._engine import AttackTarget
from .modifications import get_modification
from .single_gene import candidate_genes

__all__ = ["STRENGTH_LADDER", "single_gene_cell_labels", "strength_order", "strength_response"]

#: The default ladder: deciles -9..-1, +1..+9, perc1/perc99, the aberrant values, fixed 0.
STRENGTH_LADDER: tuple[str, ...] = (
    *(f"decile-{d}" for d in range(9, 0, -1)), *(f"decile+{d}" for d in range(1, 10)),
    "perc1", "perc99", "negative_aberrant", "positive_aberrant", "fixed",
)
_DECILE = re.compile(r"^decile([+-])(\d+(?:\.\d+)?)$")


def strength_order(modification: str) -> float:
    """Signed position of a modification on the strength axis (for plots): decile+-X -> +-X,
    perc99 / perc1 -> +-10, positive / negative aberrant -> +-11, anything else (fixed, random, custom) NaN."""
    m = _DECILE.match(str(modification))
    if m:
        return float(m.group(2)) * (1 if m.group(1) == "+" else -1)
    return {"perc99": 10.0, "perc1": -10.0, "positive_aberrant": 11.0, "negative_aberrant": -11.0}.get(
        str(modification), float("nan"))


def single_gene_cell_labels(classifier, X, clusters, target: str, modification="perc99", *, genes=None,
                            gene_names=None, fixed_value: float = 3.0, random_state: int = 0,
                            max_batch_values: int = 2**24):
    """Per-cell answers of cluster ``target`` with each candidate gene modified alone.

    Parameters
    ----------
    classifier
        A fitted per-cell classifier (:mod:`perturblab.classifiers`).
    X
        Dense cells x genes model input.
    clusters, target
        Cluster label per cell; the cluster whose cells are modified.
    modification, fixed_value, random_state
        See :func:`~perturblab.attack.modifications.get_modification` (columnwise modifications only).
    genes
        Candidate genes (default: all).

    Returns
    -------
    (gene_idx, labels, baseline)
        Column indices of the evaluated genes (those in ``used_genes_``), their per-cell answers
        (evaluated genes x cluster cells, str) and the unmodified cells' answers.

    Raises
    ------
    InputError
        A cluster-level classifier or a non-columnwise custom modification.
    """
    from ..exceptions import InputError
    from ._fastpath import fast_cell_labels

    mod = get_modification(modification, fixed_value=fixed_value, random_state=random_state)
    if not mod.columnwise:
        raise InputError(f"modification {mod.name!r} is not gene-wise; use a columnwise modification")
    tgt = AttackTarget(classifier, X, clusters, target, gene_names=gene_names, max_batch_values=max_batch_values)
    classifier = tgt.classifier
    if not tgt.per_cell:
        raise InputError("per-cell answers need a per-cell classifier (predict on rows)")
    idx = candidate_genes(tgt, genes)
    idx = idx[tgt.used_gene_mask()[idx]]
    baseline = np.asarray(classifier.predict(tgt.Xc)).astype(str)
    if not len(idx):
        return idx, np.empty((0, tgt.n_cells), dtype=str), baseline
    V = mod.values(tgt.X, tgt.mask, idx)
    fast = fast_cell_labels(tgt, idx, V)
    if fast is not None:
        classes, codes, unsure = fast
        labels = classes[codes].astype(object)
        gi, ci = np.nonzero(unsure)
        if len(gi):  # near ties: the classifier's own answer on exactly those rows
            rows = tgt.Xc[ci].copy()
            rows[np.arange(len(ci)), idx[gi]] = V[ci, gi]
            labels[gi, ci] = np.asarray(classifier.predict(rows)).astype(str)
        return idx, labels.astype(str), baseline
    n, D = tgt.n_cells, tgt.X.shape[1]
    step = max(1, tgt.max_batch_values // max(1, n * D))
    out = np.empty((len(idx), n), dtype=object)
    cells = np.arange(n)
    for s in range(0, len(idx), step):
        g = idx[s : s + step]
        B = np.empty((len(g), n, D), dtype=np.float32)
        B[:] = tgt.Xc
        B[np.arange(len(g))[:, None], cells[None, :], g[:, None]] = V[:, s : s + step].T
        out[s : s + len(g)] = np.asarray(classifier.predict(B.reshape(-1, D))).astype(str).reshape(len(g), n)
    return idx, out.astype(str), baseline


def strength_response(
    classifier,
    X,
    clusters,
    targets: Sequence[str] | None = None,
    *,
    modifications: Sequence[str] = STRENGTH_LADDER,
    fixed_values: Sequence[float] = (0.0,),
    genes=None,
    gene_names=None,
    name: str | None = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """Strength-response table: single-gene flips and moved cells per cluster x modification.

    Parameters
    ----------
    classifier
        A fitted per-cell classifier.
    X
        Dense cells x genes model input (scaled z-scores for scType / SVM, log1p for the others).
    clusters, targets
        Cluster label per cell; clusters to attack (default: all, in order of appearance).
    modifications
        Modification names (default :data:`STRENGTH_LADDER`); ``"fixed"`` is run once per value of
        ``fixed_values``.
    genes
        Candidate genes (default: all; a shared gene panel keeps classifiers comparable and the run short).
    name
        Classifier name in the table.

    Returns
    -------
    pandas.DataFrame
        One row per cluster x modification (x fixed value): classifier, cluster, modification,
        fixed_value, strength (:func:`strength_order`), n_cells, baseline_label, n_genes_candidates,
        n_genes_evaluated, n_flipping_genes, frac_flipping_genes (of the candidates),
        frac_cells_changed_mean (over the candidates), frac_cells_changed_max, wall_time_s.

    Examples
    --------
    How many of ten marker genes flip scType's B cells at each strength of modification:

    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.ScTypeClassifier().fit(train)
    >>> X = clf.preprocess(test)
    >>> panel = ["MS4A1", "CD79A", "CD79B", "SSR4", "CD74", "HLA-DRA", "NKG7", "GNLY", "CD3E", "LYZ"]
    >>> tab = plab.attack.strength_response(clf, X, test.obs["cell_type"], ["B"], genes=panel)
    >>> print(tab[tab["modification"].isin(["perc1", "perc99", "negative_aberrant"])][
    ...     ["modification", "n_flipping_genes"]].to_string(index=False))
         modification  n_flipping_genes
                perc1                 2
               perc99                 0
    negative_aberrant                 6
    >>> ax = plab.attack.pl.strength_response(tab)
    """
    clusters = np.asarray(clusters).astype(str)
    targets = list(dict.fromkeys(clusters.tolist())) if targets is None else [str(t) for t in targets]
    n_cand = len(genes) if genes is not None else np.asarray(X).shape[1]
    rows = []
    for t in targets:
        for m in modifications:
            for fv in (fixed_values if m == "fixed" else (np.nan,)):
                t0 = time.perf_counter()
                idx, labels, base = single_gene_cell_labels(classifier, X, clusters, t, m, genes=genes,
                                                            gene_names=gene_names, random_state=random_state,
                                                            fixed_value=3.0 if np.isnan(fv) else float(fv))
                base_call = majority_vote(base).label
                moved = (labels != base[None, :]).mean(axis=1) if len(idx) else np.zeros(0)
                flips = sum(majority_vote(row).label != base_call for row in labels)
                rows.append({
                    "classifier": name or type(classifier).__name__, "cluster": t, "modification": m,
                    "fixed_value": fv, "strength": strength_order(m), "n_cells": len(base), "baseline_label": base_call,
                    "n_genes_candidates": int(n_cand), "n_genes_evaluated": len(idx), "n_flipping_genes": int(flips),
                    "frac_flipping_genes": flips / max(1, n_cand),
                    "frac_cells_changed_mean": float(moved.sum() / max(1, n_cand)),
                    "frac_cells_changed_max": float(moved.max()) if len(moved) else 0.0,
                    "wall_time_s": time.perf_counter() - t0,
                })
    return pd.DataFrame(rows)
