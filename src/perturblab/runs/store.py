"""Finished units of work of a run, persisted so that an interrupted run resumes where it stopped.

A unit is identified by a small dict of key fields (e.g. ``{"classifier": "mlp", "attack": "single_gene",
"cluster": "NK", ...}``); its folder is named by a hash of those fields, never after data (a cluster name can be
too long for a file name, or two names can map to the same file name)::

    OUT/units/<sha1 of the key>/
        <table>.parquet ...     the unit's tables
        arrays.npz              its arrays (optional)
        adata.h5ad              an AnnData (optional, e.g. predicted cells)
        checkpoint.pt           a torch checkpoint (optional, e.g. a trained model)
        unit.json               written last: key, run fingerprint, summary; marks the unit as finished

Every file is written atomically (:mod:`perturblab.io`), and ``unit.json`` last, so a unit folder without
``unit.json`` is an interrupted unit and is computed again. A unit whose recorded fingerprint differs from the
run's is refused: results of other settings are never reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import RunFolderError
from ..io import (
    load_torch,
    read_h5ad,
    read_json,
    read_npz,
    read_table,
    save_torch,
    write_h5ad,
    write_json,
    write_npz,
    write_table,
)
from .folder import RunFolder, _canonical

__all__ = ["UnitStore", "StoredUnit", "unit_id"]

_MANIFEST = "unit.json"


def unit_id(key: Mapping[str, Any]) -> str:
    """Stable identifier of a unit: sha1 of the canonical JSON of its key fields (40 hex characters)."""
    text = json.dumps(_canonical(dict(key)), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


@dataclass
class StoredUnit:
    """A finished unit read back from the store.

    Attributes
    ----------
    key
        The unit's key fields.
    summary
        Its JSON summary (plain values).
    tables
        ``{name: DataFrame}``.
    path
        Its folder (arrays, AnnData and checkpoint are read on demand).
    """

    key: dict
    summary: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    path: Path | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The unit's arrays (``arrays.npz``)."""
        return read_npz(self._file("arrays.npz"))

    def adata(self):
        """The unit's AnnData (``adata.h5ad``)."""
        return read_h5ad(self._file("adata.h5ad"), what="stored unit")

    def checkpoint(self, map_location=None) -> dict:
        """The unit's torch checkpoint (``checkpoint.pt``, loaded with ``weights_only=True``)."""
        return load_torch(self._file("checkpoint.pt"), map_location=map_location)

    def _file(self, name: str) -> Path:
        if self.path is None or not (self.path / name).is_file():
            raise RunFolderError(f"unit {self.key} has no {name}; rerun with --overwrite")
        return self.path / name


class UnitStore:
    """The finished units of a :class:`~perturblab.runs.RunFolder` (``OUT/units``).

    Parameters
    ----------
    run
        The run folder; units record its fingerprint.
    """

    def __init__(self, run: RunFolder):
        self.run = run
        self.dir = run.path / "units"

    def path(self, key: Mapping[str, Any]) -> Path:
        """Folder of the unit ``key``."""
        return self.dir / unit_id(key)

    def done(self, key: Mapping[str, Any]) -> bool:
        """True if the unit is finished and was computed under this run's fingerprint.

        Raises
        ------
        RunFolderError
            If the unit was computed with other settings (its recorded fingerprint differs).
        """
        manifest = self.path(key) / _MANIFEST
        if not manifest.is_file():
            return False
        info = read_json(manifest)
        if info.get("fingerprint") != self.run.fingerprint:
            raise RunFolderError(f"{self.run.path} holds unit {dict(key)} computed with other settings or data; "
                                 "rerun with --overwrite")
        return True

    def save(self, key: Mapping[str, Any], *, summary: Mapping[str, Any] | None = None,
             tables: Mapping[str, pd.DataFrame] | None = None, arrays: Mapping[str, np.ndarray] | None = None,
             adata=None, checkpoint: dict | None = None) -> Path:
        """Persist a finished unit (each file atomically, ``unit.json`` last).

        Parameters
        ----------
        key
            The unit's key fields (JSON values).
        summary
            Small JSON summary.
        tables
            ``{name: DataFrame}`` (Parquet; names are file-name-safe identifiers chosen by the code, not data).
        arrays
            ``{name: ndarray}`` (numeric arrays, ``.npz``).
        adata
            An AnnData (``.h5ad``).
        checkpoint
            A dict of tensors and plain values (``torch.save``; loaded back with ``weights_only=True``).
        """
        d = self.path(key)
        if d.exists():  # an interrupted earlier attempt: start clean
            shutil.rmtree(d)
        names = []
        for name, df in (tables or {}).items():
            write_table(d / f"{name}.parquet", _parquet_safe(df))
            names.append(name)
        if arrays:
            write_npz(d / "arrays.npz", dict(arrays))
        if adata is not None:
            write_h5ad(d / "adata.h5ad", adata)
        if checkpoint is not None:
            save_torch(d / "checkpoint.pt", checkpoint)
        write_json(d / _MANIFEST, {"key": _canonical(dict(key)), "fingerprint": self.run.fingerprint,
                                   "summary": _canonical(dict(summary or {})), "tables": names})
        return d

    def load(self, key: Mapping[str, Any]) -> StoredUnit:
        """Read a finished unit back (tables loaded; arrays, AnnData and checkpoint on demand)."""
        if not self.done(key):
            raise RunFolderError(f"unit {dict(key)} is not finished in {self.run.path}")
        d = self.path(key)
        info = read_json(d / _MANIFEST)
        tables = {name: read_table(d / f"{name}.parquet") for name in info.get("tables", [])}
        return StoredUnit(info["key"], info.get("summary", {}), tables, d)


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of mixed Python objects (e.g. numbers and strings) become text, which Parquet can store."""
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col].dropna()}
            if len(kinds) > 1 and not kinds <= {int, float, bool}:
                out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v))
                                        else str(v))
    return out
