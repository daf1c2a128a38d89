"""Your model and your data: register_model, unfitted instances, ``perturblab.models`` plugins through
``predict``, ``benchmark`` and ``tune``; any AnnData with its own keys; a baseline that does not apply."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from perturblab.exceptions import InputError, NotFittedError, PerturblabWarning, SettingsMismatchError
from perturblab.predict import make_model, run_loco
from perturblab.predict.benchmark import BenchmarkSettings
from perturblab.predict.models import MODELS, MeanDeltaBaseline, PCAMeanDeltaBaseline, register_model

from .plugin_pkg import ScaledShift, write_dist_info

KEYS = ["--cell-type-key", "celltype", "--condition-key", "stim_status", "--control", "ctrl", "--stimulated",
        "ifnb"]
FAST = dict(preprocessing=None, evaluate_params={"n_bootstrap": 0, "n_degs": 30, "ks": (10,)}, device="cpu")


@pytest.fixture(scope="module")
def kang_renamed(kang):
    """Raw Kang counts of 3 cell types (<= 40 cells per condition), keys and values renamed as a user's file
    could name them."""
    rng = np.random.default_rng(0)
    ct, cond = kang.obs["cell_type"].astype(str).to_numpy(), kang.obs["condition"].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero((ct == t) & (cond == c)), size=min(40, int(((ct == t) & (cond == c)).sum())),
                       replace=False)
            for t in ("CD14 Mono", "CD4 Naive T", "B") for c in ("control", "stimulated")]
    sub = kang[np.sort(np.concatenate(keep))].copy()
    sub.obs = pd.DataFrame({"celltype": sub.obs["cell_type"].astype(str).to_numpy(),
                            "stim_status": sub.obs["condition"].map({"control": "ctrl",
                                                                     "stimulated": "ifnb"}).astype(str).to_numpy()},
                           index=sub.obs_names)
    return sub


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed plugin package declaring a working model and a broken one; the registry restored after."""
    write_dist_info(tmp_path / "site", {"scaled_shift": "tests.predict.plugin_pkg:ScaledShift",
                                        "broken_model": "perturblab_no_such_module:Model"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_plugins_loaded", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "scaled_shift" in MODELS  # the first lookup loads the entry points
    return [w for w in caught if issubclass(w.category, PerturblabWarning)]


def test_plugin_loaded_lazily_and_a_broken_plugin_warns_once(plugin):
    assert len(plugin) == 1 and "'broken_model'" in str(plugin[0].message)
    assert "perturblab_no_such_module" in str(plugin[0].message)
    assert MODELS["scaled_shift"] == (ScaledShift, {}) and "broken_model" not in MODELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "scaled_shift" in MODELS  # loaded once: no second warning
    listed = CliRunner().invoke(_app(), ["predict", "--list-models"])
    assert listed.exit_code == 0 and "scaled_shift\tregistered\ttests.predict.plugin_pkg.ScaledShift" in listed.output
    assert "linear\tbaseline" in listed.output


def _app():
    from perturblab.cli import app

    return app


def test_plugin_model_through_predict_on_a_users_h5ad(plugin, kang_renamed, tmp_path):
    data = tmp_path / "mine.h5ad"
    kang_renamed.write_h5ad(data)
    out = tmp_path / "predict"
    r = CliRunner().invoke(_app(), ["predict", "--data", str(data), "--model", "scaled_shift", "--target", "B",
                                    "--out", str(out), "--n-top-genes", "100", "--n-bootstrap", "2", "--device",
                                    "cpu", "--format", "csv", *KEYS])
    assert r.exit_code == 0, r.output
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"scaled_shift", "mean_delta", "ceiling"} <= set(metrics["model"])
    r2 = metrics[(metrics["metric"] == "r2_pearson_mean") & (metrics["gene_set"] == "all")].set_index("model")
    # scale 1 (the default) is the mean-delta baseline: the same numbers
    assert r2.loc["scaled_shift", "value"] == pytest.approx(r2.loc["mean_delta", "value"], abs=1e-6)
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["model_specs"]["scaled_shift"] == {"class": "tests.predict.plugin_pkg.ScaledShift",
                                                              "params": {}}


def test_plugin_model_through_benchmark(plugin, kang_renamed, tmp_path):
    data = tmp_path / "mine.h5ad"
    kang_renamed.write_h5ad(data)
    bench = CliRunner().invoke(_app(), ["benchmark", "--data", str(data), "--out", str(tmp_path / "bench"),
                                        "--model", "scaled_shift", "--target", "B", "--variant", "balanced",
                                        "--n-bootstrap", "0", "--n-top-genes", "100", "--device", "cpu", *KEYS])
    assert bench.exit_code == 0, bench.output
    table = pd.read_parquet(tmp_path / "bench" / "benchmark.parquet")
    assert "scaled_shift" in set(table["model"])


def test_plugin_model_through_tune(plugin, kang_renamed, tmp_path):
    data = tmp_path / "mine.h5ad"
    kang_renamed.write_h5ad(data)
    tune = CliRunner().invoke(_app(), ["tune", "--data", str(data), "--out", str(tmp_path / "tune"), "--model",
                                       "scaled_shift", "--target", "B", "--n-trials", "2", "--n-inner", "1",
                                       "--min-cells", "20", "--n-bootstrap", "0", "--n-top-genes", "100",
                                       "--device", "cpu", *KEYS])
    assert tune.exit_code == 0, tune.output
    best = json.loads((tmp_path / "tune" / "best_params.json").read_text())
    assert set(best["best_params"]) == {"scale"} and 0.0 <= best["best_params"]["scale"] <= 2.0
    final = pd.read_parquet(tmp_path / "tune" / "final_metrics.parquet")
    assert set(final["config"]) == {"tuned", "default", "baseline"}


def test_unfitted_instances_run_and_enter_the_fingerprint(kang_renamed, tmp_path):
    from perturblab.predict import prepare

    adata = prepare(kang_renamed, n_top_genes=80, condition_key="stim_status", cell_type_key="celltype",
                    control="ctrl", stimulated="ifnb")
    settings = BenchmarkSettings(condition_key="stim_status", cell_type_key="celltype", control="ctrl",
                                 stimulated="ifnb", **FAST)
    half = ScaledShift(scale=0.5)
    assert not half.is_fitted and half.get_params() == {"scale": 0.5}
    with pytest.raises(NotFittedError, match="without training cells"):
        half.predict(adata)
    res = run_loco(adata, {"half": half, "whole": ScaledShift}, ["B"], out=tmp_path / "run", settings=settings,
                   report=False)
    assert not half.is_fitted  # each unit builds its own model; the instance stays a template
    pred_half, pred_whole = res.predictions[("B", "half")], res.predictions[("B", "whole")]
    ctrl = res.splits["B"].target_ctrl.X
    # half the shift of the whole: (half - ctrl) == 0.5 * (whole - ctrl)
    np.testing.assert_allclose(pred_half.X - ctrl, 0.5 * (pred_whole.X - ctrl), atol=1e-5)
    assert set(pred_half.obs["perturblab_source"]) == {"predicted"} and set(pred_half.obs["perturblab_model"]) == {
        "half"}
    cells = res.to_adata("B")
    n_ctrl, n_stim = res.splits["B"].target_ctrl.n_obs, res.splits["B"].target_stim.n_obs
    assert (cells.obs["perturblab_source"] == "real").sum() == n_stim
    assert (cells.obs["perturblab_model"] == "half").sum() == n_ctrl
    assert (cells.obs["perturblab_source"] == "control").sum() == n_ctrl
    again = run_loco(adata, {"half": ScaledShift(scale=0.5), "whole": ScaledShift}, ["B"], out=tmp_path / "run",
                     settings=settings, resume=True, report=False)
    assert again.summary["n_units_run"] == 0
    with pytest.raises(SettingsMismatchError, match="model_specs.half.params.scale: 0.5 -> 0.7"):
        run_loco(adata, {"half": ScaledShift(scale=0.7), "whole": ScaledShift}, ["B"], out=tmp_path / "run",
                 settings=settings, resume=True)
    # an instance beside the built-in name of its class gets its parameters in its name
    from perturblab.predict.benchmark import model_specs

    both = model_specs(["pca_mean_delta", PCAMeanDeltaBaseline(n_components=5)], baselines=())
    assert list(both) == ["pca_mean_delta", "pca_mean_delta[n_components=5]"]
    assert both["pca_mean_delta[n_components=5]"].params == {"n_components": 5}


def test_register_model(monkeypatch, kang_small):
    from perturblab.predict import loco_split

    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    register_model("shift_0.25", ScaledShift, params={"scale": 0.25})
    with pytest.raises(InputError, match="already registered"):
        register_model("shift_0.25", ScaledShift)
    with pytest.raises(InputError, match="reserved"):
        register_model("ceiling", ScaledShift)
    with pytest.raises(InputError, match="predict"):
        register_model("nothing", dict)
    split = loco_split(kang_small, "B")
    model = make_model("shift_0.25", split.train)
    base = MeanDeltaBaseline(split.train)
    np.testing.assert_allclose(model.predict(split.target_ctrl).X - split.target_ctrl.X,
                               0.25 * base.delta_[None, :].repeat(split.target_ctrl.n_obs, 0), atol=1e-5)


def test_a_baseline_that_does_not_apply_is_a_row_with_a_note(kang, tmp_path):
    """Regression: the linear baseline with one training cell type used to abort the whole run."""
    from perturblab.predict import prepare

    rng = np.random.default_rng(0)
    ct, cond = kang.obs["cell_type"].astype(str).to_numpy(), kang.obs["condition"].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero((ct == t) & (cond == c)), size=40, replace=False)
            for t in ("B", "CD14 Mono") for c in ("control", "stimulated")]
    adata = prepare(kang[np.sort(np.concatenate(keep))].copy(), n_top_genes=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_loco(adata, ["identity"], ["B"], out=tmp_path / "two", settings=BenchmarkSettings(**FAST))
    notes = [w for w in caught if "gives NaN metrics" in str(w.message)]
    assert len(notes) == 1 and "linear" in str(notes[0].message)
    lin = res.metrics[res.metrics["model"] == "linear"]
    assert len(lin) and lin["value"].isna().all()
    assert lin["note"].str.contains("at least 2 training cell types").all()
    assert res.metrics[res.metrics["model"] == "mean_delta"]["value"].notna().any()
    summary = pd.read_parquet(tmp_path / "two" / "summary.parquet").set_index("model")
    assert "at least 2 training cell types" in summary.loc["linear", "note"]
    assert (tmp_path / "two" / "report.html").exists()
    # the benchmark's ranking, paired tests and report take the NaN rows too
    from perturblab.predict.benchmark import run_benchmark

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerturblabWarning)
        bench = run_benchmark(adata, tmp_path / "bench", models=["identity"], targets=["B"], variants=["balanced"],
                              settings=BenchmarkSettings(**FAST))
    assert bench.table[bench.table["model"] == "linear"]["value"].isna().all()
    assert "mean_delta" in set(bench.ranking["model"]) and (tmp_path / "bench" / "report.html").exists()
