"""``perturblab benchmark`` and ``perturblab tune`` end to end on a small real Kang subset."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from perturblab.cli import app
from perturblab.predict import BASELINES


def test_benchmark_command_writes_table_and_report_and_resumes(kang_small_counts, tmp_path):
    data = tmp_path / "kang_small.h5ad"
    kang_small_counts.write_h5ad(data)
    out = tmp_path / "bench"
    args = ["benchmark", "--data", str(data), "--out", str(out), "--model", "scgen", "--target", "B",
            "--variant", "balanced", "--max-epochs", "1", "--n-bootstrap", "0",
            "--n-top-genes", "100"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out / "benchmark.parquet")
    assert {"model", "target", "variant", "seed", "metric", "value", "ci_low", "ci_high"} <= set(table.columns)
    assert set(table["model"]) >= {"scgen", "identity", "mean_delta"}
    assert (out / "report.html").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_run_now"] == 1 + len(BASELINES) + 1  # the model, the baselines and the ceiling
    assert summary["protocol"] == "perturblab" and summary["data"]["file"] == str(data)
    assert "protocol perturblab" in res.output and "ceiling" in res.output
    again = CliRunner().invoke(app, [*args, "--resume"])
    assert again.exit_code == 0 and "(0 run now)" in again.output
    # the published protocol by name: small cell types dropped, 1e4 counts, another mean-delta control mean
    scgen = CliRunner().invoke(app, [*args, "--protocol", "scgen", "--overwrite"])
    assert scgen.exit_code == 0 and "protocol scgen" in scgen.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "scgen" and summary["data"]["normalisation"].startswith(
        "normalize_total to the 10000 counts")
    bad = CliRunner().invoke(app, [*args[:-2], "--n-top-genes", "100", "--target", "Unicorn", "--overwrite"])
    assert bad.exit_code == 2 and "unknown cell type" in bad.output and "'Unicorn'" in bad.output
    frac = CliRunner().invoke(app, [*args, "--fraction", "1.5", "--overwrite"])
    assert frac.exit_code == 2 and "fraction must be in (0, 1]" in frac.output and "Traceback" not in frac.output


def test_tune_command(kang_small_counts, tmp_path):
    data = tmp_path / "kang_small.h5ad"
    kang_small_counts.write_h5ad(data)
    out = tmp_path / "tune"
    res = CliRunner().invoke(app, ["tune", "--data", str(data), "--out", str(out), "--model", "scpram",
                                   "--target", "B", "--n-trials", "1", "--max-epochs", "1", "--n-inner", "1",
                                   "--n-bootstrap", "0", "--n-top-genes", "100"])
    assert res.exit_code == 0, res.output
    best = json.loads((out / "best_params.json").read_text())
    assert set(best["best_params"]) == {"n_latent", "n_hidden", "noise_rate", "kl_weight", "lr", "ratio"}
    assert best["storage"].startswith("sqlite:///") and (out / "study.db").exists()
    final = pd.read_parquet(out / "final_metrics.parquet")
    assert set(final["config"]) == {"tuned", "default", "baseline"}
