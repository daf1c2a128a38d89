"""prepare / loco_split / evaluate on real Kang cells; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.predict import evaluate, loco_split, loco_targets, make_model, prepare


def test_prepare_log_normalises_and_keeps_hvgs(kang_small, kang):
    assert kang_small.n_vars == 300
    assert "counts" in kang_small.layers
    # log1p of normalised counts: non-negative, non-integer, much smaller than counts
    assert kang_small.X.min() >= 0 and kang_small.X.max() < 15
    assert set(kang_small.var_names) <= set(kang.var_names)


def test_prepare_bad_input(kang):
    sub = kang[::50].copy()
    with pytest.raises(KeyError, match="condition"):
        prepare(sub, condition_key="nope")
    with pytest.raises(KeyError, match="cell type"):
        prepare(sub, cell_type_key="nope")
    with pytest.raises(ValueError, match="unknown stimulated condition .* 'treated'"):
        prepare(sub, stimulated="treated")
    logged = sub.copy()
    logged.X = np.log1p(logged.X.toarray().astype(np.float32) / 7.0)
    with pytest.warns(UserWarning, match="does not look like raw counts"):
        prepare(logged, n_top_genes=None)
    bad = sub.copy()
    bad.X = bad.X.toarray().astype(np.float32)
    bad.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prepare(bad)


def test_loco_split_never_leaks_target_stimulated(kang_small):
    s = loco_split(kang_small, "CD14 Mono")
    tr = s.train.obs
    assert not ((tr["cell_type"] == "CD14 Mono") & (tr["condition"] == "stimulated")).any()
    assert (s.target_stim.obs["cell_type"] == "CD14 Mono").all()
    assert (s.target_stim.obs["condition"] == "stimulated").all()
    assert (s.target_ctrl.obs["condition"] == "control").all()
    assert s.train.n_obs + s.target_stim.n_obs == kang_small.n_obs
    assert set(s.train.obs_names).isdisjoint(s.target_stim.obs_names)
    assert loco_targets(kang_small, min_cells=30)[0] in {"CD14 Mono", "CD4 Naive T", "B", "CD16 Mono"}


def test_loco_split_bad_input(kang_small):
    with pytest.raises(ValueError, match="unknown cell type"):
        loco_split(kang_small, "Neuron")
    no_ctrl = kang_small[~((kang_small.obs["cell_type"] == "B") & (kang_small.obs["condition"] == "control"))].copy()
    with pytest.raises(ValueError, match="no control cells"):
        loco_split(no_ctrl, "B")


def test_evaluate_table_and_known_cases(kang_small):
    s = loco_split(kang_small, "B")
    real = s.target_stim
    # the truth itself: perfect agreement on every metric with a known value
    df = evaluate(real, real, s.target_ctrl, n_degs=50, ks=(10, 50), n_bootstrap=5, random_state=0)
    assert list(df.columns)[:7] == ["metric", "gene_set", "value", "ci_low", "ci_high", "n_bootstrap", "definition"]
    v = df.set_index(["metric", "gene_set"])["value"]
    assert v[("r2_pearson_mean", "all")] == pytest.approx(1.0)
    assert v[("r2_score_mean", "top50_degs")] == pytest.approx(1.0)
    assert v[("mse_mean", "all")] == pytest.approx(0.0)
    assert v[("wasserstein", "all")] == pytest.approx(0.0)
    assert v[("deg_jaccard[wilcoxon]", "top50_degs")] == pytest.approx(1.0)
    assert v[("direction_match[mean_diff]", "top50_degs")] == pytest.approx(1.0)
    # control as prediction is worse than the truth, and the mean delta sits in between on R2
    ident = evaluate(make_model("identity", s.train).predict(s.target_ctrl), real, s.target_ctrl, n_degs=50,
                     ks=(10,), n_bootstrap=5).set_index(["metric", "gene_set"])
    delta = evaluate(make_model("mean_delta", s.train).predict(s.target_ctrl), real, s.target_ctrl, n_degs=50,
                     ks=(10,), n_bootstrap=5).set_index(["metric", "gene_set"])
    assert ident.loc[("r2_pearson_mean", "top50_degs"), "value"] < delta.loc[("r2_pearson_mean", "top50_degs"),
                                                                             "value"] < 1.0
    assert ident.loc[("edistance", "pca"), "value"] > delta.loc[("edistance", "pca"), "value"]
    row = delta.loc[("r2_pearson_mean", "all")]
    assert row["ci_low"] <= row["ci_high"]


def test_evaluate_is_seeded_and_checks_genes(kang_small):
    s = loco_split(kang_small, "B")
    pred = make_model("mean_delta", s.train).predict(s.target_ctrl)
    a = evaluate(pred, s.target_stim, s.target_ctrl, n_degs=20, ks=(10,), n_bootstrap=4, random_state=3)
    b = evaluate(pred, s.target_stim, s.target_ctrl, n_degs=20, ks=(10,), n_bootstrap=4, random_state=3)
    assert a.equals(b)
    with pytest.raises(ValueError, match="different genes"):
        evaluate(pred[:, :100], s.target_stim, s.target_ctrl)
    with pytest.raises(ValueError, match="resample"):
        evaluate(pred, s.target_stim, s.target_ctrl, resample="jackknife")
