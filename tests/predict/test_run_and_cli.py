"""LOCO runner (resume), report and the `perturblab predict` command."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from perturblab.predict.report import build_report
from perturblab.predict.run import run_loco

TINY = dict(n_hidden=32, n_latent=8, n_layers=1, device="cpu")


def test_run_loco_resumes_and_reports(tmp_path, kang_small):
    models = ["scgen", "identity", "mean_delta", "scgen_unbalanced"]
    kw = dict(hyperparameters={"scgen": TINY}, train_kwargs={"scgen": {"max_epochs": 2}}, progress=False,
              evaluate_kwargs={"n_bootstrap": 2, "n_degs": 50, "ks": (10,)}, out_dir=tmp_path, log=lambda s: None)
    lines = []
    res = run_loco(kang_small, models, ["B"], **{**kw, "log": lines.append})
    assert set(res.metrics["model"]) == set(models)
    assert len(res.training) == 4 and res.training.loc[res.training["model"] == "scgen", "epochs"].item() == 2
    assert (res.training.loc[res.training["model"] == "scgen", "peak_rss_mb"] > 0).all()
    # scgen_unbalanced reuses the trained scgen: same network, a different (plain) delta
    p_bal, p_unb = res.predictions[("B", "scgen")], res.predictions[("B", "scgen_unbalanced")]
    assert p_bal.shape == p_unb.shape and not np.allclose(p_bal.X, p_unb.X)
    again = []
    res2 = run_loco(kang_small, models, ["B"], **{**kw, "log": again.append})
    assert all("reused" in s for s in again)
    np.testing.assert_allclose(res2.metrics["value"].to_numpy(), res.metrics["value"].to_numpy())
    html = build_report(res).render()
    assert "Target: B" in html and html.count("data:image/png;base64") >= 5
    assert "B: scgen" in html and "mean_delta (R2 all" in html  # the model-vs-baseline verdict


def test_cli_predict_baselines(tmp_path):
    from perturblab.cli import app

    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["predict", "--model", "baselines", "--target", "B", "--out", str(out),
                                 "--n-top-genes", "200", "--max-epochs", "1", "--n-bootstrap", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    for f in ("metrics.parquet", "metrics.csv", "training.csv", "summary.json", "report.html"):
        assert (out / f).exists()
    summary = json.loads((out / "summary.json").read_text())
    from perturblab.predict import BASELINES

    assert summary["models"] == list(BASELINES) and "scgen_unbalanced" not in summary["models"]
    bad = CliRunner().invoke(app, ["predict", "--model", "gears", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "unknown model" in bad.output
