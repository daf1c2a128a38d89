"""evaluate's new metrics, intervals and flags, paired resampling, the ceiling, calibration and the metrics
over targets, on the real Kang subset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perturblab.predict import (
    calibrate,
    ceiling,
    evaluate,
    evaluate_targets,
    loco_split,
    make_model,
    perturbed_centroid,
)
from perturblab.predict.evaluate import TABLE_COLUMNS
from perturblab.predict.suite import metric_bounds


@pytest.fixture(scope="module")
def split_b(kang_small):
    return loco_split(kang_small, "B")


def test_paired_resampling_fixes_the_identity_rows(split_b):
    s = split_b
    pred = make_model("identity", s.train).predict(s.target_ctrl)
    paired = evaluate(pred, s.target_stim, s.target_ctrl, n_degs=50, ks=(10,), n_bootstrap=15)
    assert list(paired.columns) == TABLE_COLUMNS and paired["paired"].all()
    v = paired.set_index(["metric", "gene_set"])
    # the prediction's change is exactly 0: direction match 0 in every paired resample, a constant row
    row = v.loc[("direction_match[mean_diff]", "top50_degs")]
    assert (row["value"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
    assert "constant under resampling" in row["ci_flag"]
    # Pearson delta of a zero change is undefined: NaN estimate, no interval, flagged
    row = v.loc[("pearson_delta", "all")]
    assert np.isnan(row["value"]) and np.isnan(row["ci_low"]) and row["ci_flag"].startswith("NaN estimate")
    # drawn independently of its control cells, the same prediction gets a random change (the former defect)
    unpaired = evaluate(pred, s.target_stim, s.target_ctrl, n_degs=50, ks=(10,), n_bootstrap=15, paired=False)
    row = unpaired.set_index(["metric", "gene_set"]).loc[("direction_match[mean_diff]", "top50_degs")]
    assert not unpaired["paired"].any() and row["ci_high"] > 0.05 and "constant" not in row["ci_flag"]
    with pytest.raises(ValueError, match="source_cell"):
        evaluate(s.target_stim, s.target_stim, s.target_ctrl, n_bootstrap=0, paired=True)


def test_every_interval_contains_its_estimate(split_b):
    s = split_b
    pred = make_model("mean_delta", s.train).predict(s.target_ctrl)
    t = evaluate(pred, s.target_stim, s.target_ctrl, n_degs=50, ks=(10,), n_bootstrap=15,
                 perturbed_reference=perturbed_centroid(s.train),
                 other_stim=s.train[s.train.obs["condition"] == "stimulated"])
    finite = t[np.isfinite(t["ci_low"])]
    assert len(finite) >= 45 and (finite["ci_method"].str.startswith("centered")).all()
    assert ((finite["ci_low"] <= finite["value"] + 1e-12) & (finite["value"] <= finite["ci_high"] + 1e-12)).all()
    metrics = set(t["metric"])
    for name in ("mae", "mse_delta", "mae_delta", "overlap_at_N", "overlap_at_100", "precision_at_50",
                 "de_direction_match", "de_spearman_lfc_sig", "de_sig_genes_recall", "pr_auc", "roc_auc",
                 "pearson_delta_perturbed", "weighted_mse", "weighted_r2_delta", "weighted_r2_delta_perturbed"):
        assert name in metrics
    assert ("pearson_delta", "top50_degs_ttest") in set(zip(t["metric"], t["gene_set"], strict=True))
    assert set(t.loc[t["metric"] == "weighted_mse", "gene_set"]) == {"deg_weights[vsrest]"}
    shares = t[t["metric"].str.startswith(("overlap_at", "precision_at", "roc_auc"))]
    assert ((shares["ci_low"] >= 0) & (shares["ci_high"] <= 1)).all()
    # truth as its own prediction: cell-eval's scores are perfect
    truth = evaluate(s.target_stim, s.target_stim, s.target_ctrl, n_degs=50, ks=(10,), n_bootstrap=0)
    v = truth.set_index(["metric", "gene_set"])["value"]
    for key in (("overlap_at_N", "pdex_fdr0.05"), ("de_direction_match", "pdex_fdr0.05"),
                ("de_sig_genes_recall", "pdex_fdr0.05"), ("pearson_delta", "top50_degs_ttest")):
        assert v[key] == pytest.approx(1.0)
    assert v[("mae", "all")] == 0.0 and (truth["ci_method"] == "none").all()


def test_ceiling_and_calibration(split_b):
    s = split_b
    rows = []
    for name in ("train_mean", "mean_delta"):
        pred = make_model(name, s.train).predict(s.target_ctrl)
        rows.append(evaluate(pred, s.target_stim, s.target_ctrl, n_degs=50, ks=(10,), n_bootstrap=10)
                    .assign(model=name, target="B"))
    top = ceiling(s.target_stim, s.target_ctrl, n_degs=50, ks=(10,), n_bootstrap=10)
    assert (top["ceiling_method"] == "split").all() and top["n_half"].iloc[0] == s.target_stim.n_obs // 2
    assert not top["paired"].any()
    table = pd.concat(rows + [top.assign(model="ceiling", target="B")])
    cal = calibrate(table)
    r2 = cal[(cal["metric"] == "r2_pearson_mean") & (cal["gene_set"] == "all")].set_index("model")
    assert r2.loc["ceiling", "scaled"] == pytest.approx(1.0) and r2.loc["train_mean", "scaled"] == pytest.approx(0.0)
    assert r2["calibrated"].all() and 0 < r2.loc["mean_delta", "scaled"] < 1
    err = cal[(cal["metric"] == "mse_mean") & (cal["gene_set"] == "all")]
    assert err["calibrated"].all()  # lower is better: the ceiling's error is the smaller one
    assert "de_nsig_counts_real" not in set(cal["metric"])
    with pytest.raises(KeyError, match="control"):
        calibrate(table, negative="nobody")


def test_metrics_over_targets(kang_small):
    groups, truth = {}, {}
    for t in ("B", "CD14 Mono", "CD4 Naive T"):
        s = loco_split(kang_small, t)
        groups[t] = (make_model("mean_delta", s.train).predict(s.target_ctrl), s.target_stim, s.target_ctrl)
        truth[t] = (s.target_stim, s.target_stim, s.target_ctrl)
    table = evaluate_targets(groups, n_bootstrap=8)
    assert set(table["target"]) == {"B", "CD14 Mono", "CD4 Naive T", "mean", "all"}
    assert set(table["metric"]) == {"discrimination_score_l1", "discrimination_score_l2",
                                    "discrimination_score_cosine", "centroid_accuracy", "de_spearman_sig",
                                    "perfect_discrimination_l2_shifted_control", "perfect_discrimination_l2_decoded"}
    scores = table[table["metric"] != "de_spearman_sig"]
    assert scores["value"].between(0, 1).all() and scores["paired"].all()
    # intervals stay in the score's range (the centred interval 2 * estimate - quantile can leave it: a
    # ceiling's discrimination l1 of 1 had [0.997, 1.02])
    assert metric_bounds("discrimination_score_l1") == metric_bounds("centroid_accuracy") == (0.0, 1.0)
    assert metric_bounds("de_spearman_sig") == (-1.0, 1.0)
    assert scores["ci_low"].dropna().ge(0).all() and scores["ci_high"].dropna().le(1).all()
    # the truth as prediction picks out its own target every time
    perfect = evaluate_targets(truth, n_bootstrap=0)
    per_target = perfect[(perfect["target"] != "all") & perfect["metric"].str.startswith(("disc", "centroid"))]
    assert len(per_target) == 16 and (per_target["value"] == 1.0).all()
    assert "de_resample=False" not in perfect.loc[perfect["target"] == "all", "ci_flag"].iloc[0]
    with pytest.raises(ValueError, match="at least 2 targets"):
        evaluate_targets({"B": groups["B"]})
