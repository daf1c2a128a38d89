"""Fast exhaustive single-gene scoring for classifiers with exploitable structure.

Changing gene ``g`` of the target cells by ``delta`` (a vector over those cells)
is a rank-one change of the cluster's input rows, so:

- **linear scores** (:class:`~perturblab.classifiers.sctype.ScTypeClassifier`:
  ``S = X[:, used] @ W``, label = argmax): ``S' = S + delta w_g`` with ``w_g`` the
  gene's weight row;
- **MLP** (:class:`~perturblab.classifiers.mlp.MLPClassifier`): the first layer is
  affine, ``H' = H + delta W1[:, g]``, and only the rest of the network runs
  (``from_hidden1``).

Both reproduce the classifier's own per-cell labels and the majority vote of
:meth:`~perturblab.classifiers.base.CellTypeClassifier.predict_cluster`. Because
the incremental sums round differently from a full recomputation, a cell whose
top-two gap is below ``tol`` is "unsure"; a variant whose majority could change if
every unsure cell moved (vote margin <= 2 x unsure cells) is re-scored through the
generic stacked path, so the answers equal the generic path's. A fast path only
applies when the classifier does not override ``predict``/``predict_cluster``;
otherwise ``None`` is returned and the engine falls back to the generic path.
Counting: each gene is one cluster-level evaluation (``n_calls``); each
vectorised chunk (and the one scoring of the unmodified rows) is one batched call.
"""

from __future__ import annotations

import numpy as np

from ..classifiers.base import ClusterCall

__all__ = ["single_gene_fast"]


def _is_plain(clf, cls) -> bool:
    t = type(clf)
    return isinstance(clf, cls) and t.predict is cls.predict and t.predict_cluster is cls.predict_cluster


def single_gene_fast(tgt, gene_idx: np.ndarray, V: np.ndarray, tol: float = 1e-4) -> list[ClusterCall] | None:
    """Cluster calls of each gene of ``gene_idx`` modified alone (values ``V``, cells x genes),
    or ``None`` when no fast path applies to ``tgt.classifier``."""
    if not tgt.per_cell or tgt.callable:
        return None
    from ..classifiers.mlp import MLPClassifier
    from ..classifiers.sctype import ScTypeClassifier

    clf = tgt.classifier
    if _is_plain(clf, ScTypeClassifier):
        W = clf.weights_.to_numpy(dtype=np.float64)
        row = np.full(len(tgt.genes), -1, dtype=np.intp)
        row[np.asarray(clf.used_genes_, dtype=np.intp)] = np.arange(len(clf.used_genes_))
        W = np.vstack([W, np.zeros((1, W.shape[1]))])  # row -1: a gene outside the markers (no effect)
        base = clf.decision_function(tgt.Xc).astype(np.float64)

        def scores(d, g):  # d: genes x cells, g: gene indices
            return base[None] + d[:, :, None] * W[row[g]][:, None, :]
    elif _is_plain(clf, MLPClassifier):
        W1 = clf.first_layer_weight_.astype(np.float32)
        base = clf.hidden1(tgt.Xc)

        def scores(d, g):
            H = base[None] + d[:, :, None].astype(np.float32) * W1[:, g].T[:, None, :]
            P = clf.from_hidden1(H.reshape(-1, H.shape[2]))
            return P.reshape(len(g), tgt.n_cells, -1)
    else:
        return None
    tgt.n_batched_calls += 1
    delta = (np.asarray(V, dtype=np.float64) - tgt.Xc[:, gene_idx]).T  # genes x cells
    n, k = tgt.n_cells, len(clf.classes_)
    step = max(1, tgt.max_batch_values // max(1, n * max(k, 128)))
    labels = np.empty((len(gene_idx), n), dtype=np.intp)
    n_unsure = np.zeros(len(gene_idx), dtype=np.int64)
    for s in range(0, len(gene_idx), step):
        S = scores(delta[s : s + step], gene_idx[s : s + step])
        labels[s : s + step] = S.argmax(axis=2)
        top2 = np.partition(S, k - 2, axis=2)[:, :, k - 2 :] if k > 1 else np.zeros(S.shape[:2] + (2,))
        gap = np.abs(top2[:, :, 1] - top2[:, :, 0])
        n_unsure[s : s + step] = (gap < tol * (1.0 + np.abs(top2[:, :, 1]))).sum(axis=1)
        tgt.n_batched_calls += 1
    tgt.n_calls += len(gene_idx)
    counts = np.zeros((len(gene_idx), k), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(gene_idx)), n), labels.ravel()), 1)
    top = counts.argmax(axis=1)  # classes_ are sorted: first maximum = majority_vote's tie-break
    srt = np.sort(counts, axis=1)
    margin = srt[:, -1] - (srt[:, -2] if k > 1 else 0)
    unsure = (n_unsure > 0) & (margin <= 2 * n_unsure)
    classes = np.asarray(clf.classes_).astype(str)
    out = [ClusterCall(label=classes[t], score=counts[i, t] / n, n_cells=n) for i, t in enumerate(top)]
    redo = np.flatnonzero(unsure)
    if len(redo):
        tgt.n_calls -= len(redo)  # counted again by the generic path
        for i, c in zip(redo, tgt.classify_single_genes(gene_idx[redo], V[:, redo], fast=False)):
            out[i] = c
    return out
