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
  ``<cls>`` attention);
- **any classifier with** ``single_gene_labels(Xc, gene_idx, V)``: its own exact answers, ``(names,
  labels(s, e))`` with answer codes into ``names`` (genes ``s:e`` x cells), abstentions included
  (:class:`~perturblab.classifiers.chetah.ChetahClassifier`: only the tree nodes whose selected genes hold
  the changed gene are re-ranked, incrementally). Exact answers need no re-scoring of near ties.

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

__all__ = ["AdditiveStage", "additive_calls", "additive_stage", "fast_cell_labels", "single_gene_fast"]

#: Random-forest path: at most this many cached (level, tree, cell) path entries (int64 each,
#: 128 MiB); larger clusters use the generic path.
MAX_PATH_ENTRIES = 2**24


def _is_plain(clf, cls) -> bool:
    t = type(clf)
    return isinstance(clf, cls) and t.predict is cls.predict and t.predict_cluster is cls.predict_cluster


def _sctype_weights(tgt, clf) -> tuple[np.ndarray, np.ndarray]:
    """scType's marker weights (markers + 1 x types, float64) and each gene's row in them (row -1, all zeros:
    a gene outside the markers, no effect)."""
    row = np.full(len(tgt.genes), -1, dtype=np.intp)
    row[np.asarray(clf.used_genes_, dtype=np.intp)] = np.arange(len(clf.used_genes_))
    W = clf.weights_.to_numpy(dtype=np.float64)
    return row, np.vstack([W, np.zeros((1, W.shape[1]))])


def _linear_scores(tgt, clf, gene_idx, V):
    row, W = _sctype_weights(tgt, clf)
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


def _own_hook(clf, name: str):
    """``clf``'s fast-path method ``name``, or ``None`` when absent or when a subclass overrides
    ``predict``/``predict_cluster`` below the class that defines it (the hook would not know the override)."""
    owner = next((c for c in type(clf).__mro__ if name in c.__dict__), None)
    if owner is None or not _is_plain(clf, owner):
        return None
    return getattr(clf, name)


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
    scorer = _own_hook(clf, "single_gene_scorer")  # a classifier's own fast path (see the module docstring)
    if scorer is not None:
        return scorer(tgt.Xc, gene_idx, V)
    return None


def fast_cell_labels(tgt, gene_idx: np.ndarray, V: np.ndarray, tol: float = 1e-4):
    """Per-cell answers of each gene of ``gene_idx`` modified alone (values ``V``, cells x genes), or ``None``
    when no fast path applies.

    Returns ``(names, codes, unsure)``: the sorted possible answers, answer codes into ``names`` (genes x
    cells) and the mask of "unsure" entries (top-two gap below ``tol``, where incremental sums may round
    differently from the classifier's own scoring; never set for exact answers). Counts one batched call per
    chunk (plus one for the unmodified rows)."""
    clf = tgt.classifier
    labeler = _own_hook(clf, "single_gene_labels") if tgt.per_cell and not tgt.callable else None
    if labeler is not None:
        names, answer = labeler(tgt.Xc, gene_idx, V)
        scores, k = None, len(names)
    else:
        scores = _scores_fn(tgt, gene_idx, V)
        if scores is None:
            return None
        names, k = np.asarray(clf.classes_).astype(str), len(clf.classes_)
    tgt.n_batched_calls += 1
    n = tgt.n_cells
    step = max(1, tgt.max_batch_values // max(1, n * max(k, 128)))
    labels = np.empty((len(gene_idx), n), dtype=np.intp)
    unsure = np.zeros((len(gene_idx), n), dtype=bool)
    for s in range(0, len(gene_idx), step):
        e = min(s + step, len(gene_idx))
        tgt.n_batched_calls += 1
        if scores is None:
            labels[s:e] = answer(s, e)
            continue
        S = scores(s, e)
        labels[s:e] = S.argmax(axis=2)
        unsure[s:e] = _top_two_unsure(S, tol)
    return np.asarray(names).astype(str), labels, unsure


def _majority(names: np.ndarray, labels: np.ndarray, unsure_cells: np.ndarray, n: int):
    """Cluster calls (majority vote, ties by sorted answer) of answer codes ``labels`` (variants x cells) and the
    variants whose majority could change if every unsure cell moved (vote margin <= 2 x unsure cells)."""
    k = len(names)
    counts = np.zeros((labels.shape[0], k), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(labels.shape[0]), n), labels.ravel()), 1)
    top = counts.argmax(axis=1)  # answers are sorted: first maximum = majority_vote's tie-break
    srt = np.sort(counts, axis=1)
    margin = srt[:, -1] - (srt[:, -2] if k > 1 else 0)
    n_unsure = unsure_cells.sum(axis=1)
    calls = [ClusterCall(label=names[t], score=counts[i, t] / n, n_cells=n) for i, t in enumerate(top)]
    return calls, np.flatnonzero((n_unsure > 0) & (margin <= 2 * n_unsure))


