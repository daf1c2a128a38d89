"""The ``perturblab`` command line (typer).

Each sub-command lives in its own module of this package and registers itself
on :data:`app` here; heavy imports happen inside the commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="perturblab",
    help="Put single-cell models under controlled perturbation: attack, predict, interpret.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Put single-cell models under controlled perturbation: attack, predict, interpret."""
    # A callback keeps typer in group mode, so commands are always named (even when only one exists).


# Modules that define commands on `app` (one per command family).
_COMMAND_MODULES = ("datasets", "audit", "predict", "interpret", "benchmark", "tune")

for _name in _COMMAND_MODULES:
    importlib.import_module(f".{_name}", __name__)


def main() -> None:  # console-script entry point
    app()
