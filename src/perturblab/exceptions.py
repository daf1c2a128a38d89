"""The errors and warnings perturblab raises.

Every error of perturblab derives from :class:`PerturblabError`, and its message is one sentence that names
the problem and the fix. The library raises them; only the command layer decides how they are printed
(one line, no traceback) and with which exit code (:attr:`PerturblabError.exit_code`: 2 for a usage error,
1 for a run that failed).

Errors about user input also derive from the matching built-in type (``ValueError``, ``KeyError``,
``FileNotFoundError``), so ``except ValueError`` around a perturblab call keeps working.

Examples
--------
>>> from perturblab.exceptions import UnknownNameError
>>> str(UnknownNameError("cell type", "CD14 mono", ["CD14 Mono", "B", "NK"]))
"unknown cell type 'CD14 mono'; did you mean 'CD14 Mono'? (choices: B, CD14 Mono, NK)"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

__all__ = [
    "PerturblabError",
    "InputError",
    "MissingKeyError",
    "UnknownNameError",
    "NotFittedError",
    "DataFileNotFoundError",
    "ChecksumError",
    "RunFolderError",
    "SettingsMismatchError",
    "RunFailedError",
    "MissingExtraError",
    "PerturblabWarning",
    "did_you_mean",
]


class PerturblabError(Exception):
    """Base class of perturblab's errors; ``exit_code`` is what the command line exits with."""

    exit_code = 1


class InputError(PerturblabError, ValueError):
    """Bad input: an invalid value, a malformed or unreadable file, data that cannot be used as given."""

    exit_code = 2


class MissingKeyError(InputError, KeyError):
    """A key (an ``obs`` column, a registry entry) is missing; a ``KeyError`` that prints as plain text."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (case-insensitive first, then by spelling), or None."""
    choices = [str(c) for c in choices]
    folded = {c.casefold(): c for c in choices}
    if str(name).casefold() in folded:
        return folded[str(name).casefold()]
    close = difflib.get_close_matches(str(name).casefold(), list(folded), n=1, cutoff=0.6)
    if close:
        return folded[close[0]]
    words = set(str(name).casefold().split())  # "NK cells" -> "NK": a choice that is one of the name's words
    contained = [c for f, c in folded.items() if f in words or set(f.split()) >= words]
    return contained[0] if len(contained) == 1 and words else None


class UnknownNameError(InputError, KeyError):
    """A name (cluster, cell type, model, dataset, perturbation...) that is not among the valid choices.

    Parameters
    ----------
    what
        What the name designates, e.g. ``"cell type"``.
    name
        The name given.
    choices
        The valid names (the 30 first are listed in the message).
    hint
        Optional extra sentence (how to list or add choices).
    """

    def __init__(self, what: str, name, choices: Iterable[str], hint: str = ""):
        self.what, self.name = what, name
        self.choices = sorted(map(str, choices))
        guess = did_you_mean(str(name), self.choices)
        shown = ", ".join(self.choices[:30]) + (", ..." if len(self.choices) > 30 else "")
        msg = f"unknown {what} {str(name)!r}"
        if guess is not None:
            msg += f"; did you mean {guess!r}?"
        msg += f" (choices: {shown or 'none'})"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


class NotFittedError(PerturblabError, RuntimeError):
    """A model or classifier was used before it was fitted."""

    exit_code = 2


class DataFileNotFoundError(PerturblabError, FileNotFoundError):
    """A data file is neither in the data directory nor in the cache, and could not be downloaded."""


class ChecksumError(PerturblabError, ValueError):
    """A data file's checksum differs from the registered one (edited, truncated or another version)."""


class RunFolderError(PerturblabError):
    """The output folder cannot be used as asked (not empty, made by another command, not writable...)."""

    exit_code = 2


class SettingsMismatchError(RunFolderError):
    """``--resume`` of a run folder whose results were computed with other settings or other data.

    Attributes
    ----------
    differences
        ``{setting: (stored value, requested value)}``.
    """

    def __init__(self, folder, differences: Mapping[str, tuple]):
        self.folder = folder
        self.differences = dict(differences)
        parts = [f"{k}: {_short(old)} -> {_short(new)}" for k, (old, new) in sorted(self.differences.items())]
        super().__init__(
            f"cannot resume {folder}: its results were computed with other settings ({'; '.join(parts)}); "
            "rerun with the stored settings, choose another --out, or pass --overwrite"
        )


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class RunFailedError(PerturblabError, RuntimeError):
    """A unit of work failed; finished units stay on disk, so ``--resume`` continues after the cause is fixed."""


class MissingExtraError(PerturblabError, ImportError):
    """A part of perturblab needs packages of an optional extra that is not installed.

    Parameters
    ----------
    part
        What was used (``"perturblab.predict"``).
    extra
        The extra that installs what it needs (``"predict"``).
    missing
        The missing importable modules.
    """

    exit_code = 2

    def __init__(self, part: str, extra: str, missing: Iterable[str]):
        self.part, self.extra, self.missing = part, extra, sorted(missing)
        super().__init__(f"{part} needs the optional extra [{extra}] (missing: {', '.join(self.missing)}); install it "
                         f"with: pip install 'perturblab[{extra}]'")

    def __str__(self) -> str:
        return str(self.args[0])


class PerturblabWarning(UserWarning):
    """A result is computed but may not mean what the user expects (e.g. counts where log1p is expected)."""
