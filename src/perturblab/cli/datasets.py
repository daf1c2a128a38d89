"""``perturblab datasets``: list every data file, whether it is found locally, and where."""

from __future__ import annotations

from . import app


@app.command("datasets")
def datasets_cmd() -> None:
    """List perturblab's data files: found locally (data directory or cache) or not, and where to get them."""
    from rich.console import Console
    from rich.table import Table

    from ..datasets import CACHE_DIR_ENV, DATA_DIR_ENV, REGISTRY, cache_dir, data_dir, locate

    console = Console()
    console.print(f"{DATA_DIR_ENV} = {data_dir() or '<unset>'}")
    console.print(f"cache ({CACHE_DIR_ENV}) = {cache_dir()}")
    table = Table("file", "status", "location / download")
    for relpath, entry in REGISTRY.items():
        path = locate(entry)
        if path is not None:
            table.add_row(relpath, "found", str(path))
        elif entry.url is not None:
            table.add_row(relpath, "missing (downloadable)", entry.url)
        elif entry.builder is not None:
            table.add_row(relpath, "missing (rebuilt from sources)", "; ".join(s.url for s in entry.sources))
        else:
            table.add_row(relpath, "missing (place in data dir)", entry.source)
    console.print(table)
    console.print("pbmc68k_reduced: ships with scanpy (no file needed)")
