"""Random-forest cell-type classifier (adverSCarial's scRF) with an exact vectorised forest evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..exceptions import InputError
from ._preprocess import log1p_matrix, model_input
from .base import CellTypeClassifier

__all__ = ["FlatForest", "RandomForestClassifier", "balanced_sample"]

#: (tree, cell) pairs traversed together; bounds the memory of one chunk (~100 bytes per pair).
_PAIRS_PER_CHUNK = 2**19
#: Largest input (matrix entries, float32) that RandomForestClassifier.predict_proba remembers.
_CACHE_MAX_VALUES = 2**22


def balanced_sample(labels, n_per_class: int, random_state: int = 0) -> np.ndarray:
    """Indices of ``n_per_class`` cells per label, drawn without replacement, or with replacement
    for a label with fewer cells (seeded; labels in sorted order)."""
    if n_per_class < 1:
        raise InputError(f"n_per_class must be >= 1, got {n_per_class}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(random_state)
    picks = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        picks.append(rng.choice(idx, size=n_per_class, replace=len(idx) < n_per_class))
    return np.concatenate(picks)


def _round_down_float32(thr: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for float32 ``x``, ``x <= thr`` exactly when
    ``x <= _round_down_float32(thr)`` (scikit-learn compares float32 inputs with float64 thresholds)."""
    with np.errstate(over="ignore"):  # beyond the float32 range: inf, stepped down to the float32 maximum
        t = thr.astype(np.float32)
    above = t.astype(np.float64) > thr
    t[above] = np.nextafter(t[above], np.float32(-np.inf))
    return t


