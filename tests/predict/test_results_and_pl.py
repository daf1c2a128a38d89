"""Results back in AnnData (combine_cells, the prediction's obs), distances in pertpy's shape, and the public
``plab.predict.pl`` figures."""

from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest

from perturblab.exceptions import InputError, MissingKeyError, UnknownNameError
from perturblab.predict import combine_cells, distance, loco_split, make_model, pl

matplotlib.use("Agg")


def _groups(values: dict[str, np.ndarray]) -> ad.AnnData:
    X = np.vstack(list(values.values())).astype(np.float64)
    labels = np.concatenate([[k] * len(v) for k, v in values.items()])
    return ad.AnnData(X, obs=pd.DataFrame({"g": labels}, index=[f"c{i}" for i in range(len(labels))]))


def test_distance_hand_computed():
    # on the first gene (the second is 0): X = {0, 2}, Y = {10, 12}. Cross distances 10, 12, 8, 10 (mean 10);
    # within 2 and 2: E = 2*10 - 2 - 2
    a = _groups({"x": np.array([[0.0, 0], [2.0, 0]]), "y": np.array([[10.0, 0], [12.0, 0]]),
                 "z": np.array([[1.0, 0], [1.0, 0]])})
    d = distance(a, groupby="g", metric="edistance")
    assert list(d.index) == ["x", "y", "z"] and d.index.name == "g"
    assert d.loc["x", "y"] == pytest.approx(16.0) and d.loc["y", "x"] == pytest.approx(16.0)
    assert np.all(np.diag(d.to_numpy()) == 0)
    # means: x (1, 0), y (11, 0), z (1, 0): mse ((11-1)^2 + 0) / 2 = 50; x and z have the same mean
    m = distance(a, groupby="g", metric="mse")
    assert m.loc["x", "y"] == pytest.approx(50.0) and m.loc["x", "z"] == pytest.approx(0.0)
    # squared E-distance: cross 100,144,64,100 (mean 102); within 4 and 4: 2*102 - 8
    assert distance(a, "g", "sq_edistance", groups=["x", "y"]).loc["x", "y"] == pytest.approx(196.0)


def test_distance_on_means_and_obsm_and_errors():
    rng = np.random.default_rng(0)
    base = rng.normal(size=20)
    a = _groups({"p": base + rng.normal(0, 0.01, (5, 20)), "q": 2 * base + 3 + rng.normal(0, 0.01, (5, 20)),
                 "r": -base + rng.normal(0, 0.01, (5, 20))})
    pearson = distance(a, "g", "pearson_distance")
    assert pearson.loc["p", "q"] == pytest.approx(0.0, abs=1e-3)  # a linear map of the same profile
    assert pearson.loc["p", "r"] == pytest.approx(2.0, abs=1e-3)  # the opposite profile
    a.obsm["X_two"] = np.c_[np.r_[np.zeros(5), np.full(5, 3.0), np.zeros(5)], np.zeros(15)]
    e = distance(a, "g", "euclidean", obsm_key="X_two")
    assert e.loc["p", "q"] == pytest.approx(3.0) and e.loc["p", "r"] == pytest.approx(0.0)
    with pytest.raises(UnknownNameError, match="did you mean 'edistance'"):
        distance(a, "g", "edistanc")
    with pytest.raises(MissingKeyError, match="X_pca"):
        distance(a, "g", obsm_key="X_pca")
    with pytest.raises(InputError, match="at least 2 cells"):
        distance(_groups({"x": np.zeros((1, 3)), "y": np.ones((3, 3))}), "g", "edistance")
    with pytest.raises(InputError, match="at least 2"):
        distance(a, "g", groups=["p"])


@pytest.fixture(scope="module")
def cells(kang_small):
    split = loco_split(kang_small, "B")
    preds = {m: make_model(m, split.train).predict(split.target_ctrl) for m in ("mean_delta", "identity")}
    return split, preds, combine_cells(preds, split.target_ctrl, split.target_stim)


