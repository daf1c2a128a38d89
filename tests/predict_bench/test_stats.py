"""Ranking, paired Wilcoxon tests (BH) and degradation on synthetic tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perturblab.predict.benchmark.stats import degradation, higher_is_better, paired_tests, rank_models


def _table(values: dict, metric="r2_pearson_mean", variant="balanced", seeds=(0,)):
    rows = []
    for model, per_target in values.items():
        for t, v in enumerate(per_target):
            for s in seeds:
                rows.append({"model": model, "target": f"T{t}", "variant": variant, "seed": s, "metric": metric,
                             "gene_set": "all", "value": v + 0.0 * s})
    return pd.DataFrame(rows)


def test_direction_of_metrics():
    assert higher_is_better("r2_pearson_mean") and higher_is_better("deg_overlap_at_k[wilcoxon]")
    assert not higher_is_better("edistance") and not higher_is_better("mse_mean")
    assert not higher_is_better("mmd_rbf") and not higher_is_better("kde_distance")


def test_rank_models_follows_the_metric_direction():
    vals = {"a": [0.9, 0.8], "b": [0.5, 0.6], "c": [0.7, 0.7]}
    r = rank_models(_table(vals))
    assert list(r["model"]) == ["a", "c", "b"] and list(r["rank"]) == [1, 2, 3]
    assert r.loc[r["model"] == "a", "mean"].item() == pytest.approx(0.85)
    e = rank_models(_table(vals, metric="edistance"))
    assert list(e["model"]) == ["b", "c", "a"]


def test_paired_wilcoxon_exact_p_and_bh():
    # a beats b on all 6 targets: exact two-sided signed-rank p = 2 / 2**6 = 0.03125.
    b = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    vals = {"a": [x + 0.05 * (i + 1) for i, x in enumerate(b)], "b": b, "c": list(b)}
    t = paired_tests(_table(vals, seeds=(0, 1)))
    ab = t[(t.model_a == "a") & (t.model_b == "b")].iloc[0]
    assert ab.n_targets == 6 and ab.p_value == pytest.approx(0.03125) and ab.better == "a"
    assert ab.statistic == 0.0
    bc = t[(t.model_a == "b") & (t.model_b == "c")].iloc[0]
    assert np.isnan(bc.p_value) and np.isnan(bc.p_adj) and bc.better == ""  # no difference: undefined
    # BH over the two defined tests (both 0.03125): adjusted = 0.03125 * 2 / 2.
    assert t["p_adj"].dropna().tolist() == pytest.approx([0.03125, 0.03125])


def test_paired_bh_against_hand_computed_values():
    # three models with different separations; BH recomputed by hand below
    vals = {"a": [1, 2, 3, 4, 5, 6], "b": [0, 1, 2, 3, 4, 5], "c": [2, 0, 4, 2, 6, 4]}
    t = paired_tests(_table(vals)).set_index(["model_a", "model_b"])
    from scipy.stats import wilcoxon

    p = {k: wilcoxon(vals[k[0]], vals[k[1]]).pvalue for k in [("a", "b"), ("a", "c"), ("b", "c")]}
    order = sorted(p, key=p.get)
    m = len(p)
    adj, running = {}, 1.0
    for rank in range(m, 0, -1):  # BH step-up by hand
        k = order[rank - 1]
        running = min(running, p[k] * m / rank)
        adj[k] = running
    for k in p:
        assert t.loc[k, "p_value"] == pytest.approx(p[k])
        assert t.loc[k, "p_adj"] == pytest.approx(adj[k])


def test_degradation_sign():
    bal = _table({"m": [0.9, 0.8]})
    unb = _table({"m": [0.7, 0.8]}, variant="unbalanced")
    d = degradation(pd.concat([bal, unb]))
    assert list(d["variant"]) == ["unbalanced", "unbalanced"]
    assert d["change"].tolist() == pytest.approx([-0.2, 0.0])
    assert d["worse_by"].tolist() == pytest.approx([0.2, 0.0])  # lower R2 = worse
    e = degradation(pd.concat([_table({"m": [1.0]}, "edistance"), _table({"m": [3.0]}, "edistance", "unbalanced")]))
    assert e["worse_by"].item() == pytest.approx(2.0)  # higher distance = worse
