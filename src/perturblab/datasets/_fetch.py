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
    if entry.url:
        where = f"download URL: {entry.url}"
    elif entry.builder:
        where = "rebuilt from its public sources: " + ", ".join(src.url for src in entry.sources)
    else:
        where = f"no public download; source: {entry.source}"
    return (
        f"data file {entry.relpath!r} not found ({reason}). Put it at <{DATA_DIR_ENV}>/{entry.relpath} "
        f"(currently {DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV, '<unset>')}) or let perturblab download it "
        f"into {cache_dir()} ({CACHE_DIR_ENV} overrides). {where}"
    )


def _retrieve(url: str, known_hash: str | None, folder: str, entry: DataFile) -> Path:
    """pooch download of ``url`` into ``folder``, checking ``known_hash`` (pooch deletes a mismatch)."""
    import requests  # pooch's HTTP downloader uses requests

    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=Path(url.split("?")[0]).name, path=folder,
                                   progressbar=False))
    except requests.exceptions.RequestException as err:
        raise DataFileNotFoundError(_missing_message(entry, f"download of {url} failed: {err}")) from err
    except ValueError as err:
        if "hash" not in str(err):
            raise
        raise ValueError(
            f"checksum mismatch for {entry.relpath!r} downloaded from {url}: {err}. Nothing was written to the cache."
        ) from err


def _download(entry: DataFile) -> Path:
    """Download ``entry`` into the cache; the file appears there only once its checksum matches."""
    target = cache_dir() / entry.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as tmp:
        # pooch checks the hash itself unless the URL is a gzip, whose own checksum is unknown: then the
        # decompressed bytes are checked below.
        if entry.compression:
            known_hash = None
        else:
            known_hash = f"sha256:{entry.sha256}" if entry.sha256 else f"md5:{entry.md5}"
        got = _retrieve(entry.url, known_hash, tmp, entry)
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


def _build(entry: DataFile) -> Path:
    """Download ``entry``'s public sources and rebuild it into the cache (see :mod:`._build`)."""
    from ._build import build_into

    target = cache_dir() / entry.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sources-", dir=target.parent) as tmp:
        paths = {}
        for src in entry.sources:
            folder = Path(tmp) / src.name
            folder.mkdir()
            paths[src.name] = _retrieve(src.url, src.known_hash, str(folder), entry)
        return build_into(entry, paths, target)


def fetch(file: str | DataFile) -> Path:
    """Return the local path of a data file, downloading it (checksum-verified) if needed.

    Lookup order: (1) ``$PERTURBLAB_DATA_DIR/<relpath>``; (2) ``<cache>/<relpath>`` where the cache is
    ``$PERTURBLAB_CACHE_DIR`` or ``pooch.os_cache("perturblab")``; (3) download from the registered public
    URL with pooch into the cache, verifying the sha256 (or the publisher's md5), or, for a file perturblab
    repackaged, download its public sources and rebuild it, verifying the content checksum of the result
    (a failed check leaves nothing in the cache).

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
        If the downloaded bytes do not have the registered checksum, or a rebuilt file not its registered
        content checksum.
    """
    entry = _entry(file)
    path = locate(entry)
    if path is not None:
        return path
    if entry.url is not None:
        return _download(entry)
    if entry.builder is not None:
        return _build(entry)
    raise DataFileNotFoundError(_missing_message(entry, "it is a perturblab repackaging with no public source"))