def _top_two_unsure(S: np.ndarray, tol: float) -> np.ndarray:
    """Entries (.. x cells) whose two best class scores (last axis) are closer than ``tol`` (relative)."""
    k = S.shape[-1]
    if k < 2:
        return np.zeros(S.shape[:-1], dtype=bool)
    top2 = np.partition(S, k - 2, axis=-1)[..., k - 2 :]
    return np.abs(top2[..., 1] - top2[..., 0]) < tol * (1.0 + np.abs(top2[..., 1]))


def single_gene_fast(tgt, gene_idx: np.ndarray, V: np.ndarray, tol: float = 1e-4) -> list[ClusterCall] | None:
    """Cluster calls of each gene of ``gene_idx`` modified alone (values ``V``, cells x genes),
    or ``None`` when no fast path applies to ``tgt.classifier``."""
    res = fast_cell_labels(tgt, gene_idx, V, tol)
    if res is None:
        return None
    classes, labels, unsure_cells = res
    tgt.n_calls += len(gene_idx)
    out, redo = _majority(classes, labels, unsure_cells, tgt.n_cells)
    if len(redo):
        tgt.n_calls -= len(redo)  # counted again by the generic path
        for i, c in zip(redo, tgt.classify_single_genes(gene_idx[redo], V[:, redo], fast=False)):
            out[i] = c
    return out


class AdditiveStage:
    """A classifier's first stage, additive over genes, on the target rows (the max-change fast path).

    ``base``: the stage's features of the unmodified rows (cells x F, float64); ``delta(gene_idx, V)``: their
    change when the genes ``gene_idx`` take the values ``V`` (cells x genes) together, the sum of each gene's own
    change; ``scores(F)``: class scores (cells x classes, argmax = the classifier's answer) of features ``F``.
    A grown gene set keeps its summed change, so evaluating it plus a few more genes costs those genes only.
    """

    def __init__(self, base: np.ndarray, delta, scores):
        self.base, self.delta, self.scores = base, delta, scores


def additive_stage(tgt) -> AdditiveStage | None:
    """The additive first stage of ``tgt.classifier`` on the target rows, or ``None``: scType's scores
    (linear in the markers), the MLP's first layer, or a classifier's own ``additive_stage(Xc)`` returning
    ``(base, delta, scores)`` (CellTypist)."""
    if not tgt.per_cell or tgt.callable:
        return None
    from ..classifiers.mlp import MLPClassifier
    from ..classifiers.sctype import ScTypeClassifier

    clf, Xc = tgt.classifier, tgt.Xc
    if _is_plain(clf, ScTypeClassifier):
        row, W = _sctype_weights(tgt, clf)
        return AdditiveStage(clf.decision_function(Xc).astype(np.float64),
                             lambda g, V: (V - Xc[:, g]).astype(np.float64) @ W[row[g]], lambda F: F)
    if _is_plain(clf, MLPClassifier):
        W1 = clf.first_layer_weight_.astype(np.float64)
        return AdditiveStage(clf.hidden1(Xc).astype(np.float64),
                             lambda g, V: (V - Xc[:, g]).astype(np.float64) @ W1[:, g].T, clf.from_hidden1)
    hook = _own_hook(clf, "additive_stage")  # returns (base, delta, scores) or None
    parts = hook(Xc) if hook is not None else None
    return AdditiveStage(*parts) if parts is not None else None


def additive_calls(tgt, stage: AdditiveStage, deltas: list[np.ndarray], fallback, tol: float = 1e-4):
    """Cluster calls of the variants whose stage features are ``stage.base + d`` for each ``d`` of ``deltas``
    (one batched call); a variant whose majority could change through near-tie cells is scored again by the
    classifier itself, through ``fallback(i)`` (its ``(gene_idx, values)`` item for the generic path)."""
    n = tgt.n_cells
    F = stage.base[None] + np.stack(deltas)
    S = np.asarray(stage.scores(F.reshape(-1, F.shape[2])), dtype=np.float64).reshape(len(deltas), n, -1)
    tgt.n_batched_calls += 1
    tgt.n_calls += len(deltas)
    out, redo = _majority(np.asarray(tgt.classifier.classes_).astype(str), S.argmax(axis=2),
                          _top_two_unsure(S, tol), n)
    if len(redo):
        tgt.n_calls -= len(redo)  # counted again by the generic path
        for i, c in zip(redo, tgt.classify_many([fallback(i) for i in redo])):
            out[i] = c
    return out
