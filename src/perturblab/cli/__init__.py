"""The ``perturblab`` command line (typer).

Each command lives in its own module of this package and registers itself on :data:`app`; heavy imports
happen inside the commands. Every command follows the same contract (see the README's "Run contract"):
``--out`` is refused when not empty unless ``--resume`` (identical settings and data) or ``--overwrite``;
errors print one line; ``--quiet`` / ``--verbose`` set how much is printed.
"""

from __future__ import annotations

import importlib

import typer

from .._version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="perturblab",
    help="Put single-cell models under controlled perturbation: attack, predict, interpret.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perturblab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Put single-cell models under controlled perturbation: attack, predict, interpret."""


# Modules that define commands on `app` (one per command family).
_COMMAND_MODULES = ("datasets", "audit", "predict", "benchmark", "tune", "interpret")

for _name in _COMMAND_MODULES:
    importlib.import_module(f".{_name}", __name__)


def main() -> None:  # console-script entry point
    app()
