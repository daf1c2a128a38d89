"""The output folder of a run (``--out``): which command made it, with which settings and data.

Layout::

    OUT/run.json        command, perturblab version, settings, data checksum, fingerprint
    OUT/units/<id>/     one folder per finished unit of work (see :mod:`perturblab.runs.store`)
    OUT/...             the run's tables, summary.json, report.html

The contract, the same for every command:

- a missing or empty ``--out`` is created and starts a new run;
- a non-empty ``--out`` is refused unless ``resume`` or ``overwrite`` is given;
- ``resume`` continues a run of the *same command* whose settings and input data are identical; any difference
  is refused with the names and values of the settings that differ;
- ``overwrite`` deletes everything an earlier run of the same command left in the folder, then starts anew;
- a folder made by another command, or not made by perturblab, is never written into.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import InputError, RunFolderError, SettingsMismatchError
from ..io import read_json, write_json

__all__ = ["RunFolder", "open_run", "fingerprint", "RUN_FILE"]

RUN_FILE = "run.json"


def _canonical(obj: Any) -> Any:
    """JSON round trip: tuples become lists, numpy scalars plain numbers, keys strings (sorted on dump)."""
    from ..io import _json_default

    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def fingerprint(settings: dict, data: Any = None) -> str:
    """sha256 of the canonical JSON of ``settings`` and ``data`` (the data checksum(s))."""
    text = json.dumps({"settings": _canonical(settings), "data": _canonical(data)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _differences(stored: dict, current: dict, prefix: str = "") -> dict[str, tuple]:
    """``{dotted key: (stored, current)}`` for every leaf that differs."""
    out: dict[str, tuple] = {}
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key, "<absent>"), current.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(_differences(a, b, name + "."))
        elif a != b:
            out[name] = (a, b)
    return out


@dataclass(frozen=True)
class RunFolder:
    """An output folder prepared by :func:`open_run`.

    Attributes
    ----------
    path
        The folder.
    command
        The command that made it (``"audit"``, ``"predict"``, ``"benchmark"``, ``"tune"``, ``"interpret"``).
    settings
        The settings that change results (canonical JSON values).
    data
        Checksum(s) of the input data.
    fingerprint
        :func:`fingerprint` of ``settings`` and ``data``; every unit stored in the folder records it.
    resumed
        True when an earlier run's units are kept.
    """

    path: Path
    command: str
    settings: dict
    data: Any
    fingerprint: str
    resumed: bool

    def file(self, name: str) -> Path:
        """Path of a result file of the run (``OUT/name``)."""
        return self.path / name


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".perturblab-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except NotADirectoryError:
        raise RunFolderError(f"--out {out} is inside a file, not a folder; choose a folder path") from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RunFolderError(f"cannot write into --out {out} ({reason}); choose a folder you can write to") from None


def _read_run_file(out: Path) -> dict | None:
    path = out / RUN_FILE
    if not path.is_file():
        return None
    try:
        info = read_json(path)
    except InputError:
        return None
    return info if isinstance(info, dict) and "command" in info else None


def open_run(out: str | os.PathLike, command: str, settings: dict, data: Any = None, *, resume: bool = False,
             overwrite: bool = False) -> RunFolder:
    """Create, resume or overwrite the output folder of a run, following the contract above.

    Parameters
    ----------
    out
        Output folder.
    command
        Name of the command (recorded; another command refuses the folder).
    settings
        Everything that changes the results (JSON-serialisable; not the number of workers or the device).
    data
        Checksum(s) of the input data (e.g. :func:`perturblab.runs.data_checksum`).
    resume, overwrite
        What to do with a non-empty folder (at most one of the two).

    Returns
    -------
    RunFolder

    Raises
    ------
    InputError
        ``resume`` and ``overwrite`` together.
    RunFolderError
        The folder is not writable, lies inside a file, is non-empty without ``resume``/``overwrite``, was made
        by another command, or is not a perturblab run folder.
    SettingsMismatchError
        ``resume`` of a run whose settings or data differ (the message names each difference).

    Examples
    --------
    >>> import tempfile
    >>> from perturblab.runs import open_run
    >>> out = tempfile.mkdtemp()
    >>> run = open_run(out, "predict", {"seed": 0})
    >>> try:
    ...     open_run(out, "predict", {"seed": 7}, resume=True)
    ... except Exception as err:
    ...     print(err.differences)
    {'settings.seed': (0, 7)}
    """
    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other; give one of them")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder; choose a folder path")
    _check_writable(out)
    settings, data = _canonical(settings), _canonical(data)
    fp = fingerprint(settings, data)
    entries = [p for p in out.iterdir() if not p.name.startswith(".perturblab-probe-")]
    info = _read_run_file(out)
    if entries:
        if info is None:
            raise RunFolderError(f"--out {out} is not empty and holds no perturblab run ({RUN_FILE} missing); "
                                 "choose an empty or new folder")
        if info["command"] != command:
            raise RunFolderError(f"--out {out} holds the results of 'perturblab {info['command']}'; choose another "
                                 f"folder for 'perturblab {command}'")
        if not (resume or overwrite):
            raise RunFolderError(f"--out {out} already holds a run of 'perturblab {command}'; pass --resume to "
                                 "continue it or --overwrite to replace it")
        if resume:
            stored = {"settings": info.get("settings", {}), "data": info.get("data")}
            diff = _differences(stored, {"settings": settings, "data": data})
            if diff:
                raise SettingsMismatchError(out, diff)
            return RunFolder(out, command, settings, data, fp, resumed=True)
        for entry in entries:  # overwrite: nothing of the earlier run survives
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    from .._version import __version__

    write_json(out / RUN_FILE, {"command": command, "perturblab_version": __version__,
                                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                                "settings": settings, "data": data, "fingerprint": fp})
    return RunFolder(out, command, settings, data, fp, resumed=False)
