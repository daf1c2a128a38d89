"""``perturblab audit`` on the command line."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from perturblab.cli import app


def test_audit_command(tmp_path):
    out = tmp_path / "out"
    args = ["audit", "--out", str(out), "--classifiers", "sctype", "--clusters", "B,NK", "--format", "csv",
            "--n-jobs", "1", "--search-mode", "sctype=dichotomic"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    att = pd.read_csv(out / "tables" / "attacks.csv")
    assert set(att["cluster"]) == {"B", "NK"} and set(att["mode"]) == {"dichotomic"}
    assert set(att["modification"]) == {"perc1", "perc99"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["classifiers"] == ["sctype"] and summary["n_units"] == 4
    assert (out / "report.html").is_file()
    again = CliRunner().invoke(app, args)  # non-empty --out: refused, nothing overwritten
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0 and "4 resumed" in resumed.output


def test_audit_command_bad_option(tmp_path):
    res = CliRunner().invoke(app, ["audit", "--out", str(tmp_path / "o"), "--attacks", "fgsm"])
    assert res.exit_code == 2 and "unknown attack" in res.output
