"""Locate data files: data directory, then user cache, then a checksum-verified download (see :func:`fetch`)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pooch

from ._registry import REGISTRY, DataFile

DATA_DIR_ENV = "PERTURBLAB_DATA_DIR"
CACHE_DIR_ENV = "PERTURBLAB_CACHE_DIR"


class DataFileNotFoundError(FileNotFoundError):
    """A data file is neither in the data directory nor in the cache, and could not be downloaded."""


def data_dir() -> Path | None:
    """The data directory set by the ``PERTURBLAB_DATA_DIR`` environment variable, or None."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The download cache: ``PERTURBLAB_CACHE_DIR`` if set, else ``pooch.os_cache("perturblab")``."""
    value = os.environ.get(CACHE_DIR_ENV)
    return Path(value).expanduser() if value else Path(pooch.os_cache("perturblab"))


def _entry(file: str | DataFile) -> DataFile:
    if isinstance(file, DataFile):
        return file
    try:
        return REGISTRY[file]
    except KeyError:
        raise KeyError(f"unknown data file {file!r}; registered files: {sorted(REGISTRY)}") from None


def locate(file: str | DataFile) -> Path | None:
    """Local path of a registered data file (data directory first, then cache), or None if absent."""
    entry = _entry(file)
    d = data_dir()
    for root in ([d] if d is not None else []) + [cache_dir()]:
        path = root / entry.relpath
        if path.is_file():
            return path
    return None


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _missing_message(entry: DataFile, reason: str) -> str:
    where = f"download URL: {entry.url}" if entry.url else f"no public download; source: {entry.source}"
    return (
        f"data file {entry.relpath!r} not found ({reason}). Put it at <{DATA_DIR_ENV}>/{entry.relpath} "
        f"(currently {DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV, '<unset>')}) or let perturblab download it "
        f"into {cache_dir()} ({CACHE_DIR_ENV} overrides). {where}"
    )


def _download(entry: DataFile) -> Path:
    """Download ``entry`` into the cache; the file appears there only once its sha256 matches."""
    import requests  # pooch's HTTP downloader uses requests

    target = cache_dir() / entry.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as tmp:
        # pooch checks the hash itself (and deletes the download on mismatch) unless the URL is a gzip,
        # whose own checksum is unknown: then the decompressed bytes are checked below.
        known_hash = None if entry.compression else f"sha256:{entry.sha256}"
        try:
            got = Path(
                pooch.retrieve(
                    entry.url,
                    known_hash=known_hash,
                    fname=Path(entry.url).name,
                    path=tmp,
                    progressbar=False,
                )
            )
        except requests.exceptions.RequestException as err:
            raise DataFileNotFoundError(_missing_message(entry, f"download failed: {err}")) from err
        except ValueError as err:
            if "hash" not in str(err):
                raise
            raise ValueError(
                f"checksum mismatch for {entry.relpath!r} downloaded from {entry.url}: {err}. "
                "Nothing was written to the cache."
            ) from err
        if entry.compression == "gzip":
            plain = Path(tmp) / (target.name + ".plain")
            with gzip.open(got, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            digest = sha256sum(plain)
            if digest != entry.sha256:
                raise ValueError(
                    f"checksum mismatch for {entry.relpath!r} decompressed from {entry.url}: expected sha256 "
                    f"{entry.sha256}, got {digest}. Nothing was written to the cache."
                )
            got = plain
        os.replace(got, target)
    return target


def fetch(file: str | DataFile) -> Path:
    """Return the local path of a data file, downloading it (checksum-verified) if needed.

    Lookup order: (1) ``$PERTURBLAB_DATA_DIR/<relpath>``; (2) ``<cache>/<relpath>`` where the cache is
    ``$PERTURBLAB_CACHE_DIR`` or ``pooch.os_cache("perturblab")``; (3) download from the registered public
    URL with pooch into the cache, verifying the sha256 (a failed check leaves nothing in the cache).

    Parameters
    ----------
    file : str or DataFile
        A registered relative path (see ``perturblab.datasets.REGISTRY``), e.g.
        ``"markers/ScTypeDB_full.xlsx"``, or a :class:`DataFile`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    KeyError
        If ``file`` is not a registered data file.
    DataFileNotFoundError
        (a ``FileNotFoundError``) if the file is not local and has no public download or the download
        failed (offline); the message names the file, ``PERTURBLAB_DATA_DIR`` and the URL or source.
    ValueError
        If the downloaded bytes do not have the registered sha256.
    """
    entry = _entry(file)
    path = locate(entry)
    if path is not None:
        return path
    if entry.url is None:
        raise DataFileNotFoundError(_missing_message(entry, "it is a perturblab repackaging"))
    return _download(entry)
