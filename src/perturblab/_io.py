"""Atomic writing of results: tables, JSON summaries and text (HTML reports).

Every writer writes to a temporary file in the destination folder and renames
it into place, so an interrupted run never leaves a half-written result that a
resumed run would mistake for a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _atomic_target(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return path, Path(tmp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    path, tmp = _atomic_target(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars/arrays allowed)."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True))


def write_table(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a tidy table atomically; the format follows the suffix (``.parquet`` or ``.csv``).

    Raises
    ------
    ValueError
        If the suffix is neither ``.parquet`` nor ``.csv``.
    """
    path = Path(path)
    if path.suffix not in {".parquet", ".csv"}:
        raise ValueError(f"Unsupported table format {path.suffix!r} for {path}: use .parquet or .csv")
    path, tmp = _atomic_target(path)
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_table`."""
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def write_h5ad(path: str | os.PathLike, adata) -> Path:
    """Write an AnnData to ``.h5ad`` atomically.

    With pandas >= 3 string columns and indexes are nullable ``StringArray``s, which anndata
    refuses to write unless ``allow_write_nullable_strings`` is set; it is set for this write only.
    """
    import contextlib

    import anndata as ad

    path, tmp = _atomic_target(path)
    settings = getattr(ad, "settings", None)
    ctx = (
        settings.override(allow_write_nullable_strings=True)
        if settings is not None and hasattr(settings, "allow_write_nullable_strings")
        else contextlib.nullcontext()
    )
    try:
        with ctx:
            adata.write_h5ad(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
