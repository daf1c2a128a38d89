"""Content checksums of data files whose bytes depend on the writer (h5ad, gzip), not only on the data.

A file that perturblab rebuilds from its public sources cannot be checked by the sha256 of its bytes: HDF5
and gzip embed writer versions and timestamps. :func:`content_sha256` hashes what the file holds instead.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


def _update_strings(h, tag: str, values) -> None:
    h.update(f"<{tag}>".encode())
    h.update("\x1f".join("\x00NA" if pd.isna(v) else str(v) for v in values).encode())


def _update_array(h, tag: str, values) -> None:
    h.update(f"<{tag}>".encode())
    if sp.issparse(values):
        m = sp.csr_matrix(values, dtype=np.float64, copy=True)  # never sort or prune the caller's matrix
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        for part in (m.shape, m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data):
            h.update(np.ascontiguousarray(part).tobytes())
        return
    arr = np.asarray(values, dtype=np.float64)
    h.update(np.asarray(arr.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(np.where(np.isnan(arr), np.nan, arr)).tobytes())


def _update_frame(h, tag: str, frame: pd.DataFrame) -> None:
    for name in sorted(frame.columns):
        col = frame[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            _update_array(h, f"{tag}.{name}", col.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            _update_strings(h, f"{tag}.{name}", col.astype(object))


def anndata_sha256(adata) -> str:
    """sha256 of an AnnData's content, independent of the h5ad writer and of storage dtypes.

    Covers ``obs_names``, ``var_names``, ``X`` (as float64 values, sparse or dense alike), every ``obs`` and
    ``var`` column (numbers as float64, everything else as text, missing values marked) and every ``obsm``
    entry. Not covered: ``uns`` (free-text provenance), category order, column order.
    """
    h = hashlib.sha256()
    _update_strings(h, "obs_names", adata.obs_names)
    _update_strings(h, "var_names", adata.var_names)
    _update_array(h, "X", adata.X)
    _update_frame(h, "obs", adata.obs)
    _update_frame(h, "var", adata.var)
    for key in sorted(adata.obsm):
        _update_array(h, f"obsm.{key}", adata.obsm[key])
    return h.hexdigest()


def content_sha256(path: str | Path) -> str:
    """Writer-independent checksum of a data file: :func:`anndata_sha256` for ``.h5ad``, the sha256 of the
    decompressed bytes for ``.gz``, the sha256 of the bytes otherwise."""
    path = Path(path)
    h = hashlib.sha256()
    if path.suffix == ".h5ad":
        import anndata as ad

        return anndata_sha256(ad.read_h5ad(path))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
