"""The contract every perturblab run follows: one output folder, one store, one executor.

- :func:`open_run` prepares ``--out``: a new run, ``resume`` (settings and input data must be identical; any
  difference is refused and named) or ``overwrite`` (nothing of the earlier run survives); a folder made by
  another command or not by perturblab is never written into.
- :class:`UnitStore` persists each finished unit of work atomically under ``OUT/units/<hash of its key>``, with
  the run's fingerprint; a resumed run recomputes only the missing units.
- :func:`execute` runs units in this process, in local worker processes (joblib) or on a Dask cluster and
  yields results as they finish; workers end with their parent.
- :func:`data_checksum` is the content checksum of an input AnnData (part of every fingerprint).
- :func:`peak_memory` and :func:`peak_rss_mb` measure memory; :mod:`.progress` reports progress.
"""

from __future__ import annotations

from . import progress
from .executor import execute, resolve_n_jobs
from .folder import RUN_FILE, RunFolder, fingerprint, open_run
from .memory import peak_memory, peak_rss_mb
from .store import StoredUnit, UnitStore, unit_id


def data_checksum(adata) -> str:
    """Content checksum (sha256) of an AnnData: cell and gene names, ``X``, ``obs``, ``var`` and ``obsm``
    (:func:`perturblab.datasets.anndata_sha256`); a changed input file gives another checksum."""
    from ..datasets import anndata_sha256

    return anndata_sha256(adata)


__all__ = [
    "RUN_FILE",
    "RunFolder",
    "StoredUnit",
    "UnitStore",
    "data_checksum",
    "execute",
    "fingerprint",
    "open_run",
    "peak_memory",
    "peak_rss_mb",
    "progress",
    "resolve_n_jobs",
    "unit_id",
]
