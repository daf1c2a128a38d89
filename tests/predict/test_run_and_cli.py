"""LOCO runner (resume, the run contract), report and the `perturblab predict` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from perturblab.exceptions import SettingsMismatchError
from perturblab.predict.benchmark import BenchmarkSettings
from perturblab.predict.report import build_report
from perturblab.predict.run import run_loco

TINY = dict(n_hidden=32, n_latent=8, n_layers=1)


def _settings(**kw):
    return BenchmarkSettings(preprocessing=None, model_params={"scgen": TINY, "scgen_unbalanced": TINY},
                             train_params={"scgen": {"max_epochs": 2}, "scgen_unbalanced": {"max_epochs": 2}},
                             evaluate_params={"n_bootstrap": 2, "n_degs": 50, "ks": (10,)}, device="cpu", **kw)


def test_run_loco_resumes_and_reports(tmp_path, kang_small):
    models = ["scgen", "scgen_unbalanced"]
    res = run_loco(kang_small, models, ["B"], out=tmp_path / "out", settings=_settings())
    assert {"scgen", "scgen_unbalanced", "identity", "mean_delta"} <= set(res.metrics["model"])
    train = res.training.set_index("model")
    assert train.loc["scgen", "epochs"] == 2 and train.loc["scgen", "peak_rss_mb"] > 0
    # the same seeded network; scgen_unbalanced's plain delta differs from scgen's balanced delta
    p_bal, p_unb = res.predictions[("B", "scgen")], res.predictions[("B", "scgen_unbalanced")]
    assert p_bal.shape == p_unb.shape and not np.allclose(p_bal.X, p_unb.X)
    res2 = run_loco(kang_small, models, ["B"], out=tmp_path / "out", settings=_settings(), resume=True)
    assert res2.summary["n_units_run"] == 0
    np.testing.assert_allclose(res2.metrics["value"].to_numpy(), res.metrics["value"].to_numpy())
    with pytest.raises(SettingsMismatchError, match="evaluate_params.n_bootstrap: 2 -> 3"):
        run_loco(kang_small, models, ["B"], out=tmp_path / "out", resume=True,
                 settings=BenchmarkSettings(**{**_settings().__dict__, "evaluate_params": {
                     "n_bootstrap": 3, "n_degs": 50, "ks": (10,)}}))
    html = build_report(res).render()
    assert "Target: B" in html and html.count("data:image/png;base64") >= 5
    assert "B: scgen" in html and "mean_delta (R2 all" in html  # the model-vs-baseline verdict
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["targets"] == ["B"]


def test_cli_predict_baselines(tmp_path):
    from perturblab.cli import app

    out = tmp_path / "run"
    args = ["predict", "--model", "baselines", "--target", "B", "--out", str(out), "--n-top-genes", "200",
            "--n-bootstrap", "2", "--device", "cpu", "--format", "csv"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    for f in ("metrics.csv", "training.csv", "summary.csv", "summary.json", "report.html", "run.json"):
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    from perturblab.predict import BASELINES

    assert summary["models"] == list(BASELINES) and "scgen_unbalanced" not in summary["models"]
    assert r.output.strip().splitlines()[-1].startswith("predict (protocol perturblab): B: best R2 ")
    assert ", ceiling " in r.output
    # defect 1: a rerun with other settings never reuses the earlier results, and names what differs
    again = CliRunner().invoke(app, [*args[:-8], "--n-top-genes", "150", "--seed", "7", "--n-bootstrap", "2",
                                     "--device", "cpu", "--format", "csv", "--resume"])
    assert again.exit_code == 2
    assert "preprocessing.n_top_genes: 200 -> 150" in again.output and "settings.seed: 0 -> 7" in again.output
    bad = CliRunner().invoke(app, ["predict", "--model", "scgan", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown model 'scgan'; did you mean 'scgen'?" in bad.output
    typo = CliRunner().invoke(app, ["predict", "--target", "CD14 mono", "--out", str(tmp_path / "y")])
    assert typo.exit_code == 2 and "did you mean 'CD14 Mono'?" in typo.output and "Traceback" not in typo.output


def test_run_loco_two_targets_has_ceiling_metrics_over_targets_and_calibration(tmp_path, kang_small):
    from perturblab.predict import BASELINES

    small = kang_small[:, :100].copy()  # 100 genes: fast
    res = run_loco(small, ["identity"], ["B", "CD14 Mono"], out=tmp_path / "two", settings=_settings())
    assert {"ceiling", *BASELINES} == set(res.metrics["model"])
    # the ceiling: half of the real stimulated cells against the other half, its R2 above the identity's
    r2 = res.metrics.query("metric == 'r2_pearson_mean' and gene_set == 'all'").set_index(["target", "model"])
    assert r2.loc[("CD14 Mono", "ceiling"), "value"] > r2.loc[("CD14 Mono", "identity"), "value"]
    # discrimination scores per target in the metrics, the mean and de_spearman_sig in target_metrics
    disc = res.metrics.query("metric == 'discrimination_score_l1'")
    assert set(disc["target"]) == {"B", "CD14 Mono"} and disc["value"].between(0, 1).all()
    assert {"mean", "all"} <= set(res.target_metrics["target"])
    assert {"scaled", "calibrated"} <= set(res.calibration.columns) and "train_mean" in set(res.calibration["model"])
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["protocol"] == "custom" and summary["data"]["data_checksum"]
    assert summary["data"]["cells"]["B"] == {"control": 80, "stimulated": 80}
    html = (tmp_path / "two" / "report.html").read_text()
    for text in ("Metrics over targets", "Calibration", "discrimination_score_l1", "cells used per cell type",
                 "ci_method"):
        assert text in html
    for name in ("target_metrics.parquet", "calibration.parquet"):
        assert (tmp_path / "two" / name).exists()
