"""Shared preprocessing of the classifiers: raw counts -> "log1p" or "scaled" model input.

Representations (see :mod:`perturblab.classifiers.base`):

- ``"log1p"``: ``normalize_total(target_sum=1e4)`` then ``log1p`` (scanpy's defaults). The
  library size of a cell is the sum of its counts over **all** genes of the AnnData passed in
  (as ``scanpy.pp.normalize_total`` does), then the genes of the model are selected.
- ``"scaled"``: ``"log1p"`` then z-scored per gene with the mean and standard deviation
  (``ddof=1``, as R's ``scale`` and Seurat's ``ScaleData``) **learned at fit time**, clipped to
  [-10, 10]. Genes constant in the training data get standard deviation 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_counts
from ..exceptions import InputError
from .base import NotFittedError

TARGET_SUM = 1e4
CLIP = 10.0


def gene_indices(adata, genes) -> np.ndarray:
    """Column indices of ``genes`` in ``adata.var_names``.

    Raises
    ------
    ValueError
        If some of ``genes`` are not in ``adata`` (data with other genes than the model's).
    """
    index = adata.var_names
    if not index.is_unique:
        raise InputError("adata.var_names are not unique; call adata.var_names_make_unique() first")
    pos = index.get_indexer(np.asarray(genes))
    missing = np.asarray(genes)[pos < 0]
    if missing.size:
        raise InputError(
            f"adata lacks {missing.size} of the classifier's {len(genes)} genes "
            f"(e.g. {', '.join(map(str, missing[:5]))}); pass raw counts with the genes the model was fitted on"
        )
    return pos


def log1p_matrix(adata, genes=None) -> np.ndarray:
    """Raw-count AnnData (cells x genes) -> dense float32 log1p-normalised matrix.

    Parameters
    ----------
    adata
        AnnData whose ``X`` holds raw counts (dense or sparse, non-negative).
    genes
        Genes (columns) to return, in this order; ``None`` = all genes of ``adata``.

    Raises
    ------
    ValueError
        NaN/inf or negative values in ``adata.X``, an empty AnnData, or missing genes.
    """
    if adata.n_obs == 0:
        raise InputError("adata has no cells")
    X: Any = adata.X  # cells x genes, dense or sparse
    check_counts(X, "adata.X")
    cols = None if genes is None else gene_indices(adata, genes)
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    lib[lib == 0] = 1.0  # an empty cell stays all-zero
    if cols is not None:
        X = X[:, cols]
    X = X.toarray() if sp.issparse(X) else np.array(X, dtype=np.float64)
    X = np.log1p(X * (TARGET_SUM / lib)[:, None])
    return np.ascontiguousarray(X, dtype=np.float32)


@dataclass
class GeneScaler:
    """Per-gene z-scoring learned on training data (``mean``/``std`` per gene, ``ddof=1``)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> GeneScaler:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] < 2:
            raise InputError(f"need at least 2 cells to learn per-gene scaling, got {X.shape[0]}")
        std = X.std(axis=0, ddof=1)
        std[std == 0] = 1.0
        return cls(mean=X.mean(axis=0).astype(np.float32), std=std.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, dtype=np.float32) - self.mean) / self.std
        np.clip(Z, -CLIP, CLIP, out=Z)
        return Z


def model_input(clf, adata) -> np.ndarray:
    """The model input of fitted ``clf`` for raw-count ``adata``: log1p, then scaled when
    ``clf.representation == "scaled"`` (with ``clf.scaler_``)."""
    if not hasattr(clf, "genes_"):
        raise NotFittedError(f"{type(clf).__name__} is not fitted yet: call fit(adata, label_key) first")
    X = log1p_matrix(adata, clf.genes_)
    if clf.representation == "scaled":
        X = clf.scaler_.transform(X)
    return X
