"""``perturblab datasets``: where data files are looked up."""

from __future__ import annotations

import typer

from . import app


@app.command("datasets")
def datasets_cmd() -> None:
    """Show the data directory setting and which data files are found locally."""
    from rich.console import Console

    from ..datasets import DATA_DIR_ENV, data_dir

    console = Console()
    console.print(f"{DATA_DIR_ENV} = {data_dir()}")
    d = data_dir()
    if d is not None and d.is_dir():
        for p in sorted(d.rglob("*")):
            if p.is_file():
                console.print(f"  {p.relative_to(d)}")
    else:
        raise typer.Exit(code=0)
