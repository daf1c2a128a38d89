"""Attacks on an AnnData and their results back in it (scanpy's conventions: ``groupby=``, ``key_added=``).

An attack given an AnnData (raw counts, cells x genes) instead of a model-input matrix builds the model input with
the classifier's own ``preprocess`` and reads the clusters from ``adata.obs[groupby]``. ``key_added`` writes the
result back: its tables under ``adata.uns[key_added]`` (a dict of DataFrames; earlier results under the same key
are kept, rows of the same cluster and modification replaced) and per-cell columns ``adata.obs[f"{key_added}_..."]``
(the cluster-level answer written into every cell of the attacked cluster; other cells keep their earlier value, or
NaN). Every attack result has ``to_adata(adata, key_added=...)`` for a result computed already.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError

__all__ = ["attack_inputs", "cluster_mask"]


def _is_anndata(x) -> bool:
    return hasattr(x, "obs") and hasattr(x, "var_names") and hasattr(x, "X")


def attack_inputs(classifier, X, clusters, groupby: str | None, *, preprocess: bool = True, sparse: bool = False):
    """(model input, clusters, adata or None) of an attack call.

    ``X`` an AnnData: the model input is ``classifier.preprocess(X)`` (raw counts expected: warned otherwise) when
    ``preprocess`` (with ``sparse``, a :class:`~perturblab.attack._sparse.SparseModelInput` when ``X.X`` is sparse
    and the classifier's preprocessing is perturblab's standard one), else ``X.X``; clusters are
    ``X.obs[groupby]`` (``clusters`` may name the column too). Otherwise ``X`` and ``clusters`` are returned as
    given (``clusters`` required).
    """
    if not _is_anndata(X):
        if clusters is None:
            raise InputError("pass clusters= (one label per cell), or an AnnData with groupby= (its obs column)")
        if groupby is not None:
            raise InputError("groupby= names an obs column: pass an AnnData as X (or drop groupby)")
        return X, clusters, None
    from .._validation import check_labels

    adata = X
    key = groupby if groupby is not None else (clusters if isinstance(clusters, str) else None)
    if key is None:
        if clusters is None:
            raise InputError("pass groupby=: the adata.obs column of the clusters (cell types) to attack")
        labels = np.asarray(clusters).astype(str)
        if labels.shape != (adata.n_obs,):
            raise InputError(f"clusters has {labels.size} labels for {adata.n_obs} cells")
    else:
        labels = check_labels(adata, key, "cluster")
    from .._validation import warn_representation

    warn_representation(adata.X, "counts", "adata.X (the attacked AnnData)")
    if not preprocess:
        return adata.X, labels, adata
    from ..classifiers.wrap import as_classifier

    clf = as_classifier(classifier, genes=None, where="the attack")
    if not hasattr(clf, "preprocess"):
        raise InputError("a cluster-level function cannot build its input from an AnnData; pass its matrix as X")
    if sparse:
        from ._sparse import sparse_model_input

        lazy = sparse_model_input(clf, adata)
        if lazy is not None:
            return lazy, labels, adata
    return clf.preprocess(adata), labels, adata


def cluster_mask(adata, groupby: str | None, clusters, target: str) -> np.ndarray:
    """Boolean mask of the cells of cluster ``target`` in ``adata`` (labels from ``obs[groupby]`` or ``clusters``)."""
    if groupby is not None:
        from .._validation import check_labels

        labels = check_labels(adata, groupby, "cluster")
    elif clusters is not None:
        labels = np.asarray(clusters).astype(str)
    else:
        raise InputError("pass groupby= (the adata.obs column of the clusters) to write results back")
    if labels.shape != (adata.n_obs,):
        raise InputError(f"{labels.size} cluster labels for {adata.n_obs} cells; pass the AnnData the attack ran on")
    return labels == str(target)