@dataclass(frozen=True)
class FlatForest:
    """All trees of a fitted scikit-learn forest classifier as concatenated node arrays.

    Node ``k`` (global numbering: tree ``t``'s nodes start at ``roots[t]``) sends a cell to
    ``children[2k]`` (left) when its value of input column ``used_features[feature[k]]`` is
    ``<= threshold[k]``, else to ``children[2k + 1]``; a leaf points to itself twice, so
    ``max_depth`` steps from the roots bring every (tree, cell) pair to its leaf. ``threshold``
    holds scikit-learn's float64 thresholds rounded down to float32, which gives exactly
    scikit-learn's ``X32 <= threshold`` decisions on float32 inputs. ``value`` holds each node's
    class fractions (scikit-learn >= 1.4's ``tree_.value``, normalised per node if needed).

    :meth:`predict_proba` equals ``model.predict_proba`` (the trees' leaf fractions summed in tree
    order then divided by the number of trees, as scikit-learn does; bit-identical in our tests
    with scikit-learn 1.9) at a fraction of its cost on a few hundred cells, because all (tree,
    cell) pairs descend together, one level per step, with numpy gathers instead of one
    scikit-learn call per tree. :meth:`reapply` updates known leaves after a few genes change:
    only the trees that split on a changed gene descend again (``tree_features``: trees x used
    features, True where the tree splits on the feature).
    """

    feature: np.ndarray
    threshold: np.ndarray
    children: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    used_features: np.ndarray
    max_depth: int
    n_features: int
    tree_features: np.ndarray

    @classmethod
    def from_sklearn(cls, model) -> FlatForest:
        """Flatten a fitted ``sklearn.ensemble.RandomForestClassifier`` / ``ExtraTreesClassifier``.

        Raises
        ------
        ValueError
            For a multi-output forest (one label per cell is expected).
        """
        if getattr(model, "n_outputs_", 1) != 1:
            raise InputError("FlatForest supports single-output forests only")
        trees = [est.tree_ for est in model.estimators_]
        sizes = np.array([t.node_count for t in trees], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        leaf = np.concatenate([t.children_left < 0 for t in trees])
        feat = np.concatenate([t.feature for t in trees])
        used = np.unique(feat[~leaf])
        pos = np.zeros(max(int(model.n_features_in_), 1), dtype=np.int64)
        pos[used] = np.arange(len(used))
        ids = np.arange(int(sizes.sum()))
        left = np.concatenate([t.children_left + o for t, o in zip(trees, roots)])
        right = np.concatenate([t.children_right + o for t, o in zip(trees, roots)])
        children = np.stack([np.where(leaf, ids, left), np.where(leaf, ids, right)], axis=1).ravel()
        thr = np.concatenate([t.threshold for t in trees])
        thr = np.where(leaf, np.finfo(np.float32).max, thr)  # a leaf always "goes left" to itself
        value = np.concatenate([t.value[:, 0, :] for t in trees]).astype(np.float64)
        sums = value.sum(axis=1, keepdims=True)
        if not np.allclose(sums, 1.0):  # class counts (scikit-learn < 1.4): normalise as its trees did
            value = value / np.where(sums == 0, 1.0, sums)
        index = np.int32 if len(children) < 2**31 else np.int64
        feature = np.where(leaf, 0, pos[np.maximum(feat, 0)])
        tree_features = np.zeros((len(trees), len(used)), dtype=bool)
        tree_features[np.repeat(np.arange(len(trees)), sizes)[~leaf], feature[~leaf]] = True
        return cls(feature=feature.astype(index), threshold=_round_down_float32(thr), children=children.astype(index),
                   is_leaf=leaf, value=value, roots=roots.astype(index), used_features=used,
                   max_depth=max(int(t.max_depth) for t in trees), n_features=int(model.n_features_in_),
                   tree_features=tree_features)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(f"X must be cells x {self.n_features} features, got shape {X.shape}")
        return X

    def _descend(self, XT: np.ndarray, n: int, roots: np.ndarray | None = None) -> np.ndarray:
        """Leaves (trees x n) of the ``n`` cells whose used features are ``XT`` (used x n, C order),
        in all trees or in the trees of ``roots`` (their root nodes).

        All (tree, cell) pairs step down one level at a time (gathers into preallocated buffers;
        indices are in range by construction, so ``mode="clip"`` skips bounds checks). Every second
        level, once at least half of the pairs sit in a leaf, those are set aside and only the
        others keep descending (paths are ~9 levels on average, the deepest ~30)."""
        index = np.int32 if XT.size < 2**31 and len(self.children) < 2**31 else np.int64
        flat = XT.ravel()
        offset = self.feature.astype(index) * np.asarray(n, dtype=index)  # start of the node's feature row in flat
        children, thr = self.children.astype(index, copy=False), self.threshold
        roots = self.roots if roots is None else roots
        node = np.repeat(roots.astype(index), n)
        cell = np.tile(np.arange(n, dtype=index), len(roots))
        # leaves of the pairs set aside, and the positions of the active ones (set together with out)
        out: np.ndarray | None = None
        pos = np.empty(0, dtype=np.intp)

        def buffers(m):
            return np.empty(m, index), np.empty(m, index), np.empty(m, np.float32), np.empty(m, np.float32), \
                np.empty(m, bool)

        f, nxt, x, t, right = buffers(len(node))
        for level in range(1, self.max_depth + 1):
            np.take(offset, node, out=f, mode="clip")
            f += cell
            np.take(flat, f, out=x, mode="clip")
            np.take(thr, node, out=t, mode="clip")
            np.greater(x, t, out=right)
            node += node
            node += right
            np.take(children, node, out=nxt, mode="clip")
            node, nxt = nxt, node
            if level % 2 or level == self.max_depth:
                continue
            done = np.take(self.is_leaf, node, mode="clip")
            n_done = np.count_nonzero(done)
            if 2 * n_done < len(node):
                continue
            if out is None:
                out, pos = node.copy(), np.arange(len(node))
            else:
                out[pos[done]] = node[done]
            if n_done == len(node):
                return out.reshape(len(roots), n)
            keep = ~done
            node, cell, pos = node[keep], cell[keep], pos[keep]
            f, nxt, x, t, right = buffers(len(node))
        if out is None:
            return node.reshape(len(roots), n)
        out[pos] = node
        return out.reshape(len(roots), n)

    def _chunks(self, X: np.ndarray):
        step = max(1, _PAIRS_PER_CHUNK // max(1, self.n_trees))
        for s in range(0, X.shape[0], step):
            sub = X[s : s + step]
            yield s, self._descend(np.ascontiguousarray(sub[:, self.used_features].T), sub.shape[0])

    def apply(self, X) -> np.ndarray:
        """Leaf of every (tree, cell): ``(n_trees, n_cells)`` global node ids (``- roots[:, None]`` gives
        scikit-learn's per-tree ``apply`` ids). ``X``: cells x features, cast to float32."""
        X = self._check(X)
        out = np.empty((self.n_trees, X.shape[0]), dtype=self.children.dtype)
        for s, leaves in self._chunks(X):
            out[:, s : s + leaves.shape[1]] = leaves
        return out

    def reapply(self, X, X_prev, leaves_prev: np.ndarray) -> np.ndarray:
        """Leaves of ``X`` from the leaves ``leaves_prev`` (:meth:`apply`) of ``X_prev``, same shape.

        A tree's leaf for a cell depends only on the features that tree splits on, so only the
        trees splitting on a changed feature descend again, for the changed cells (exact; a full
        :meth:`apply` when that is most of the pairs).
        """
        X = self._check(X)
        if X_prev.shape != X.shape or leaves_prev.shape != (self.n_trees, X.shape[0]):
            raise InputError(f"X_prev {X_prev.shape} and leaves_prev {leaves_prev.shape} do not match X {X.shape}")
        diff = X_prev != X
        rows = np.flatnonzero(diff.any(axis=1))
        if not len(rows):
            return leaves_prev
        changed = np.flatnonzero(diff[rows].any(axis=0))
        pos = np.minimum(np.searchsorted(self.used_features, changed), max(len(self.used_features) - 1, 0))
        cols = pos[self.used_features[pos] == changed] if len(self.used_features) else pos[:0]
        trees = np.flatnonzero(self.tree_features[:, cols].any(axis=1))
        if not len(trees):
            return leaves_prev
        if 2 * len(trees) * len(rows) > self.n_trees * X.shape[0]:
            return self.apply(X)
        XT = np.ascontiguousarray(X[rows][:, self.used_features].T)
        leaves = leaves_prev.copy()
        leaves[np.ix_(trees, rows)] = self._descend(XT, len(rows), self.roots[trees])
        return leaves

    def leaf_proba(self, leaves: np.ndarray) -> np.ndarray:
        """Class probabilities (cells x classes) of leaves (n_trees x cells): the trees' leaf
        fractions summed in tree order and divided by the number of trees, as scikit-learn."""
        out = np.empty((leaves.shape[1], self.value.shape[1]), dtype=np.float64)
        step = max(1, _PAIRS_PER_CHUNK // max(1, self.n_trees))
        for s in range(0, leaves.shape[1], step):
            out[s : s + step] = self.value[leaves[:, s : s + step]].sum(axis=0)
        out /= self.n_trees
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Mean of the trees' leaf class fractions (cells x classes), as ``model.predict_proba``."""
        return self.leaf_proba(self.apply(X))


class RandomForestClassifier(CellTypeClassifier):
    """Random forest on log1p-normalised expression (scikit-learn), as adverSCarial's scRF.

    Training set: ``n_per_class`` cells per cell type (100 by default), sampled without
    replacement, or with replacement when a type has fewer cells (seeded by ``random_state``);
    then ``sklearn.ensemble.RandomForestClassifier(n_estimators=500)`` with its own bootstrap.
    Prediction uses :class:`FlatForest` (the same numbers as the scikit-learn model, 2-4x
    faster on the few hundred cells an attack scores per call; ``model_`` stays available as
    the reference). :meth:`predict_proba` remembers its last ``leaf_cache_size`` inputs (of
    at most 2**22 entries, one per shape) with their leaves; a new input of the same shape as
    a remembered one only re-descends the trees that split on a gene that differs (exact:
    e.g. CGD's calls, which change one gene at a time, re-descend ~1% of the trees).

    Parameters
    ----------
    n_estimators
        Number of trees (500 as in the paper).
    n_per_class
        Balanced cells per cell type (100 as in the paper).
    n_jobs
        Threads for training (scikit-learn ``n_jobs``); results do not depend on it.
        Prediction is single-threaded numpy.
    random_state
        Seed of the balanced sampling and of the forest.

    Attributes
    ----------
    model_
        The fitted ``sklearn.ensemble.RandomForestClassifier``.
    flat_forest_
        Its :class:`FlatForest` (built on first use for a model fitted by an older perturblab).
    used_genes_
        Indices into ``genes_`` of the genes used in at least one split (all other genes
        cannot change the output).
    """

    representation = "log1p"
    standard_preprocess = True
    score_kind = "proba"
    #: Inputs remembered by :meth:`predict_proba` (0 disables the cache).
    leaf_cache_size: ClassVar[int] = 4

    def __init__(self, n_estimators: int = 500, n_per_class: int = 100, n_jobs: int | None = None,
                 random_state: int = 0):
        self.n_estimators = n_estimators
        self.n_per_class = n_per_class
        self.n_jobs = n_jobs
        self.random_state = random_state

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> log1p-normalised float32 matrix (cells x ``genes_``)."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> RandomForestClassifier:
        """Train on raw-count ``adata`` (cells x genes) with labels in ``adata.obs[label_key]``."""
        from sklearn.ensemble import RandomForestClassifier as _RF

        y = self._labels(adata, label_key)
        X = log1p_matrix(adata)
        idx = balanced_sample(y, self.n_per_class, self.random_state)
        model = _RF(n_estimators=self.n_estimators, n_jobs=self.n_jobs, random_state=self.random_state)
        model.fit(X[idx], y[idx])
        self.model_ = model
        self._flat = FlatForest.from_sklearn(model)
        self._leaf_cache: list[tuple[np.ndarray, np.ndarray]] = []
        self.genes_ = np.asarray(adata.var_names.astype(str))
        self.classes_ = model.classes_.astype(object)
        self.used_genes_ = self._flat.used_features
        return self

    @property
    def flat_forest_(self) -> FlatForest:
        """The fitted forest as a :class:`FlatForest`."""
        self._check_fitted()
        if getattr(self, "_flat", None) is None:
            self._flat = FlatForest.from_sklearn(self.model_)
        return self._flat

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Forest class probabilities (mean of the trees' leaf frequencies), ``classes_`` order."""
        X = self._check_input(X)
        F = self.flat_forest_
        if self.leaf_cache_size < 1 or X.size > _CACHE_MAX_VALUES:
            return F.leaf_proba(F.apply(X))
        cache = getattr(self, "_leaf_cache", [])
        hit = next((entry for entry in reversed(cache) if entry[0].shape == X.shape), None)
        leaves = F.apply(X) if hit is None else F.reapply(X, *hit)
        keep = [entry for entry in cache if entry is not hit]
        self._leaf_cache = keep[max(0, len(keep) - self.leaf_cache_size + 1):] + [(X.copy(), leaves)]
        return F.leaf_proba(leaves)

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: the tree-vote fractions (:meth:`predict_proba`; their log would be
        -inf for classes no tree votes for)."""
        return np.asarray(self.predict_proba(X), dtype=np.float64)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_leaf_cache", None)  # remembered inputs are not part of the model
        return state