def test_prediction_and_combined_cells_say_their_source(cells, kang_small):
    split, preds, both = cells
    pred = preds["mean_delta"]
    assert set(pred.obs["perturblab_source"]) == {"predicted"} and set(pred.obs["perturblab_model"]) == {"mean_delta"}
    assert pred.uns["perturblab_model"] == "mean_delta"
    counts = both.obs["perturblab_source"].value_counts()
    n_ctrl, n_stim = split.target_ctrl.n_obs, split.target_stim.n_obs
    assert counts["control"] == n_ctrl and counts["real"] == n_stim and counts["predicted"] == 2 * n_ctrl
    assert both.obs_names.is_unique and list(both.var_names) == list(kang_small.var_names)
    by_model = both[both.obs["perturblab_model"] == "identity"]
    np.testing.assert_allclose(by_model.X, split.target_ctrl.X, atol=1e-6)
    # the mean-delta prediction is shifted by the training delta: MSE of means = mean(delta^2)
    delta = make_model("mean_delta", split.train).delta_
    only = both[both.obs["perturblab_model"].isin(["", "mean_delta"])]
    d = distance(only, groupby="perturblab_source", metric="mse")
    assert d.loc["control", "predicted"] == pytest.approx(float(np.mean(delta ** 2)), rel=1e-4)
    with pytest.raises(InputError, match="different genes"):
        combine_cells(pred, split.target_ctrl[:, :10])


def test_pl_cells_figures(cells):
    split, _, both = cells
    axes = pl.mean_var_scatter(both, degs=list(both.var_names[:5]))
    assert len(axes) == 2 and axes[0].get_title().startswith("mean_delta\nR2 ")
    assert axes[0].collections[0].get_offsets().shape[0] == both.n_vars - 5  # non-DEG genes, one point each
    assert len(pl.mean_var_scatter(both, stat="var", models=["identity"])) == 1
    pca = pl.pca_overlay(both)
    assert [a.get_title() for a in pca] == ["mean_delta", "identity"]
    assert pca[0].collections[2].get_offsets().shape[0] == split.target_ctrl.n_obs
    violins = pl.deg_violins(both, list(both.var_names[:4]))
    assert len(violins) == 4 and [t.get_text() for t in violins[0].get_xticklabels()] == [
        "control", "real stim", "mean_delta", "identity"]
    with pytest.raises(MissingKeyError, match="combine_cells"):
        pl.mean_var_scatter(split.target_stim)
    with pytest.raises(UnknownNameError):
        pl.deg_violins(both, ["NOT_A_GENE"])


def test_pl_table_figures():
    rows = [{"model": m, "target": t, "variant": v, "seed": 0, "metric": "r2_pearson_mean", "gene_set": "all",
             "value": val, "ci_low": val - 0.1, "ci_high": val + 0.1}
            for (m, val) in (("scgen", 0.8), ("mean_delta", 0.6), ("linear", np.nan))
            for t in ("B", "CD14 Mono") for v in ("balanced", "unbalanced")]
    table = pd.DataFrame(rows)
    ax = pl.metric_bars(table)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["scgen", "mean_delta", "linear (n/a)"]
    assert [round(p.get_width(), 6) for p in ax.patches] == [0.8, 0.6, 0.0]
    with pytest.raises(InputError, match="no rows"):
        pl.metric_bars(table, metric="edistance")
    heat = pl.metric_heatmap(table, metric="r2_pearson_mean", gene_set="all")
    assert [a.get_title() for a in heat] == ["balanced", "unbalanced"]
    deg = pd.DataFrame({"model": ["scgen", "scgen"], "variant": ["unbalanced", "proportion_shift"],
                        "metric": "r2_pearson_mean", "gene_set": "all", "worse_by": [0.1, 0.05]})
    assert len(pl.degradation(deg, metric="r2_pearson_mean", gene_set="all").patches) == 2
    trials = pd.DataFrame({"number": [0, 1, 2], "value": [0.5, np.nan, 0.7], "state": ["COMPLETE", "PRUNED",
                                                                                      "COMPLETE"]})
    th = pl.tuning_history(trials)
    assert th.collections[0].get_offsets().shape[0] == 2 and len(th.lines) == 2  # best-so-far step + pruned line
    imp = pl.param_importances(pd.DataFrame({"param": ["lr", "n_latent"], "importance": [0.7, 0.3]}))
    assert [t.get_text() for t in imp.get_yticklabels()] == ["n_latent", "lr"]
    hist = pd.DataFrame({"model": "scgen", "epoch": [0, 1, 2], "train_loss": [3.0, 2.0, 1.5],
                         "val_loss": [3.1, 2.2, 1.9], "best_epoch": 2})
    tc = pl.training_curves(hist)
    assert len(tc.lines) == 3 and tc.get_yscale() == "log"
    with pytest.raises(MissingKeyError, match="worse_by"):
        pl.degradation(table, metric="r2_pearson_mean", gene_set="all")
