"""Reading and atomic writing of perturblab's files: tables, JSON, text, arrays, AnnData and torch checkpoints.

Every writer goes through :func:`atomic_write`: the content is written to a temporary file in the destination
folder, given the permissions of a normal new file (``0o666`` minus the user's umask: a report written under
umask 022 is readable by colleagues) and renamed into place. An interrupted run never leaves a half-written file
that a resumed run would take for a finished one.

Readers turn the errors of the underlying libraries (h5py, pyarrow, torch) into one
:class:`~perturblab.exceptions.InputError` naming the file and the fix.

Examples
--------
>>> import pandas as pd, tempfile, os
>>> from perturblab import io
>>> folder = tempfile.mkdtemp()
>>> path = io.write_table(os.path.join(folder, "t.parquet"), pd.DataFrame({"gene": ["CD3E"], "score": [0.5]}))
>>> io.read_table(path)["gene"].tolist()
['CD3E']
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InputError

__all__ = [
    "atomic_write",
    "write_text",
    "write_json",
    "read_json",
    "write_table",
    "read_table",
    "write_npz",
    "read_npz",
    "write_h5ad",
    "read_h5ad",
    "save_torch",
    "load_torch",
    "TABLE_FORMATS",
]

#: Table formats :func:`write_table` writes (by file suffix).
TABLE_FORMATS = ("parquet", "csv")

_UMASK_LOCK = threading.Lock()


def _file_mode() -> int:
    """Permissions of a new file under the current umask (``open()``'s default, ``0o666 & ~umask``)."""
    with _UMASK_LOCK:  # reading the umask means setting it; no other thread may create files meanwhile
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically: ``write(tmp_path)`` fills a temporary file, which is then renamed to ``path``.

    The temporary file lies in ``path``'s folder (created if missing) and gets the permissions a plain
    ``open(path, "w")`` would give (``0o666`` minus the umask) before the rename.

    Parameters
    ----------
    path
        Destination.
    write
        Called with the temporary path; writes the whole content there.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays, paths and sets allowed)."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file.

    Raises
    ------
    InputError
        If the file is not valid JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err}); delete it or restore the file") from None


def write_table(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a tidy table atomically; the format follows the suffix (``.parquet`` or ``.csv``).

    Raises
    ------
    InputError
        If the suffix is neither ``.parquet`` nor ``.csv``.
    """
    path = Path(path)
    if path.suffix not in {".parquet", ".csv"}:
        raise InputError(f"unsupported table format {path.suffix!r} for {path}: use .parquet or .csv")
    if path.suffix == ".parquet":
        return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_table`.

    Raises
    ------
    InputError
        If the file cannot be parsed as its suffix says.
    """
    path = Path(path)
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise InputError(f"cannot read the table {path} ({type(err).__name__}: {err}); delete it or rerun "
                         "with --overwrite") from None


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays to an uncompressed ``.npz`` atomically (no object arrays)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle

    return atomic_write(path, write)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` (``allow_pickle=False``: object arrays are refused)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise InputError(f"cannot read the arrays {path} ({err}); delete it or rerun with --overwrite") from None


def write_h5ad(path: str | os.PathLike, adata) -> Path:
    """Write an AnnData to ``.h5ad`` atomically.

    With pandas >= 3 string columns and indexes are nullable ``StringArray``s, which anndata refuses to write
    unless ``allow_write_nullable_strings`` is set; it is set for this write only.
    """
    import contextlib

    import anndata as ad

    settings = getattr(ad, "settings", None)
    ctx = (
        settings.override(allow_write_nullable_strings=True)
        if settings is not None and hasattr(settings, "allow_write_nullable_strings")
        else contextlib.nullcontext()
    )

    def write(tmp: Path) -> None:
        with ctx:
            adata.write_h5ad(tmp)

    return atomic_write(path, write)


def read_h5ad(path: str | os.PathLike, what: str = "data"):
    """Read an ``.h5ad`` file, with one clear error for a missing, truncated or non-HDF5 file.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for the message (``"--data"``...).

    Raises
    ------
    InputError
        The file does not exist, is not an ``.h5ad`` file, or cannot be read (truncated, corrupt, not HDF5).
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file {path} does not exist; give the path of an .h5ad file")
    if path.suffix != ".h5ad":
        raise InputError(f"{what} file {path} is not an .h5ad file; save your AnnData with adata.write_h5ad(...)")
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py raises OSError, KeyError, TypeError... for damaged files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"cannot read {what} file {path}: {reason} (truncated, corrupt or not written by "
                         "anndata); write it again with adata.write_h5ad(...)") from None


def save_torch(path: str | os.PathLike, obj: dict) -> Path:
    """Save a checkpoint (a dict of tensors and plain values) atomically with ``torch.save``."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: str | os.PathLike, map_location=None) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``: tensors and plain values only, no code runs.

    Raises
    ------
    InputError
        The file is not a checkpoint that loads without unpickling arbitrary objects.
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises RuntimeError / UnpicklingError / EOFError for damaged files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"cannot load the checkpoint {path}: {reason}; it must be a torch.save of tensors and "
                         "plain values (loaded with weights_only=True)") from None
