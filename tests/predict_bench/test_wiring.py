"""The metric suite wired into units, tables and reports: direction rule, references of evaluate, the ceiling,
the metrics over targets from stored summaries, the calibration, the interval display and the data description."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab.predict import evaluate_targets, perturbed_centroid
from perturblab.predict.benchmark import BenchmarkInputs, BenchmarkUnit, paired_tests, rank_models, run_unit
from perturblab.predict.benchmark.stats import degradation, higher_is_better
from perturblab.predict.benchmark.tables import calibration, target_metrics
from perturblab.predict.evaluate_targets import TargetSummary, summarise_target, targets_table
from perturblab.predict.metrics_targets import perfect_discrimination_l2
from perturblab.predict.report import format_value


def test_one_direction_rule_everywhere():
    import sys

    C = sys.modules["perturblab.predict.ceiling"]
    for m in ("mae", "weighted_mse", "mse_delta", "edistance_sq", "mmd_linear"):
        assert higher_is_better(m) is False and C.higher_is_better(m) is False
    assert higher_is_better("discrimination_score_l1") and higher_is_better("overlap_at_N")
    assert higher_is_better("de_nsig_counts_real") is None


def test_rankings_and_tests_skip_deg_counts_and_rank_errors_low():
    rows = []
    for model, mae, n in (("a", 0.1, 10), ("b", 0.3, 500)):
        for t in ("T0", "T1", "T2"):
            rows += [{"model": model, "target": t, "variant": "balanced", "seed": 0, "metric": "mae",
                      "gene_set": "all", "value": mae + (0.01 if t == "T1" else 0)},
                     {"model": model, "target": t, "variant": "balanced", "seed": 0,
                      "metric": "de_nsig_counts_pred", "gene_set": "pdex_fdr0.05", "value": n}]
    table = pd.DataFrame(rows)
    r = rank_models(table)
    assert set(r["metric"]) == {"mae"} and list(r["model"]) == ["a", "b"]  # lower MAE ranks first
    assert set(paired_tests(table)["metric"]) == {"mae"}
    other = table.assign(variant="unbalanced")
    assert set(degradation(pd.concat([table, other]))["metric"]) == {"mae"}


def test_format_value_shows_the_interval_only_when_meaningful():
    assert format_value({"value": 0.91234, "ci_low": 0.9, "ci_high": 0.93, "ci_flag": ""}) == "0.912 [0.9, 0.93]"
    flagged = {"value": 0.0, "ci_low": 0.34, "ci_high": 0.68, "ci_flag": "constant under resampling"}
    assert format_value(flagged) == "0 (constant under resampling)"
    assert format_value({"value": 1.5, "ci_low": np.nan, "ci_high": np.nan, "ci_flag": ""}) == "1.5"


def _group(mean, n, rng, genes=5):
    X = rng.normal(0, 0.1, size=(n, genes)) + mean
    a = ad.AnnData(X.astype(np.float32))
    a.var_names = [f"g{i}" for i in range(genes)]
    a.obs_names = [f"c{i}_{rng.integers(1e9)}" for i in range(n)]
    return a


def test_target_summaries_give_evaluate_targets_numbers():
    rng = np.random.default_rng(0)
    groups = {}
    for t, shift in (("A", 1.0), ("B", -1.0), ("C", 0.0)):
        ctrl = _group(np.zeros(5), 20, rng)
        resp = np.eye(5)[["A", "B", "C"].index(t)] * 2 + shift
        groups[t] = (_group(resp, 20, rng), _group(resp, 20, rng), ctrl)
    direct = evaluate_targets(groups, n_bootstrap=5, random_state=3)
    seeds = np.random.SeedSequence(3).spawn(3)
    sums = {t: summarise_target(*groups[t], n_bootstrap=5, random_state=int(s.generate_state(1)[0]))
            for t, s in zip(groups, seeds)}
    # through the arrays a unit store keeps, and back
    back = {t: TargetSummary.from_arrays(s.arrays(), s.genes) for t, s in sums.items()}
    pd.testing.assert_frame_equal(targets_table(back), direct)
    # each prediction is its own target's response: perfect discrimination (hand answer: 1 for every target)
    d = direct[direct["metric"] == "discrimination_score_l1"].set_index("target")["value"]
    assert d.to_dict() == {"A": 1.0, "B": 1.0, "C": 1.0, "mean": 1.0}
    # a perfect prediction's expected l2 score, from each target's sampling variances (ddof 1, summed over genes,
    # divided by the cells): the targets lie far apart, so 1 for every target (hand answer), and the values are
    # perfect_discrimination_l2 of the real deltas
    real = np.vstack([groups[t][1].X.mean(0) - groups[t][2].X.mean(0) for t in groups])
    v = [(groups[t][1].X.var(0, ddof=1).sum() / 20, groups[t][2].X.var(0, ddof=1).sum() / 20) for t in groups]
    for kind, var in (("shifted_control", [a + b for a, b in v]), ("decoded", [a for a, _ in v])):
        rows = direct[direct["metric"] == f"perfect_discrimination_l2_{kind}"].set_index("target")["value"]
        np.testing.assert_allclose(rows[["A", "B", "C"]], perfect_discrimination_l2(real, var))
        assert rows.to_dict() == {"A": 1.0, "B": 1.0, "C": 1.0, "mean": 1.0}
    np.testing.assert_allclose(back["A"].own_variance, v[0], rtol=1e-5)
    # a summary stored before the variances were recorded: the table without those rows, the rest unchanged
    old = {t: TargetSummary.from_arrays({k: a for k, a in s.arrays().items() if k != "own_variance"}, s.genes)
           for t, s in sums.items()}
    without = direct[~direct["metric"].str.startswith("perfect")].reset_index(drop=True)
    pd.testing.assert_frame_equal(targets_table(old), without)
    # the benchmark's grouping: one table per (model, variant, seed), a group with one target has none
    keyed = {("m", "balanced", 0, t): s for t, s in back.items()}
    keyed[("lonely", "balanced", 0, "A")] = back["A"]
    tm = target_metrics(keyed)
    assert set(tm["model"]) == {"m"} and set(tm["target"]) == {"A", "B", "C", "mean", "all"}


def test_calibration_needs_both_controls():
    rows = [{"model": m, "target": "T", "variant": "balanced", "seed": 0, "metric": "r2_pearson_mean",
             "gene_set": "all", "value": v, "ci_low": v - 0.01, "ci_high": v + 0.01}
            for m, v in (("ceiling", 0.9, ), ("train_mean", 0.5), ("scgen", 0.8))]
    cal = calibration(pd.DataFrame(rows)).set_index("model")
    assert cal.loc["scgen", "scaled"] == pytest.approx(0.75)  # (0.8 - 0.5) / (0.9 - 0.5)
    assert bool(cal.loc["scgen", "calibrated"]) and bool(cal.loc["scgen", "separated"])
    assert calibration(pd.DataFrame(rows[1:])).empty


def test_run_unit_passes_references_and_the_ceiling_unit(kang_small, tiny_settings):
    inputs = BenchmarkInputs(kang_small, tiny_settings)
    out = run_unit(inputs, BenchmarkUnit("mean_delta", "B", "balanced", 0))
    t = out.table.set_index(["metric", "gene_set"])
    # Systema's reference from the training cells and Mejia et al.'s "vs rest" weights reached evaluate
    assert ("pearson_delta_perturbed", "all") in t.index and ("weighted_mse", "deg_weights[vsrest]") in t.index
    from perturblab.predict import loco_split

    split = loco_split(kang_small, "B")
    ref = perturbed_centroid(split.train)
    P, C, S = (np.asarray(a.X, dtype=float) for a in (split.target_ctrl, split.target_ctrl, split.target_stim))
    delta = split.train[split.train.obs["condition"] == "stimulated"].X.mean(0) - \
        split.train[split.train.obs["condition"] == "control"].X.mean(0)
    expect = np.corrcoef((P + delta).mean(0) - ref, S.mean(0) - ref)[0, 1]
    assert t.loc[("pearson_delta_perturbed", "all"), "value"] == pytest.approx(expect, abs=1e-5)
    # the unit's summary for the metrics over targets: the mean deltas of its prediction and truth
    s = TargetSummary.from_arrays(out.arrays, kang_small.var_names)
    np.testing.assert_allclose(s.delta_pred, (P + delta).mean(0) - C.mean(0), atol=1e-5)
    assert s.boot_pred.shape == (2, kang_small.n_vars) and s.nsig[0] == t.loc[
        ("de_nsig_counts_real", "pdex_fdr0.05"), "value"]
    ceil = run_unit(inputs, BenchmarkUnit("ceiling", "B", "balanced", 0))
    assert set(ceil.table["model"]) == {"ceiling"} and ceil.training["epochs"] == 0
    assert set(out.table["protocol"]) == set(ceil.table["protocol"]) == {"custom"}  # every table names its protocol
    assert not ceil.table["paired"].any()  # halves of real cells are not made from control cells
