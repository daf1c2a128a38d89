"""``perturblab audit`` on the command line."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from perturblab.cli import app


def test_audit_command(tmp_path):
    out = tmp_path / "out"
    args = ["audit", "--out", str(out), "--classifier", "sctype", "--cluster", "B", "--cluster", "NK",
            "--format", "csv", "--n-jobs", "1", "--search-mode", "sctype=dichotomic", "--n-bootstrap", "20"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    att = pd.read_csv(out / "tables" / "attacks.csv")
    assert set(att["cluster"]) == {"B", "NK"} and set(att["mode"]) == {"dichotomic"}
    assert set(att["modification"]) == {"perc1", "perc99"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["classifiers"] == ["sctype"] and summary["n_units"] == 4
    assert (out / "report.html").is_file()
    assert res.output.strip().splitlines()[-1].startswith("audit: sctype: single_gene: ")
    acc = pd.read_csv(out / "tables" / "accuracy.csv")
    assert (acc["accuracy_ci_low"] <= acc["accuracy"]).all() and (acc["accuracy"] <= acc["accuracy_ci_high"]).all()
    again = CliRunner().invoke(app, args)  # non-empty --out: refused, nothing overwritten
    assert again.exit_code == 2 and "--resume" in again.output and "Traceback" not in again.output
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0 and "4 resumed" in resumed.output


def test_audit_command_bad_option(tmp_path):
    res = CliRunner().invoke(app, ["audit", "--out", str(tmp_path / "o"), "--attack", "fgsn"])
    assert res.exit_code == 2 and "'fgsn' is not one of" in res.output and "'fgsm'" in res.output
    assert not (tmp_path / "o").exists()


def test_audit_bad_cluster_is_one_markup_safe_line(tmp_path):
    res = CliRunner().invoke(app, ["audit", "--out", str(tmp_path / "o"), "--classifier", "sctype",
                                   "--cluster", "NK cells", "--cluster", "[bold]B[/bold]"])
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: unknown cluster 'NK cells'; did you mean 'NK'? (choices: B, CD14+ Mono, CD8 T, DC, "
                      "FCGR3A+ Mono, Memory CD4 T, NK, Naive CD4 T, Platelet)"]
    assert "Traceback" not in res.output
