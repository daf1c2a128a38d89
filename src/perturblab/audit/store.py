"""Persistence of an audit: the output folder, one atomically written JSON file per finished unit.

Layout of ``out``::

    audit_config.json     the settings of the run (a resumed run must use the same)
    units/<unit id>.json  one per finished unit of work: {"unit", "summary", "tables"}
    tables/*.parquet|csv  the tidy result tables (written at the end)
    summary.json, report.html

A unit file is written with :func:`perturblab._io.write_json` (temporary file + rename), so a
file that exists is complete; an interrupted run leaves no partial unit, and a resumed run
redoes only the units without a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .._io import write_json

__all__ = ["UnitStore", "prepare_out_dir", "OutputExistsError"]

CONFIG_FILE = "audit_config.json"


class OutputExistsError(FileExistsError):
    """Raised when ``--out`` is not empty and neither resume nor overwrite was asked for."""


def prepare_out_dir(out, config: dict, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Create or check the output folder.

    - empty or missing folder: created, ``config`` written;
    - non-empty and ``resume``: the stored settings must equal ``config`` (finished units are kept);
    - non-empty and ``overwrite``: the previous units are deleted, ``config`` written;
    - non-empty otherwise: :class:`OutputExistsError`.

    Raises
    ------
    OutputExistsError
        Non-empty folder without ``resume``/``overwrite``.
    ValueError
        ``resume`` and ``overwrite`` together, or ``resume`` of a folder whose settings differ
        (or that holds no audit).
    """
    if resume and overwrite:
        raise ValueError("choose either resume or overwrite, not both")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    non_empty = out.is_dir() and any(out.iterdir())
    cfg_path = out / CONFIG_FILE
    if non_empty and resume:
        if not cfg_path.is_file():
            raise ValueError(f"cannot resume: {out} is not empty but holds no {CONFIG_FILE} (not an audit folder)")
        stored = json.loads(cfg_path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
        if diff:
            raise ValueError(
                f"cannot resume {out}: its audit used other settings ({', '.join(diff)}); "
                "use the same options, another --out, or --overwrite"
            )
        return out
    if non_empty and not overwrite:
        raise OutputExistsError(
            f"--out {out} is not empty; pass --resume to continue that audit or --overwrite to replace it"
        )
    if non_empty and overwrite:
        if out.joinpath("units").is_dir() or cfg_path.is_file():
            for p in sorted(out.joinpath("units").glob("*.json")):
                p.unlink()
        else:
            raise ValueError(f"refusing to overwrite {out}: it is not an audit folder (no {CONFIG_FILE})")
    out.mkdir(parents=True, exist_ok=True)
    write_json(cfg_path, config)
    return out


class UnitStore:
    """Finished units of an audit, one JSON file each under ``<out>/units``."""

    def __init__(self, out):
        self.dir = Path(out) / "units"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, unit_id: str) -> Path:
        return self.dir / f"{unit_id}.json"

    def done(self, unit_id: str) -> bool:
        """True if the unit's result file exists (files are complete by construction)."""
        return self.path(unit_id).is_file()

    def save(self, result: dict) -> Path:
        """Persist a unit result ``{"unit": {...,"id"}, "summary": {...}, "tables": {name: DataFrame}}``."""
        payload = {
            "unit": result["unit"],
            "summary": result.get("summary", {}),
            "tables": {k: _df_to_json(v) for k, v in result.get("tables", {}).items()},
        }
        return write_json(self.path(result["unit"]["id"]), payload)

    def load(self, unit_id: str) -> dict:
        """A persisted unit result, tables as DataFrames."""
        payload = json.loads(self.path(unit_id).read_text(encoding="utf-8"))
        payload["tables"] = {k: _df_from_json(v) for k, v in payload["tables"].items()}
        return payload


def _df_to_json(df: pd.DataFrame) -> dict:
    return {"columns": [str(c) for c in df.columns], "data": df.astype(object).where(df.notna(), None).values.tolist()}


def _df_from_json(d: dict) -> pd.DataFrame:
    return pd.DataFrame(d["data"], columns=d["columns"])
