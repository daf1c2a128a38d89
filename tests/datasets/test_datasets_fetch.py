"""Lookup order and checksum-verified download, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading

import pytest

from perturblab import datasets
from perturblab.datasets import DataFile, DataFileNotFoundError

PAYLOAD = b"gene\tcell_type\nCD3E\tT cell\nMS4A1\tB cell\n"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture()
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (random port); yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "markers.tsv").write_bytes(PAYLOAD)
    (root / "markers.tsv.gz").write_bytes(gzip.compress(PAYLOAD))
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    """An empty data directory and an empty cache, set through the environment variables."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(data))
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(cache))
    return data, cache


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_download_into_cache_with_checksum(server, dirs):
    data, cache = dirs
    entry = DataFile("markers/test.tsv", PAYLOAD_SHA, "test", url=f"{server}/markers.tsv")
    path = datasets.fetch(entry)
    assert path == cache / "markers" / "test.tsv"
    assert path.read_bytes() == PAYLOAD
    assert datasets.sha256sum(path) == PAYLOAD_SHA
    assert _files(cache) == [path]  # no temporary files left behind
    assert datasets.locate(entry) == path  # a second lookup finds the cached copy


def test_gzip_download_checked_after_decompression(server, dirs):
    _, cache = dirs
    entry = DataFile("markers/test.tsv", PAYLOAD_SHA, "test", url=f"{server}/markers.tsv.gz",
                     compression="gzip")
    path = datasets.fetch(entry)
    assert path.read_bytes() == PAYLOAD
    assert _files(cache) == [path]


@pytest.mark.parametrize("name,compression", [("markers.tsv", None), ("markers.tsv.gz", "gzip")])
def test_checksum_mismatch_leaves_nothing(server, dirs, name, compression):
    _, cache = dirs
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    entry = DataFile("markers/test.tsv", wrong, "test", url=f"{server}/{name}", compression=compression)
    with pytest.raises(ValueError, match="checksum mismatch for 'markers/test.tsv'"):
        datasets.fetch(entry)
    assert _files(cache) == []


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
    assert _files(dirs[1]) == []


def test_repackaged_file_missing_names_source(dirs):
    with pytest.raises(DataFileNotFoundError) as err:
        datasets.pbmc3k()
    message = str(err.value)
    assert "pbmc3k_raw_labeled.h5ad" in message and datasets.DATA_DIR_ENV in message
    assert datasets.REGISTRY["pbmc3k_raw_labeled.h5ad"].source in message


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
    """Every registered file in the real data directory has the registered sha256."""
    for relpath, entry in datasets.REGISTRY.items():
        assert datasets.sha256sum(datasets.fetch(relpath)) == entry.sha256, relpath
        assert entry.url is None or entry.url.startswith("https://")
