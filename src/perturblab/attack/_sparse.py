"""A classifier's model input held sparse: attacks on a CSR AnnData without densifying it.

:class:`SparseModelInput` stands for the model input of *all* cells of a raw-count AnnData (cells x the classifier's
``genes_``) without building it: the counts of the classifier's genes stay sparse (CSR), the target cluster's rows
are densified when the attack asks for them (:meth:`SparseModelInput.rows`), and the column statistics the
modifications need (quantiles, minimum, maximum, ranks: computed over all cells, as adverSCarial does) come from
each column's sorted stored values and its count of implicit zeros. Values equal, to the last bit, those of the
dense model input (:func:`perturblab.classifiers._preprocess.model_input`): the same float32 element-wise formulas
(``log1p(x * 1e4 / library size)``, then for ``"scaled"`` ``(x - mean) / std`` clipped at +-10), the same quantile
interpolation as ``numpy.quantile(method="linear")``.

Used by the attacks that only read the target rows and column statistics (single-gene, max-change, grid, random
walk) when they are given an AnnData with a sparse ``X`` and a classifier whose ``preprocess`` is perturblab's
standard one (``standard_preprocess``); CGD and the white-box attacks return the whole attacked matrix and take the
dense model input. Memory: the sparse counts of the classifier's genes, the library sizes, the target rows (dense)
and, per call, the sorted stored values of the genes asked for.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import InputError

__all__ = ["SparseModelInput", "is_sparse_input", "sparse_model_input"]

_TARGET_SUM = 1e4
_CLIP = 10.0


def is_sparse_input(X) -> bool:
    """True for a :class:`SparseModelInput`."""
    return isinstance(X, SparseModelInput)


def sparse_model_input(classifier, adata):
    """The model input of ``classifier`` on ``adata`` as a :class:`SparseModelInput` when ``adata.X`` is sparse and
    the classifier uses perturblab's standard preprocessing (``standard_preprocess``: ``"log1p"`` or ``"scaled"``);
    ``None`` otherwise (the caller then uses ``classifier.preprocess(adata)``)."""
    if not sp.issparse(adata.X) or not getattr(classifier, "standard_preprocess", False):
        return None
    rep = getattr(classifier, "representation", None)
    if rep not in ("log1p", "scaled") or not hasattr(classifier, "genes_"):
        return None
    from .._validation import check_counts
    from ..classifiers._preprocess import gene_indices

    C = adata.X.tocsr()
    check_counts(C, "adata.X")
    scaler = getattr(classifier, "scaler_", None) if rep == "scaled" else None
    return SparseModelInput(C, gene_indices(adata, classifier.genes_), rep,
                            None if scaler is None else scaler.mean, None if scaler is None else scaler.std)


class SparseModelInput:
    """Model input of all cells, held sparse (see the module docstring).

    Parameters
    ----------
    counts
        Raw counts, CSR, cells x all genes of the dataset (the library size sums over all of them).
    columns
        Column indices of the classifier's genes in ``counts``.
    representation
        ``"log1p"`` or ``"scaled"``.
    mean, std
        The fit-time per-gene scaling of ``"scaled"`` (float32).
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, counts, columns, representation: str, mean=None, std=None):
        if representation not in ("log1p", "scaled"):
            raise InputError(f"representation {representation!r} has no sparse model input; use the dense one")
        counts = counts.tocsr()
        lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        lib[lib == 0] = 1.0
        self.scale = _TARGET_SUM / lib
        columns = np.asarray(columns, dtype=np.intp)
        if len(columns) == counts.shape[1] and (columns == np.arange(len(columns))).all():
            self.S = counts  # the classifier reads every gene in order: no copy
        else:
            self.S = counts[:, columns].tocsr()
        if self.S.nnz and self.S.data.min() < 0:
            raise InputError("negative counts: pass raw counts")
        self.representation = representation
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32)
        self.shape = self.S.shape

    def __len__(self) -> int:
        return self.shape[0]

    # -- element-wise transform (the dense model input's formulas) -------------------------------
    def _log1p(self, values, rows) -> np.ndarray:
        return np.log1p(values * self.scale[rows]).astype(np.float32)

    def _scaling(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise InputError("the scaled representation needs the fit-time scaling; pass mean= and std=")
        return self.mean, self.std

    def _scaled(self, L: np.ndarray, cols) -> np.ndarray:
        if self.representation != "scaled":
            return L
        mean, std = self._scaling()
        Z = (np.asarray(L, dtype=np.float32) - mean[cols]) / std[cols]
        np.clip(Z, -_CLIP, _CLIP, out=Z)
        return Z

    def rows(self, idx) -> np.ndarray:
        """Dense float32 model input of cells ``idx`` (all of the classifier's genes)."""
        idx = np.asarray(idx, dtype=np.intp)
        block = self.S[idx].toarray().astype(np.float64)
        L = np.log1p(block * self.scale[idx][:, None]).astype(np.float32)
        return np.ascontiguousarray(self._scaled(L, np.arange(self.shape[1])))

    def toarray(self) -> np.ndarray:
        """The whole dense model input (what the sparse path avoids; for cluster-level classifiers)."""
        return self.rows(np.arange(self.shape[0]))

    def __array__(self, dtype=None, copy=None):
        out = self.toarray()
        return out if dtype is None else out.astype(dtype)

    # -- columns ---------------------------------------------------------------------------------
    def dense_columns(self, genes) -> np.ndarray:
        """Dense float64 columns ``genes`` over all cells (custom modification functions only)."""
        genes = np.asarray(genes, dtype=np.intp)
        sub = self.S[:, genes].tocoo()
        out = np.zeros((self.shape[0], len(genes)), dtype=np.float32)
        out[sub.row, sub.col] = self._log1p(sub.data.astype(np.float64), sub.row)
        return self._scaled(out, genes).astype(np.float64)

    def sorted_columns(self, genes) -> ColumnOrder:
        """The order statistics of columns ``genes`` (:class:`ColumnOrder`)."""
        return ColumnOrder(self, np.asarray(genes, dtype=np.intp))

    def gene_chunks(self, genes, max_values: int = 2**25):
        """``genes`` split into consecutive chunks of about ``max_values`` stored values each (bounds the memory of
        one :class:`ColumnOrder`)."""
        genes = np.asarray(genes, dtype=np.intp)
        density = self.S.nnz / max(1, self.shape[1])
        step = max(1, int(max_values // max(density, 1.0)))
        return [genes[s:s + step] for s in range(0, len(genes), step)] or [genes]


class ColumnOrder:
    """Each column's sorted values over all cells, kept as (implicit zeros, sorted stored values).

    ``value(j, k)`` is the ``k``-th smallest value (0-based) of column ``j``; ``count_below(j, v)`` the number of
    values ``< v``. The implicit (zero-count) value of a column is ``T(0)`` and every stored value ``T(x >= 0)``,
    with ``T`` non-decreasing, so the zeros come first.
    """

    def __init__(self, m: SparseModelInput, genes: np.ndarray):
        sub = m.S[:, genes].tocsc()
        sub.sort_indices()
        n_cells = m.shape[0]
        col = np.repeat(np.arange(len(genes)), np.diff(sub.indptr))
        vals = m._log1p(sub.data.astype(np.float64), sub.indices).astype(np.float32)
        if m.representation == "scaled":
            mean, std = m._scaling()
            vals = ((vals - mean[genes][col]) / std[genes][col]).astype(np.float32)
            np.clip(vals, -_CLIP, _CLIP, out=vals)
        order = np.lexsort((vals, col))
        self.values = vals[order].astype(np.float64)
        self.start = sub.indptr[:-1].astype(np.int64)
        self.nnz = np.diff(sub.indptr).astype(np.int64)
        self.n_zero = n_cells - self.nnz
        zero = np.zeros(len(genes), dtype=np.float32)
        self.zero_value = m._scaled(zero[None, :], genes)[0].astype(np.float64)
        self.n = n_cells

    def value(self, j: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
        """``k``-th smallest value of columns ``j`` (arrays broadcast)."""
        j, k = np.broadcast_arrays(np.asarray(j, dtype=np.int64), np.asarray(k, dtype=np.int64))
        stored = k - self.n_zero[j]
        pos = self.start[j] + np.clip(stored, 0, None)
        pos = np.minimum(pos, max(len(self.values) - 1, 0))
        got = self.values[pos] if len(self.values) else np.zeros(pos.shape)
        return np.where(stored < 0, self.zero_value[j], got)

    def count_below(self, j: int, v: np.ndarray) -> np.ndarray:
        """Number of values ``< v`` in column ``j``."""
        seg = self.values[self.start[j]: self.start[j] + self.nnz[j]]
        return np.searchsorted(seg, v, side="left") + self.n_zero[j] * (self.zero_value[j] < np.asarray(v))

    def minimum(self) -> np.ndarray:
        return self.value(np.arange(len(self.n_zero)), 0)

    def maximum(self) -> np.ndarray:
        return self.value(np.arange(len(self.n_zero)), self.n - 1)

    def quantile(self, q: float) -> np.ndarray:
        """``numpy.quantile(column, q, method="linear")`` of every column (numpy's own arithmetic)."""
        n = self.n
        virtual = n * q + (1 + q * (1 - 1 - 1)) - 1  # numpy's _compute_virtual_index(n, q, alpha=1, beta=1)
        lo = np.floor(virtual)
        gamma = virtual - lo
        lo_i = int(np.clip(lo, 0, n - 1))
        hi_i = int(np.clip(lo + 1, 0, n - 1))
        j = np.arange(len(self.n_zero))
        a, b = self.value(j, lo_i), self.value(j, hi_i)
        diff = b - a
        out = a + diff * gamma
        return np.where(gamma >= 0.5, b - diff * (1 - gamma), out)
