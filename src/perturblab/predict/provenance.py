"""What every predict report says about its data: the file, the cells per condition and cell type, the genes,
the highly variable genes, the normalisation, the protocol, the seeds, perturblab's version and the data
checksum (the one recorded in the run's ``run.json``)."""

from __future__ import annotations

import anndata as ad
import pandas as pd

__all__ = ["cell_counts", "data_items", "describe_data"]


def _file_of(data) -> str:
    """The file behind ``data``: a path as given, a dataset's registered file, or "AnnData given in Python"."""
    if isinstance(data, ad.AnnData):
        return "AnnData given in Python"
    text = str(data)
    from ..datasets import _fetch

    files = [k for k in _fetch.REGISTRY if k.split("/")[-1].startswith(text + "_")]
    return f"{text} ({files[0]})" if files else text


def cell_counts(adata: ad.AnnData, condition_key: str = "condition", cell_type_key: str = "cell_type") -> pd.DataFrame:
    """Cells per cell type (rows) and condition (columns), with a ``total`` column; zeros where none."""
    tab = pd.crosstab(adata.obs[cell_type_key].astype(str), adata.obs[condition_key].astype(str))
    tab["total"] = tab.sum(axis=1)
    return tab.sort_values("total", ascending=False, kind="stable")


def describe_data(data, raw: ad.AnnData, adata: ad.AnnData, settings, seeds, checksum: str) -> dict:
    """The description of a run's data, as plain JSON values.

    Parameters
    ----------
    data
        What the user passed (dataset name, path or AnnData).
    raw, adata
        The data as loaded (raw counts, cells x genes) and as the models see it (after preprocessing).
    settings
        The run's :class:`~perturblab.predict.benchmark.BenchmarkSettings`.
    seeds
        The run's seeds.
    checksum
        :func:`perturblab.runs.data_checksum` of ``raw`` (also in ``run.json``).

    Returns
    -------
    dict
        ``file, n_cells, n_genes, n_cells_used, n_genes_used (HVGs), normalisation, protocol, dropped_cell_types,
        cells (type -> condition -> n, of the cells used), seeds, perturblab_version, data_checksum``.
    """
    from .._version import __version__

    info = dict(adata.uns.get("perturblab_predict", {}))
    pre = settings.preprocessing
    if pre is None:
        norm = "given log-normalised (no preprocessing by perturblab)"
    else:
        used = info.get("target_sum_used")
        size = "median library size" if pre.target_sum is None else f"{pre.target_sum:g} counts"
        norm = (f"normalize_total to the {size}" + (f" ({used:.0f} counts)" if used is not None else "")
                + f", log1p, {pre.n_top_genes if pre.n_top_genes else 'all'} HVGs (scanpy {pre.flavor})")
    counts = cell_counts(adata, settings.condition_key, settings.cell_type_key).drop(columns="total")
    return {"file": _file_of(data), "n_cells": int(raw.n_obs), "n_genes": int(raw.n_vars),
            "n_cells_used": int(adata.n_obs), "n_genes_used": int(adata.n_vars), "normalisation": norm,
            "protocol": settings.protocol, "dropped_cell_types": info.get("dropped_cell_types", {}),
            "cells": {t: {c: int(n) for c, n in row.items()} for t, row in counts.iterrows()},
            "seeds": [int(s) for s in seeds], "perturblab_version": __version__, "data_checksum": checksum}


def data_items(desc: dict) -> list[str]:
    """The description as lines for a report (the cell table is shown separately)."""
    dropped = desc.get("dropped_cell_types") or {}
    return [f"file: {desc['file']}",
            f"{desc['n_cells']} cells x {desc['n_genes']} genes loaded; {desc['n_cells_used']} cells x "
            f"{desc['n_genes_used']} genes used",
            f"normalisation: {desc['normalisation']}",
            f"protocol: {desc['protocol']}"
            + (f" (dropped cell types: {', '.join(f'{t} {n}' for t, n in dropped.items())})" if dropped else ""),
            f"seeds: {', '.join(map(str, desc['seeds']))}",
            f"perturblab {desc['perturblab_version']}; data checksum (sha256, as in run.json) {desc['data_checksum']}"]
