"""The attack engine: one classifier, one matrix, one target cluster, counted calls.

:class:`AttackTarget` hides the two kinds of classifiers an attack can face:

- a **per-cell** classifier following :mod:`perturblab.classifiers.base`
  (``per_cell = True``): a cell's prediction depends on its own row only, so
  only the target cluster's rows (the only ones an attack changes) are
  re-scored; many modified copies of those rows are stacked into one batch
  (memory-bounded chunks of at most ``max_batch_values`` matrix entries) and
  scored with one ``predict`` call per chunk;
- a **cluster-level** classifier: a protocol object with ``per_cell = False``
  (its ``predict_cluster`` sees the whole matrix) or adverSCarial's contract, a
  callable ``f(X, clusters, target)`` returning ``(label, score)`` (or an object
  with ``label``/``score`` attributes such as
  :class:`~perturblab.classifiers.base.ClusterCall`), called once per variant.

Two counters are kept: ``n_calls`` counts *cluster-level evaluations*, one per
modified variant, i.e. what adverSCarial would have paid as classifier calls
(each of its calls reclassifies the whole dataset); ``n_batched_calls`` counts
the classifier invocations actually made (one batch evaluates many variants).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import check_finite
from ..classifiers.base import CellTypeClassifier, ClusterCall, majority_vote
from ..exceptions import InputError, PerturblabError, UnknownNameError

__all__ = ["AttackTarget", "as_cluster_call"]

NA_LABELS = frozenset({"NA", "nan", "None", ""})


def as_cluster_call(res, n_cells: int) -> ClusterCall:
    """Normalise a classifier answer (ClusterCall, object with label/score or
    prediction/odd, or a ``(label, score, ...)`` sequence) to a :class:`ClusterCall`."""
    if hasattr(res, "label") and hasattr(res, "score"):
        label, score = res.label, res.score
    elif hasattr(res, "prediction"):
        label, score = res.prediction, getattr(res, "odd", np.nan)
    elif isinstance(res, Sequence) and not isinstance(res, str) and len(res) >= 2:
        label, score = res[0], res[1]
    else:
        raise TypeError(
            "a cluster-level classifier must return (label, score), a ClusterCall or an object with "
            f"label/score attributes; got {type(res).__name__}"
        )
    try:
        score = float(score)
    except (TypeError, ValueError):
        score = float("nan")
    return ClusterCall(label="NA" if label is None else str(label), score=score, n_cells=n_cells)


def _overrides_cluster_call(clf) -> bool:
    fn = getattr(type(clf), "predict_cluster", None)
    return fn is not None and fn is not CellTypeClassifier.predict_cluster


class AttackTarget:
    """A classifier, its model-input matrix, the clusters and the target cluster.

    Parameters
    ----------
    classifier
        A fitted :class:`~perturblab.classifiers.base.CellTypeClassifier` (or any object
        with ``predict`` and ``per_cell``), a fitted scikit-learn estimator (wrapped with
        :func:`perturblab.classifiers.wrap` over ``gene_names``), or a cluster-level callable
        ``f(X, clusters, target) -> (label, score)``. Anything else raises one error saying how to wrap it.
    X
        Dense cells x genes model-input matrix (the output of ``classifier.preprocess``;
        any representation for a callable), converted to float32 and never modified; or a
        :class:`~perturblab.attack._sparse.SparseModelInput` (an AnnData's sparse counts: only the
        target cluster's rows are made dense).
    clusters
        Cluster label per cell.
    target
        The cluster under attack.
    gene_names
        Gene names of the columns; defaults to the columns of a DataFrame ``X``, else
        ``classifier.genes_``.
    max_batch_values
        Upper bound on the number of matrix entries of one stacked batch (memory bound:
        4 bytes each).

    Raises
    ------
    ValueError
        If shapes disagree, ``X`` holds NaN/inf, or ``target`` has no cells.
    """

    def __init__(self, classifier, X, clusters, target, *, gene_names=None, max_batch_values: int = 2**24):
        from ..classifiers.wrap import as_classifier
        from ._sparse import is_sparse_input

        if hasattr(X, "columns") and gene_names is None:  # pandas DataFrame: columns are the genes
            gene_names = X.columns
        classifier = as_classifier(classifier, genes=gene_names, where="the attack")
        self.sparse = is_sparse_input(X)
        if self.sparse and not (hasattr(classifier, "predict") and getattr(classifier, "per_cell", False)):
            X = X.toarray()  # a cluster-level classifier reads the whole matrix
            self.sparse = False
        if not self.sparse:
            X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
            if X.ndim != 2:
                raise InputError(f"X must be a cells x genes matrix, got shape {X.shape}")
            check_finite(X)
        rep = getattr(classifier, "representation", None)
        if rep in ("counts", "log1p", "scaled") and not self.sparse and X.size:
            from .._validation import warn_representation

            warn_representation(X, rep, "X (the model input attacked)")
        clusters = np.asarray(clusters).astype(str)
        if clusters.shape != (X.shape[0],):
            raise InputError(f"clusters has {clusters.size} labels but X has {X.shape[0]} cells")
        target = str(target)
        mask = clusters == target
        if not mask.any():
            known = sorted(set(clusters))
            raise UnknownNameError("cluster", target, known)
        genes = gene_names if gene_names is not None else getattr(classifier, "genes_", None)
        if genes is None:
            raise InputError("pass gene_names= (the column names of X) for a classifier without genes_")
        genes = np.asarray(genes).astype(str)
        if genes.shape != (X.shape[1],):
            raise InputError(f"{genes.size} gene names given for {X.shape[1]} columns of X")
        self.classifier, self.X, self.clusters, self.target = classifier, X, clusters, target
        self.genes, self.mask = genes, mask
        self.rows = np.flatnonzero(mask)
        self.Xc = X.rows(self.rows) if self.sparse else X[self.rows]
        self.n_cells = len(self.rows)
        self.max_batch_values = int(max_batch_values)
        self.callable = not hasattr(classifier, "predict")
        self.per_cell = (not self.callable) and bool(getattr(classifier, "per_cell", False))
        self._cluster_override = self.per_cell and _overrides_cluster_call(classifier)
        unknown = getattr(classifier, "unknown_label", None)
        self.na_labels = NA_LABELS | ({str(unknown)} if unknown is not None else set())
        self._work = None if self.per_cell else X.copy()
        self.n_calls = 0
        self.n_batched_calls = 0
        self._gene_pos = {g: i for i, g in enumerate(genes)}

    # -- genes ---------------------------------------------------------------------------
    def gene_indices(self, names, what: str = "gene") -> np.ndarray:
        """Column indices of gene ``names``; ``ValueError`` naming any absent gene."""
        names = [str(g) for g in np.atleast_1d(names)]
        missing = [g for g in names if g not in self._gene_pos]
        if missing:
            raise InputError(f"{len(missing)} {what}(s) not among the classifier's genes: {missing[:20]}")
        return np.array([self._gene_pos[g] for g in names], dtype=np.intp)

    def used_gene_mask(self) -> np.ndarray:
        """Boolean mask over genes that can influence the output (``classifier.used_genes_``)."""
        used = getattr(self.classifier, "used_genes_", None)
        out = np.zeros(len(self.genes), dtype=bool)
        if used is None:
            out[:] = True
        else:
            out[np.asarray(used, dtype=np.intp)] = True
        return out

    # -- classification ------------------------------------------------------------------
    def baseline(self) -> ClusterCall:
        """The classifier's own call on the unmodified data (1 call)."""
        return self.classify_rows([self.Xc])[0]

    def classify(self, gene_idx, values) -> ClusterCall:
        """Cluster call after writing ``values`` (target cells x genes) into columns ``gene_idx``."""
        return self.classify_many([(gene_idx, values)])[0]

    def classify_many(self, items) -> list[ClusterCall]:
        """Cluster calls of several modified variants ``[(gene_idx, values), ...]``, batched."""
        if not self.per_cell:
            return [self._call_full(np.asarray(g, dtype=np.intp), v) for g, v in items]
        out: list[ClusterCall] = []
        per = max(1, self.n_cells * self.X.shape[1])
        step = max(1, self.max_batch_values // per)
        for s in range(0, len(items), step):
            chunk = items[s : s + step]
            B = np.empty((len(chunk), self.n_cells, self.X.shape[1]), dtype=np.float32)
            B[:] = self.Xc
            for k, (g, v) in enumerate(chunk):
                B[k][:, np.asarray(g, dtype=np.intp)] = v
            out.extend(self.classify_rows(B))
        return out

    def classify_single_genes(self, gene_idx, V, fast: bool = True) -> list[ClusterCall]:
        """Cluster call of each gene modified alone: gene ``gene_idx[j]`` takes values ``V[:, j]``.

        ``fast=True`` uses a classifier fast path when one applies (:mod:`._fastpath`)."""
        gene_idx = np.asarray(gene_idx, dtype=np.intp)
        if fast and len(gene_idx):
            from ._fastpath import single_gene_fast

            res = single_gene_fast(self, gene_idx, V)
            if res is not None:
                return res
        if not self.per_cell:
            return [self._call_full(gene_idx[j : j + 1], V[:, j : j + 1]) for j in range(len(gene_idx))]
        out: list[ClusterCall] = []
        per = max(1, self.n_cells * self.X.shape[1])
        step = max(1, self.max_batch_values // per)
        cells = np.arange(self.n_cells)
        for s in range(0, len(gene_idx), step):
            g = gene_idx[s : s + step]
            B = np.empty((len(g), self.n_cells, self.X.shape[1]), dtype=np.float32)
            B[:] = self.Xc
            B[np.arange(len(g))[:, None], cells[None, :], g[:, None]] = V[:, s : s + step].T
            out.extend(self.classify_rows(B))
        return out

    def classify_rows(self, variants) -> list[ClusterCall]:
        """Cluster calls of whole replacement blocks of the target rows (variants x cells x genes)."""
        if not self.per_cell:
            out = []
            for Xc in variants:
                out.append(self._call_full(None, Xc))
            return out
        n = self.n_cells
        if self._cluster_override:
            lab = np.full(n, self.target)
            out = [self.classifier.predict_cluster(np.asarray(v), lab, self.target) for v in variants]
            self.n_calls += len(out)
            self.n_batched_calls += len(out)
            return [as_cluster_call(r, n) for r in out]
        stacked = np.asarray(variants, dtype=np.float32).reshape(-1, self.X.shape[1])
        labels = np.asarray(self.classifier.predict(stacked)).astype(str)
        self.n_batched_calls += 1
        k = stacked.shape[0] // n
        self.n_calls += k
        return [as_cluster_call(majority_vote(labels[i * n : (i + 1) * n]), n) for i in range(k)]

    def _call_full(self, gene_idx, values) -> ClusterCall:
        work, rows = self._work, self.rows
        if work is None:  # only cluster-level classifiers keep a full working matrix
            raise PerturblabError("a full-matrix call needs a cluster-level classifier (per_cell = False)")
        if gene_idx is None:
            work[rows] = values
        else:
            work[np.ix_(rows, gene_idx)] = values
        try:
            if self.callable:
                res = self.classifier(work, self.clusters, self.target)
            else:
                res = self.classifier.predict_cluster(work, self.clusters, self.target)
        finally:
            if gene_idx is None:
                work[rows] = self.Xc
            else:
                work[np.ix_(rows, gene_idx)] = self.Xc[:, gene_idx]
        self.n_calls += 1
        self.n_batched_calls += 1
        return as_cluster_call(res, self.n_cells)

    def is_flip(self, call: ClusterCall, baseline: ClusterCall, change_type: str = "any") -> bool:
        """True if ``call`` changes the label (``change_type="not_na"``: and is not an abstention)."""
        if call.label == baseline.label:
            return False
        return change_type == "any" or call.label not in self.na_labels
