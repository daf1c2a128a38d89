"""Lookup order and checksum-verified download, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import socket

import pytest

from perturblab import datasets
from perturblab.datasets import DataFile, DataFileNotFoundError

from .conftest import files_in

PAYLOAD = b"gene\tcell_type\nCD3E\tT cell\nMS4A1\tB cell\n"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture()
def server(www):
    """Base URL of the local server, serving the payload plain and gzip-compressed."""
    root, base = www
    (root / "markers.tsv").write_bytes(PAYLOAD)
    (root / "markers.tsv.gz").write_bytes(gzip.compress(PAYLOAD))
    return base


def test_download_into_cache_with_checksum(server, dirs):
    _data, cache = dirs
    entry = DataFile("markers/test.tsv", PAYLOAD_SHA, "test", url=f"{server}/markers.tsv")
    path = datasets.fetch(entry)
    assert path == cache / "markers" / "test.tsv"
    assert path.read_bytes() == PAYLOAD
    assert datasets.sha256sum(path) == PAYLOAD_SHA
    assert files_in(cache) == [path]  # no temporary files left behind
    assert datasets.locate(entry) == path  # a second lookup finds the cached copy


def test_gzip_download_checked_after_decompression(server, dirs):
    _, cache = dirs
    entry = DataFile("markers/test.tsv", PAYLOAD_SHA, "test", url=f"{server}/markers.tsv.gz",
                     compression="gzip")
    path = datasets.fetch(entry)
    assert path.read_bytes() == PAYLOAD
    assert files_in(cache) == [path]


@pytest.mark.parametrize("name,compression", [("markers.tsv", None), ("markers.tsv.gz", "gzip")])
def test_checksum_mismatch_leaves_nothing(server, dirs, name, compression):
    _, cache = dirs
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    entry = DataFile("markers/test.tsv", wrong, "test", url=f"{server}/{name}", compression=compression)
    with pytest.raises(ValueError, match="checksum mismatch for 'markers/test.tsv'"):
        datasets.fetch(entry)
    assert files_in(cache) == []


def test_offline_missing_error_names_file_env_and_url(dirs):
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/markers.tsv"
    entry = DataFile("markers/test.tsv", PAYLOAD_SHA, "test", url=url)
    with pytest.raises(DataFileNotFoundError) as err:
        datasets.fetch(entry)
    message = str(err.value)
    assert "markers/test.tsv" in message and datasets.DATA_DIR_ENV in message and url in message
    assert isinstance(err.value, FileNotFoundError)
    assert files_in(dirs[1]) == []


def test_data_dir_wins_over_cache(dirs):
    data, cache = dirs
    entry = DataFile("x/file.txt", PAYLOAD_SHA, "test")
    (cache / "x").mkdir(parents=True)
    (cache / "x" / "file.txt").write_bytes(PAYLOAD)
    assert datasets.fetch(entry) == cache / "x" / "file.txt"
    (data / "x").mkdir()
    (data / "x" / "file.txt").write_bytes(PAYLOAD)
    assert datasets.fetch(entry) == data / "x" / "file.txt"


def test_unknown_file_lists_registry():
    with pytest.raises(KeyError, match="unknown data file 'nope.h5ad'"):
        datasets.fetch("nope.h5ad")


def test_registry_matches_shared_data_checksums():
    """Every registered file of the real data directory has the registered sha256; the others (the full
    perturbation datasets, the gene-set libraries) are downloadable over https with a checksum, or rebuilt from
    checksummed public sources with a content checksum."""
    checked = 0
    for relpath, entry in datasets.REGISTRY.items():
        assert entry.url is None or entry.url.startswith("https://")
        assert all(src.url.startswith("https://") for src in entry.sources)
        if (datasets.data_dir() / relpath).is_file():
            assert datasets.sha256sum(datasets.fetch(relpath)) == entry.sha256, relpath
            checked += 1
        elif entry.url is not None:
            assert entry.sha256 or entry.md5, relpath
        else:
            assert entry.builder and entry.content_sha256 and all(src.known_hash for src in entry.sources), relpath
    assert checked == 13  # every file of the shared data folder's README


def test_local_copies_are_verified_once(tmp_path, monkeypatch):
    """A copy in the data directory is checked against its registered checksum on first use (a one-byte edit of
    TRRUST, STAT1 -> STAT7, is refused); the verdict is cached, so an unchanged file is not hashed again."""
    import os
    import shutil

    from perturblab.datasets import _fetch
    from perturblab.exceptions import ChecksumError

    source = datasets.data_dir()
    for tag in ("edited", "intact"):
        (tmp_path / tag / "references").mkdir(parents=True)
    shutil.copy(source / "references" / "trrust_v2_human.tsv", tmp_path / "intact" / "references")
    text = (source / "references" / "trrust_v2_human.tsv").read_text()
    assert "STAT1\t" in text
    (tmp_path / "edited" / "references" / "trrust_v2_human.tsv").write_text(text.replace("STAT1\t", "STAT7\t", 1))
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "edited"))
    with pytest.raises(ChecksumError, match="trrust_v2_human.tsv.*does not match its registered checksum"):
        datasets.trrust()
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "intact"))
    assert len(datasets.trrust()) > 9000
    calls = []
    monkeypatch.setattr(_fetch, "sha256sum", lambda p: calls.append(p) or "x")
    assert len(datasets.trrust()) > 9000 and calls == []  # cached verdict: not hashed again
    os.utime(tmp_path / "intact" / "references" / "trrust_v2_human.tsv", ns=(1, 1))  # touched: checked again
    with pytest.raises(ChecksumError):
        datasets.trrust()
    assert calls
