"""Fixtures of the dataset tests: an HTTP server on 127.0.0.1 and empty data/cache folders."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from perturblab import datasets


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture()
def www(tmp_path):
    """(folder, base URL): an HTTP server on 127.0.0.1 (random port) serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
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


def files_in(folder):
    """Every file under ``folder`` (sorted), or [] if it does not exist."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
