"""Fast exhaustive single-gene scoring for classifiers with exploitable structure.

Changing gene ``g`` of the target cells is a local change of the cluster's input rows, so:

- **linear scores** (:class:`~perturblab.classifiers.sctype.ScTypeClassifier`:
  ``S = X[:, used] @ W``, label = argmax): a change by ``delta`` (a vector over the
  cells) gives ``S' = S + delta w_g`` with ``w_g`` the gene's weight row;
- **MLP** (:class:`~perturblab.classifiers.mlp.MLPClassifier`): the first layer is
  affine, ``H' = H + delta W1[:, g]``, and only the rest of the network runs
  (``from_hidden1``);
- **random forest** (:class:`~perturblab.classifiers.random_forest.RandomForestClassifier`):
  the leaf of every (tree, cell) pair of the unmodified cells is cached with its path;
  a pair can only move when its path holds a split on ``g``, so only those pairs descend
  again, from the first such split (where ``g`` takes its new value), and the class
  scores are the cached leaf-fraction sums plus the changed leaves' differences.

- **any classifier with** ``single_gene_scorer(Xc, gene_idx, V)``: its own function ``scores(s, e)`` giving the
  class scores (genes ``s:e`` x cells x classes, argmax = its label) of each single-gene variant, or ``None``
  (e.g. the transformer annotator of :mod:`perturblab.bridges.transformer`: a one-token update of the
  ``<cls>`` attention).

All reproduce the classifier's own per-cell labels and the majority vote of
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

__all__ = ["fast_cell_labels", "single_gene_fast"]

#: Random-forest path: at most this many cached (level, tree, cell) path entries (int64 each,
#: 128 MiB); larger clusters use the generic path.
MAX_PATH_ENTRIES = 2**24


def _is_plain(clf, cls) -> bool:
    t = type(clf)
    return isinstance(clf, cls) and t.predict is cls.predict and t.predict_cluster is cls.predict_cluster


def _linear_scores(tgt, clf, gene_idx, V):
    W = clf.weights_.to_numpy(dtype=np.float64)
    row = np.full(len(tgt.genes), -1, dtype=np.intp)
    row[np.asarray(clf.used_genes_, dtype=np.intp)] = np.arange(len(clf.used_genes_))
    W = np.vstack([W, np.zeros((1, W.shape[1]))])  # row -1: a gene outside the markers (no effect)
    base = clf.decision_function(tgt.Xc).astype(np.float64)
    delta = (np.asarray(V, dtype=np.float64) - tgt.Xc[:, gene_idx]).T  # genes x cells

    def scores(s, e):
        return base[None] + delta[s:e, :, None] * W[row[gene_idx[s:e]]][:, None, :]

    return scores


def _mlp_scores(tgt, clf, gene_idx, V):
    W1 = clf.first_layer_weight_.astype(np.float32)
    base = clf.hidden1(tgt.Xc)
    delta = (np.asarray(V, dtype=np.float64) - tgt.Xc[:, gene_idx]).T

    def scores(s, e):
        g = gene_idx[s:e]
        H = base[None] + delta[s:e, :, None].astype(np.float32) * W1[:, g].T[:, None, :]
        return clf.from_hidden1(H.reshape(-1, H.shape[2])).reshape(len(g), tgt.n_cells, -1)

    return scores


def _forest_scores(tgt, clf, gene_idx, V):
    """Class scores of each single-gene variant from the cached (tree, cell) paths, or ``None``
    when the paths would exceed ``MAX_PATH_ENTRIES``."""
    F = clf.flat_forest_
    n, n_trees, depth = tgt.n_cells, F.n_trees, F.max_depth
    n_pairs = n_trees * n
    if (depth + 1) * n_pairs > MAX_PATH_ENTRIES:
        return None
    XT = np.ascontiguousarray(tgt.Xc[:, F.used_features].T)  # used genes x cells
    flat = XT.ravel().astype(np.float32)
    feature = F.feature.astype(np.int64)
    offset = feature * n
    # path of every (tree, cell) pair of the unmodified cells; pair p = tree * n + cell
    path = np.empty((depth + 1, n_pairs), dtype=np.int64)
    node = np.repeat(F.roots.astype(np.int64), n)
    cell = np.tile(np.arange(n, dtype=np.int64), n_trees)
    path[0] = node
    for level in range(1, depth + 1):
        node = F.children[2 * node + (flat[offset[node] + cell] > F.threshold[node])].astype(np.int64)
        path[level] = node
    leaf = node
    base = F.value[leaf.reshape(n_trees, n)].sum(axis=0)  # cells x classes, as predict_proba * n_trees
    # first node splitting on each used gene on each pair's path (level-major order: first = topmost)
    lv, pr = np.nonzero(~F.is_leaf[path])
    key = feature[path[lv, pr]] * n_pairs + pr
    key, first = np.unique(key, return_index=True)
    start_node = path[lv[first], pr[first]]
    start_pair = key % n_pairs
    bounds = np.searchsorted(key // n_pairs, np.arange(len(F.used_features) + 1))
    compact = np.full(len(tgt.genes), -1, dtype=np.int64)
    compact[F.used_features] = np.arange(len(F.used_features))
    V = np.asarray(V, dtype=np.float32)

    def scores(s, e):
        gu = compact[gene_idx[s:e]]
        lo = np.where(gu >= 0, bounds[np.maximum(gu, 0)], 0)
        cnt = np.where(gu >= 0, bounds[np.maximum(gu, 0) + 1] - lo, 0)
        item = np.repeat(np.arange(e - s), cnt)  # gene (in the chunk) of each re-descending pair
        entry = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
        p, node = start_pair[entry], start_node[entry]
        c, g = p % n, gu[item]
        v = V[c, s + item]
        for level in range(1, depth + 1):  # the pair's gene takes its new value, the others their old one
            f = feature[node]
            x = np.where(f == g, v, flat[f * n + c])
            node = F.children[2 * node + (x > F.threshold[node])].astype(np.int64)
            if level % 4 == 0 and F.is_leaf[node].all():
                break
        moved = node != leaf[p]
        dv = F.value[node[moved]] - F.value[leaf[p[moved]]]
        at = item[moved] * n + c[moved]
        S = np.repeat(base[None], e - s, axis=0).reshape(-1, base.shape[1])
        for k in range(base.shape[1]):
            S[:, k] += np.bincount(at, weights=dv[:, k], minlength=(e - s) * n)
        return (S / n_trees).reshape(e - s, n, -1)

    return scores


def _scores_fn(tgt, gene_idx, V):
    """The fast class-score function of ``tgt.classifier`` for single-gene variants, or ``None``."""
    if not tgt.per_cell or tgt.callable:
        return None
    from ..classifiers.mlp import MLPClassifier
    from ..classifiers.random_forest import RandomForestClassifier
    from ..classifiers.sctype import ScTypeClassifier

    clf = tgt.classifier
    if _is_plain(clf, ScTypeClassifier):
        return _linear_scores(tgt, clf, gene_idx, V)
    if _is_plain(clf, MLPClassifier):
        return _mlp_scores(tgt, clf, gene_idx, V)
    if _is_plain(clf, RandomForestClassifier):
        return _forest_scores(tgt, clf, gene_idx, V)
    scorer = getattr(clf, "single_gene_scorer", None)  # a classifier's own fast path (see the module docstring)
    if callable(scorer):
        return scorer(tgt.Xc, gene_idx, V)
    return None


def fast_cell_labels(tgt, gene_idx: np.ndarray, V: np.ndarray, tol: float = 1e-4):
    """Per-cell label codes (genes x cells, into ``classes_``) of each gene of ``gene_idx`` modified
    alone (values ``V``, cells x genes) and the mask of "unsure" entries (top-two gap below ``tol``,
    where incremental sums may round differently from the classifier's own scoring); ``None`` when no
    fast path applies. Counts one batched call per chunk (plus one for the unmodified rows)."""
    scores = _scores_fn(tgt, gene_idx, V)
    if scores is None:
        return None
    clf = tgt.classifier
    tgt.n_batched_calls += 1
    n, k = tgt.n_cells, len(clf.classes_)
    step = max(1, tgt.max_batch_values // max(1, n * max(k, 128)))
    labels = np.empty((len(gene_idx), n), dtype=np.intp)
    unsure = np.zeros((len(gene_idx), n), dtype=bool)
    for s in range(0, len(gene_idx), step):
        S = scores(s, min(s + step, len(gene_idx)))
        labels[s : s + step] = S.argmax(axis=2)
        top2 = np.partition(S, k - 2, axis=2)[:, :, k - 2 :] if k > 1 else np.zeros(S.shape[:2] + (2,))
        gap = np.abs(top2[:, :, 1] - top2[:, :, 0])
        unsure[s : s + step] = gap < tol * (1.0 + np.abs(top2[:, :, 1]))
        tgt.n_batched_calls += 1
    return labels, unsure


def single_gene_fast(tgt, gene_idx: np.ndarray, V: np.ndarray, tol: float = 1e-4) -> list[ClusterCall] | None:
    """Cluster calls of each gene of ``gene_idx`` modified alone (values ``V``, cells x genes),
    or ``None`` when no fast path applies to ``tgt.classifier``."""
    res = fast_cell_labels(tgt, gene_idx, V, tol)
    if res is None:
        return None
    labels, unsure_cells = res
    clf = tgt.classifier
    n, k = tgt.n_cells, len(clf.classes_)
    n_unsure = unsure_cells.sum(axis=1)
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
