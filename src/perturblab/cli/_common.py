"""What every command shares: the option vocabulary, and how a command runs and reports.

A command only parses its options, calls one library function and prints. :func:`command` wraps it:

- verbosity (``--quiet`` / ``--verbose``) sets :data:`perturblab.settings` and decides what third-party noise
  (CellTypist's log lines, FutureWarnings, scanpy's RuntimeWarnings) reaches the terminal: none by default;
- progress is shown as bars on a terminal and as a plain line every 30 s otherwise (logs, pipes);
- errors of perturblab become one line ``error: ...`` (no traceback, no markup interpretation of data) with
  exit code 2 for usage errors and 1 for failed runs; an unexpected error says how to get its traceback.
"""

from __future__ import annotations

import enum
import functools
import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from ..exceptions import PerturblabError, PerturblabWarning
from ..runs import progress

__all__ = ["command", "echo", "Out", "Data", "Resume", "Overwrite", "Seed", "Device", "NJobs", "Scheduler",
           "Format", "TableFormat", "NBootstrap", "Quiet", "Verbose", "choices", "str_enum"]


def str_enum(name: str, values) -> type[enum.Enum]:
    """A string Enum (typer shows its values as the valid choices in ``--help``)."""
    return enum.Enum(name, {str(v): str(v) for v in values}, type=str)  # type: ignore[return-value]


def choices(values) -> list[str]:
    """Enum members (or plain values) as strings, duplicates removed, order kept."""
    return list(dict.fromkeys(v.value if isinstance(v, enum.Enum) else str(v) for v in values))


TableFormat = str_enum("TableFormat", ("parquet", "csv"))

Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder (see the run contract: --resume, --overwrite).",
                                   show_default=False)]
Data = Annotated[str, typer.Option("--data", help="Dataset name (see 'perturblab datasets') or path of an .h5ad file.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in a non-empty --out; its settings and "
                                      "input data must be identical (differences are named).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Delete everything an earlier run of this command "
                                         "left in --out, then start anew.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random choice (same seed, same numbers).")]
Device = Annotated[str, typer.Option("--device", help="Torch device: auto (CUDA when present), cpu, cuda or cuda:N.")]
NJobs = Annotated[int, typer.Option("--n-jobs", "-j", help="Local worker processes (-1: all cores; 1: none).")]
Scheduler = Annotated[str, typer.Option("--scheduler", help="Dask distributed scheduler address "
                                        "(tcp://host:8786); overrides --n-jobs.", show_default=False)]
Format = Annotated[TableFormat, typer.Option("--format", help="Format of the result tables.")]  # type: ignore[valid-type]
NBootstrap = Annotated[int, typer.Option("--n-bootstrap", help="Bootstrap resamples for confidence intervals "
                                         "(0: none).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print warnings, errors and the final line only.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Print debug details, third-party warnings and "
                                       "tracebacks of unexpected errors.")]


def echo(text: str, err: bool = False) -> None:
    """Print one line as plain text (no markup: gene and label names are data)."""
    typer.echo(text, err=err)


class _RichReporter(progress.Reporter):
    """Progress bars on the terminal (stderr); perturblab's log lines print above them."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True, highlight=False)
        self.bars = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("{task.fields[info]}", markup=False),
                             console=self.console, transient=True)
        self._depth = 0

    def start(self, task: progress.Task) -> None:
        if self._depth == 0:
            self.bars.start()
        self._depth += 1
        task.handle = self.bars.add_task(task.description, total=task.total, completed=task.completed, info="")

    def update(self, task: progress.Task) -> None:
        self.bars.update(task.handle, completed=task.completed, info=task.info)

    def stop(self, task: progress.Task) -> None:
        self.bars.remove_task(task.handle)
        self._depth -= 1
        if self._depth == 0:
            self.bars.stop()


class _ConsoleHandler(logging.Handler):
    """perturblab's log lines through the rich console, so they print above the progress bars."""

    def __init__(self, console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        self.console.print(prefix + self.format(record), markup=False, highlight=False, soft_wrap=True)


class _PlainHandler(logging.StreamHandler):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        return prefix + record.getMessage()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    logging.getLogger("perturblab").warning("%s", message)


def _configure(quiet: bool, verbose: bool) -> progress.Reporter:
    from .._settings import settings

    settings.verbosity = 0 if quiet else 2 if verbose else 1
    logger = logging.getLogger("perturblab")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    reporter: progress.Reporter
    if sys.stderr.isatty() and not quiet:
        rich_reporter = _RichReporter()
        logger.addHandler(_ConsoleHandler(rich_reporter.console))
        reporter = rich_reporter
    else:
        logger.addHandler(_PlainHandler(sys.stderr))
        reporter = progress.LineReporter(interval=30.0) if not quiet else progress.Reporter()
    warnings.showwarning = _show_warning
    if not verbose:
        for name in ("celltypist", "optuna", "numba", "anndata", "scanpy", "distributed", "h5py", "fsspec"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
        except ImportError:
            pass
    return reporter


def _filter_warnings(verbose: bool) -> None:
    """Third-party warnings stay out of the terminal unless ``--verbose``; perturblab's own are shown."""
    if not verbose:
        warnings.simplefilter("ignore")
        warnings.simplefilter("default", PerturblabWarning)


def command(fn):
    """Run a command's body under perturblab's printing and error rules (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        quiet, verbose = bool(kwargs.get("quiet", False)), bool(kwargs.get("verbose", False))
        if quiet and verbose:
            echo("error: --quiet and --verbose exclude each other; give one of them", err=True)
            raise typer.Exit(2)
        logger = logging.getLogger("perturblab")
        saved = (list(logger.handlers), logger.level, warnings.showwarning)
        reporter = _configure(quiet, verbose)
        try:
            with progress.reporting(reporter), warnings.catch_warnings():
                _filter_warnings(verbose)
                return fn(*args, **kwargs)
        except PerturblabError as err:
            if verbose:
                import traceback

                traceback.print_exc()
            echo(f"error: {_one_line(err)}", err=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            echo("interrupted: finished units are kept; rerun with --resume to continue", err=True)
            raise typer.Exit(130) from None
        except typer.Exit:
            raise
        except Exception as err:  # a bug, not a usage error: short by default, the traceback with --verbose
            if verbose:
                raise
            echo(f"error: unexpected {type(err).__name__}: {_one_line(err)} (rerun with --verbose for the traceback "
                 "and report it)", err=True)
            raise typer.Exit(1) from None
        finally:  # leave the process as found (commands also run inside tests and notebooks)
            logger.handlers[:] = saved[0]
            logger.setLevel(saved[1])
            warnings.showwarning = saved[2]

    return wrapper


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__
