"""Locate data files: data directory, then user cache, then download (see :func:`fetch`)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "PERTURBLAB_DATA_DIR"


def data_dir() -> Path | None:
    """The data directory set by the ``PERTURBLAB_DATA_DIR`` environment variable, or None."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def fetch(relpath: str) -> Path:
    """Return the local path of data file ``relpath`` (e.g. ``"pbmc3k_raw_labeled.h5ad"``).

    Raises
    ------
    FileNotFoundError
        If the file is not in the data directory.
    """
    d = data_dir()
    if d is not None and (d / relpath).is_file():
        return d / relpath
    raise FileNotFoundError(
        f"data file {relpath!r} not found; set {DATA_DIR_ENV} to a folder that contains it"
    )
