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
import pandas as pd

from ..exceptions import InputError

__all__ = ["attack_inputs", "set_obs", "update_uns", "writable"]


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


def writable(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` that ``AnnData.write_h5ad`` accepts: object columns as strings, a plain RangeIndex."""
    out = df.reset_index(drop=True).copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    out.columns = [str(c) for c in out.columns]
    return out


def update_uns(adata, key: str, tables: dict, replace_on=None) -> None:
    """Merge ``tables`` (name -> DataFrame) into ``adata.uns[key]``: rows of existing tables whose ``replace_on``
    columns match a new row are dropped, then the new rows appended; other entries (strings, dicts) are set."""
    store = adata.uns.get(key)
    store = dict(store) if isinstance(store, dict) else {}
    for name, value in tables.items():
        if isinstance(value, pd.DataFrame):
            new = writable(value)
            old = store.get(name)
            if isinstance(old, pd.DataFrame) and len(old) and replace_on:
                cols = [c for c in replace_on if c in old.columns and c in new.columns]
                if cols:
                    keys = set(map(tuple, new[cols].astype(str).to_numpy().tolist()))
                    keep = [tuple(r) not in keys for r in old[cols].astype(str).to_numpy().tolist()]
                    new = writable(pd.concat([old[keep], new], ignore_index=True))
            store[name] = new
        else:
            store[name] = value
    adata.uns[key] = store


def set_obs(adata, column: str, mask, value) -> None:
    """Write ``value`` into ``adata.obs[column]`` for the cells of ``mask`` (others keep theirs, or NaN)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (adata.n_obs,):
        raise InputError(f"the attacked cells do not match adata ({mask.size} cells for {adata.n_obs}); pass the "
                         "AnnData the attack ran on")
    kind = np.asarray(value).dtype.kind
    numeric = kind in "fiub"
    dtype = float if numeric else object
    if numeric:
        value = np.asarray(value, dtype=float) if np.ndim(value) else float(value)
    if column in adata.obs.columns:
        col = adata.obs[column].astype(dtype).copy()
    else:
        col = pd.Series(np.nan, index=adata.obs_names, dtype=dtype)
    col.iloc[np.flatnonzero(mask)] = value
    adata.obs[column] = col


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
