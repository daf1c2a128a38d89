"""Locate data files: data directory, then user cache, then a checksum-verified download (see :func:`fetch`)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pooch

from ..exceptions import ChecksumError, DataFileNotFoundError, MissingKeyError
from ._registry import REGISTRY, DataFile

DATA_DIR_ENV = "PERTURBLAB_DATA_DIR"
CACHE_DIR_ENV = "PERTURBLAB_CACHE_DIR"
_VERDICTS = "verified.json"


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
        raise MissingKeyError(f"unknown data file {file!r}; registered files: {sorted(REGISTRY)}") from None


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


def _md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _matches(entry: DataFile, path: Path) -> bool:
    """True if the file at ``path`` has ``entry``'s bytes (sha256 or md5) or, for a rebuilt file, its content."""
    if entry.sha256 is not None and sha256sum(path) == entry.sha256:
        return True
    if entry.sha256 is None and entry.md5 is not None and _md5sum(path) == entry.md5:
        return True
    if entry.content_sha256 is not None:
        from ._fingerprint import content_sha256

        try:
            return content_sha256(path) == entry.content_sha256
        except Exception:  # an unreadable file does not have the content
            return False
    return False


def _verdict_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def verify(file: str | DataFile, path: str | os.PathLike) -> Path:
    """Check a local copy of a registered data file against its registered checksum, once.

    The verdict is cached in the user cache (``verified.json``, keyed by path, size, modification time and
    inode), so a file is hashed again only after it changed.

    Raises
    ------
    ChecksumError
        If the file's bytes (and, for a file perturblab rebuilds, its content) differ from the registered ones.
    """
    from ..io import read_json, write_json

    entry, path = _entry(file), Path(path)
    store = cache_dir() / _VERDICTS
    try:
        verdicts = read_json(store) if store.is_file() else {}
    except Exception:
        verdicts = {}
    key = _verdict_key(path)
    if verdicts.get(key) == entry.relpath:
        return path
    if not _matches(entry, path):
        raise ChecksumError(
            f"data file {entry.relpath!r} at {path} does not match its registered checksum (edited, truncated or "
            f"another version); restore the original file or delete it so that perturblab fetches it again")
    verdicts[key] = entry.relpath
    with contextlib.suppress(OSError):  # a read-only cache only costs a new check next time
        write_json(store, verdicts)
    return path


def _missing_message(entry: DataFile, reason: str) -> str:
    if entry.url:
        where = f"download URL: {entry.url}"
    elif entry.builder:
        where = "rebuilt from its public sources: " + ", ".join(src.url for src in entry.sources)
    else:
        where = f"no public download; source: {entry.source}"
    d = data_dir()
    current = "<unset>" if d is None else f"{d}" + ("" if d.is_dir() else ", which does not exist")
    return (
        f"data file {entry.relpath!r} not found ({reason}); put it at <{DATA_DIR_ENV}>/{entry.relpath} "
        f"(currently {DATA_DIR_ENV}={current}) or go online so that perturblab downloads it "
        f"into {cache_dir()} ({CACHE_DIR_ENV} overrides); {where}"
    )


def _retrieve(url: str, known_hash: str | None, folder: str, entry: DataFile) -> Path:
    """pooch download of ``url`` into ``folder``, checking ``known_hash`` (pooch deletes a mismatch)."""
    import requests  # pooch's HTTP downloader uses requests

    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=Path(url.split("?")[0]).name, path=folder,
                                   progressbar=False))
    except requests.exceptions.RequestException as err:
        reason = f"download of {url} failed: {type(err).__name__}, offline or unreachable"
        raise DataFileNotFoundError(_missing_message(entry, reason)) from None
    except ValueError as err:
        if "hash" not in str(err):
            raise
        raise ChecksumError(
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
        got = _retrieve(str(entry.url), known_hash, tmp, entry)
        if entry.compression == "gzip":
            plain = Path(tmp) / (target.name + ".plain")
            with gzip.open(got, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            digest = sha256sum(plain)
            if digest != entry.sha256:
                raise ChecksumError(
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
    ChecksumError
        If a local copy (data directory or cache) does not have the registered checksum; it is checked on first
        use and the verdict cached (see :func:`verify`).
    ValueError
        If the downloaded bytes do not have the registered checksum, or a rebuilt file not its registered
        content checksum.
    """
    entry = _entry(file)
    path = locate(entry)
    if path is not None:
        return verify(entry, path)
    if entry.url is not None:
        return _download(entry)
    if entry.builder is not None:
        return _build(entry)
    raise DataFileNotFoundError(_missing_message(entry, "it is a perturblab repackaging with no public source"))
