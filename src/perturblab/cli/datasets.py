"""``perturblab datasets``: the dataset names ``--data`` accepts, and every data file: found locally or not."""

from __future__ import annotations

from . import app
from ._common import Quiet, Verbose, command, echo


@app.command("datasets")
@command
def datasets_cmd(quiet: Quiet = False, verbose: Verbose = False) -> None:
    """List the dataset names --data accepts and perturblab's data files: found locally (data directory or
    cache) or not, and where to get them."""
    from ..datasets import (
        CACHE_DIR_ENV,
        DATA_DIR_ENV,
        DATASETS,
        REGISTRY,
        cache_dir,
        data_dir,
        locate,
    )

    echo(f"{DATA_DIR_ENV} = {data_dir() or '<unset>'}")
    echo(f"cache ({CACHE_DIR_ENV}) = {cache_dir()}")
    echo("dataset names for --data: " + ", ".join(DATASETS) + " (or the path of an .h5ad file)")
    n_found = 0
    for relpath, entry in REGISTRY.items():
        path = locate(entry)
        if path is not None:
            status, where = "found", str(path)
            n_found += 1
        elif entry.url is not None:
            status, where = "missing (downloadable)", entry.url
        elif entry.builder is not None:
            status, where = "missing (rebuilt from sources)", "; ".join(s.url for s in entry.sources)
        else:
            status, where = "missing (place in data dir)", entry.source
        echo(f"{relpath}\t{status}\t{where}")
    echo("pbmc68k_reduced: ships with scanpy (no file needed)")
    echo(f"datasets: {n_found} of {len(REGISTRY)} data files found locally")
