"""Read R data files (``.rda``/``.RData``) with the PyPI ``rdata`` package, and turn R objects into numpy,
scipy and pandas objects. Used to rebuild perturblab's repackaged data files from their public R sources."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


def read_rda(path: str | Path) -> dict:
    """Objects of an ``.rda`` file by name.

    R lists with names become dicts, data.frames become :class:`pandas.DataFrame`, factors become
    categoricals, S4 objects (e.g. a ``dgCMatrix``) a namespace of their slots (see :func:`r_matrix`).

    Raises
    ------
    ValueError
        If the file is not an R data file the ``rdata`` package can parse.
    """
    import rdata

    with warnings.catch_warnings():
        # rdata warns for every S4 class it has no constructor for (dgCMatrix): handled by r_matrix
        warnings.filterwarnings("ignore", message="Missing constructor for R class")
        try:
            return {str(k): v for k, v in rdata.read_rda(path).items()}
        except Exception as err:  # rdata raises several exception types for malformed input
            raise ValueError(f"{path} is not a readable R data file: {err}") from err


def _names(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=str)


def r_matrix(obj, what: str = "matrix") -> tuple[sp.csc_matrix | np.ndarray, np.ndarray | None, np.ndarray | None]:
    """An R matrix as (values, row names, column names), in R's orientation (rows x columns).

    Accepts a base R matrix (numpy array or ``xarray.DataArray`` as ``rdata`` gives them) or a Matrix-package
    ``dgCMatrix`` (returned as :class:`scipy.sparse.csc_matrix`, float64 as stored by R).

    Raises
    ------
    TypeError
        If ``obj`` is neither; the message names ``what``.
    """
    cls = [str(c) for c in np.atleast_1d(getattr(obj, "class", []))] if hasattr(obj, "__dict__") else []
    if "dgCMatrix" in cls:
        n_rows, n_cols = (int(d) for d in obj.Dim)
        mat = sp.csc_matrix((np.asarray(obj.x), np.asarray(obj.i), np.asarray(obj.p)), shape=(n_rows, n_cols))
        dimnames = list(obj.Dimnames) if obj.Dimnames is not None else [None, None]
        return mat, _names(dimnames[0]), _names(dimnames[1])
    if hasattr(obj, "dims") and hasattr(obj, "coords"):  # xarray.DataArray (a matrix with dimnames)
        rows, cols = obj.dims
        row_names = _names(obj.coords[rows].values) if rows in obj.coords else None
        col_names = _names(obj.coords[cols].values) if cols in obj.coords else None
        return np.asarray(obj.values), row_names, col_names
    if isinstance(obj, np.ndarray) and obj.ndim == 2:
        return obj, None, None
    raise TypeError(f"{what}: expected an R matrix or dgCMatrix, got {type(obj).__name__} {cls or ''}")


def r_data_frame(obj, what: str = "data.frame") -> pd.DataFrame:
    """An R data.frame (or tibble) as a DataFrame; raises TypeError naming ``what`` for anything else."""
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"{what}: expected an R data.frame, got {type(obj).__name__}")
    return obj


def seurat_meta(seurat, what: str) -> pd.DataFrame:
    """A Seurat object's cell metadata (``meta.data``), cells as rows."""
    return r_data_frame(getattr(seurat, "meta.data", None), f"{what} meta.data")


def seurat_layer(seurat, layer: str, what: str, assay: str = "RNA"):
    """One layer ("counts" or "data") of a Seurat object's assay as (cells x genes CSR, genes, cells), or
    None if the object does not store it (an empty v3/v4 slot, or a v5 layer that is absent).

    Handles SeuratObject 3/4 (``Assay``: one slot per layer, a dgCMatrix with dimnames) and 5 (``Assay5``:
    ``layers`` without dimnames, names in the ``features``/``cells`` LogMaps, one column per layer).

    Raises
    ------
    ValueError
        If ``seurat`` is not a Seurat object with that assay.
    """
    assays = getattr(seurat, "assays", None)
    if not isinstance(assays, dict) or assay not in assays:
        raise ValueError(f"{what}: not a Seurat object with an {assay!r} assay")
    obj = assays[assay]
    if hasattr(obj, "layers"):  # Assay5
        if layer not in obj.layers:
            return None
        values: sp.csc_matrix | np.ndarray
        genes: np.ndarray | None
        cells: np.ndarray | None
        values, _, _ = r_matrix(obj.layers[layer], f"{what} layer {layer}")
        genes = _logmap_names(obj.features, layer, f"{what} features")
        cells = _logmap_names(obj.cells, layer, f"{what} cells")
    else:
        values, genes, cells = r_matrix(getattr(obj, layer), f"{what} slot {layer}")
        if values.shape[0] == 0 or values.shape[1] == 0:
            return None
    if genes is None or cells is None or values.shape != (len(genes), len(cells)):
        raise ValueError(f"{what}: {layer} has shape {values.shape} but names for {len(genes or [])} genes "
                         f"and {len(cells or [])} cells")
    return sp.csr_matrix(values.T, dtype=np.float64), genes, cells


def _logmap_names(logmap, layer: str, what: str) -> np.ndarray:
    """Names (row names) present in ``layer`` (a column) of a SeuratObject 5 LogMap."""
    flags, names, layers = r_matrix(logmap, what)
    if names is None or layers is None or layer not in list(layers):
        raise ValueError(f"{what}: no names for layer {layer!r}")
    return names[np.asarray(flags, dtype=bool)[:, list(layers).index(layer)]]
