"""Hand-computed cases for the ranking metrics and the statistics registry."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from perturblab.interpret.metrics import auprc, auroc, auroc_ranks, early_precision_ratio, ranking_metrics, topk_f1
from perturblab.interpret.stats import Registry, verdict

SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
LABELS = np.array([1, 0, 1, 0, 0, 0], dtype=bool)


def test_auroc_hand_computed():
    # positives at ranks 1 and 3 of 6: pairs (pos > neg) = 4 + 3 = 7 of 2 * 4 = 8
    assert auroc(SCORES, LABELS) == pytest.approx(7 / 8)
    assert float(auroc_ranks(SCORES, LABELS)) == pytest.approx(7 / 8)
    # ties count one half
    assert auroc([1, 1], [True, False]) == pytest.approx(0.5)
    assert np.isnan(auroc([1, 2], [False, False]))


def test_auprc_epr_f1_hand_computed():
    # AP = mean precision at each positive: (1/1 + 2/3) / 2
    assert auprc(SCORES, LABELS) == pytest.approx((1 + 2 / 3) / 2)
    # top-2 (k = n_pos) holds 1 positive: precision 1/2, positive rate 2/6 -> EPR 1.5
    assert early_precision_ratio(SCORES, LABELS) == pytest.approx(1.5)
    assert early_precision_ratio(SCORES, LABELS, k=3) == pytest.approx((2 / 3) / (2 / 6))
    # top-2: tp 1, precision 1/2, recall 1/2 -> F1 1/2; top-3: P 2/3, R 1 -> F1 0.8
    assert topk_f1(SCORES, LABELS) == pytest.approx(0.5)
    assert topk_f1(SCORES, LABELS, k=3) == pytest.approx(0.8)
    row = ranking_metrics(SCORES, LABELS)
    assert row["n_candidates"] == 6 and row["n_positive"] == 2


def test_auroc_ranks_matches_sklearn_vectorised():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(5, 40)).round(1)  # ties included
    y = rng.random((5, 40)) < 0.3
    ref = [roc_auc_score(y[i], s[i]) for i in range(5)]
    np.testing.assert_allclose(auroc_ranks(s, y), ref)


def test_metric_errors():
    with pytest.raises(ValueError, match="same length"):
        auroc([1, 2, 3], [True, False])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan, 1], [True, False])
    with pytest.raises(ValueError, match="k must be"):
        topk_f1(SCORES, LABELS, k=0)


def test_registry_bh_hand_computed():
    reg = Registry(alpha=0.05)
    for p in (0.01, 0.04, 0.03):
        reg.add("s", f"h{p}", "wilcoxon", p=p, effect_size=0.1, n=10, claim="c")
    reg.add("s", "explore", "fisher", p=0.001, effect_size=1.0, n=5, confirmatory=False)
    reg.add("s", "na", "wilcoxon", p=float("nan"), effect_size=np.nan, n=1)
    t = reg.table()
    conf = t[t["confirmatory"] & t["p"].notna()].set_index("hypothesis")
    # BH on (0.01, 0.04, 0.03): sorted 0.01*3/1=0.03, 0.03*3/2=0.045, 0.04*3/3=0.04 -> monotone: 0.03, 0.04, 0.04
    assert conf.loc["h0.01", "p_bh"] == pytest.approx(0.03)
    assert conf.loc["h0.03", "p_bh"] == pytest.approx(0.04)
    assert conf.loc["h0.04", "p_bh"] == pytest.approx(0.04)
    assert set(conf["flag"]) == {"significant"}
    assert t.set_index("hypothesis").loc["explore", "flag"] == "exploratory"
    assert t.set_index("hypothesis").loc["na", "flag"] == "not computable"
    claims = reg.claims()
    assert claims.loc[0, "n_tests"] == 3 and claims.loc[0, "n_significant"] == 3
    with pytest.raises(ValueError, match="outside"):
        reg.add("s", "bad", "t", p=1.5, effect_size=0, n=1)


def test_verdict_criteria():
    comps = pd.DataFrame({"b": ["baseline mean", "baseline variance"], "delta": [0.1, -0.05], "ci_low": [0.02, -0.1]})
    inc = pd.DataFrame({"features": ["gene + attention"], "model": ["logistic"], "split": ["perturbation"],
                        "delta_auroc": [0.01], "delta_auroc_ci_low": [0.001], "delta_auroc_ci_high": [0.02]})
    v = verdict(comps, inc, retained_fraction=0.9, degree_null_z=4.0, ablation_effect_top=0.02,
                ablation_effect_random=0.01, ablation_fidelity=0.05)
    passed = dict(zip(v.table()["name"], v.table()["passed"]))
    assert passed["beats every gene baseline"] is False
    assert passed["delta AUROC CI > 0 under all splits"] is True
    assert passed["signal survives residualisation and degree null"] is True
    assert passed["ablation effect >= random with fidelity"] is True
    assert v.passed is False
    v2 = verdict(comps.iloc[:1], inc, 0.9, 4.0, 0.02, 0.01, 0.05)
    assert v2.passed is True
    v3 = verdict(None, None, None, None)
    assert all(c.passed is None for c in v3.criteria) and not v3.passed
