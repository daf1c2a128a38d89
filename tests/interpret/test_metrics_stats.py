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


def _effects(top=(0.02, 0.04), rnd=(0.0, 0.01), p=0.01, layer_p=0.01, fid=0.05):
    from perturblab.interpret.ablation import AblationEffects

    ks = [2, 4]
    tests = {kind: {"layers": [0], "n": 8, "effect": 0.03, "p": layer_p} for kind in ("uniform", "mlp")}
    return AblationEffects(ks, dict(zip(ks, top)), dict(zip(ks, rnd)), 8, 0.025, p, tests, fid, [0])


COMPS = pd.DataFrame({"a": "att", "b": ["baseline mean", "baseline variance"], "delta": [0.1, -0.05],
                      "ci_low": [0.02, -0.1], "ci_high": [0.2, 0.0], "p": [0.01, 0.2], "p_bh": [0.02, 0.2]})
INC = pd.DataFrame({"features": ["gene + attention"], "model": ["logistic"], "split": ["perturbation"],
                    "delta_auroc": [0.01], "delta_auroc_ci_low": [0.001], "delta_auroc_ci_high": [0.02]})
RESID = pd.DataFrame({"reference": ["trrust", "trrust"], "residualiser": ["ols", "gbdt"], "auroc": [0.70, 0.70],
                      "auroc_residualised": [0.68, 0.55], "retained_fraction": [0.9, 0.25]})


def test_verdict_criteria():
    v = verdict(COMPS, INC, RESID, 4.0, _effects(), n_perturbations=8)
    passed = {c.name[:3]: c.passed for c in v.criteria}
    assert passed == {"(a)": False, "(b)": True, "(c)": True, "(d)": True}  # (a): variance not beaten
    assert v.passed is False
    assert verdict(COMPS.iloc[:1], INC, RESID, 4.0, _effects(), n_perturbations=8).passed is True
    # (a) needs BH p < alpha, not only a positive delta
    weak = COMPS.iloc[:1].assign(p_bh=0.2)
    assert verdict(weak, INC, RESID, 4.0, _effects(), n_perturbations=8).criteria[0].passed is False
    # (c) on the OLS residualiser (primary); GBDT is reported, not judged
    c = verdict(COMPS, INC, RESID, 4.0, n_perturbations=8).criteria[2]
    assert "OLS (primary)" in c.evidence and "GBDT (secondary)" in c.evidence and c.passed is True
    assert verdict(COMPS, INC, RESID, 4.0, null_z_min=4.5, n_perturbations=8).criteria[2].passed is False
    v3 = verdict(None, None, None, None)
    assert all(c.passed is None for c in v3.criteria) and not v3.passed
    assert set(v3.table()["status"]) == {"not evaluable"}


def test_criterion_d_is_signed_monotone_and_needs_layer_interventions():
    ok = verdict(COMPS, INC, RESID, 4.0, _effects(), n_perturbations=8).criteria[3]
    assert ok.passed is True
    # improvements are not effects: top-k ablation that *raises* the outcome fails, however large |delta|
    assert verdict(COMPS, INC, RESID, 4.0, _effects(top=(-0.05, -0.1)), n_perturbations=8).criteria[3].passed is False
    # not monotone in k
    assert verdict(COMPS, INC, RESID, 4.0, _effects(top=(0.05, 0.02)), n_perturbations=8).criteria[3].passed is False
    # below random at one k
    assert verdict(COMPS, INC, RESID, 4.0, _effects(rnd=(0.03, 0.0)), n_perturbations=8).criteria[3].passed is False
    # uniform / MLP drops not significant, or fidelity too small
    assert verdict(COMPS, INC, RESID, 4.0, _effects(layer_p=0.3), n_perturbations=8).criteria[3].passed is False
    assert verdict(COMPS, INC, RESID, 4.0, _effects(fid=0.01), n_perturbations=8).criteria[3].passed is False
    # no layer-level intervention measurable: not evaluable (unless another part fails)
    e = _effects()
    e.layer_tests = {}
    crit = verdict(COMPS, INC, RESID, 4.0, e, n_perturbations=8).criteria[3]
    assert crit.passed is None and "not evaluable" in crit.evidence


def test_retained_fraction_cannot_pass_below_chance():
    from perturblab.interpret.stats import retained_fraction

    assert retained_fraction(0.70, 0.66) == pytest.approx(0.8)
    assert retained_fraction(0.70, 0.45) == pytest.approx(-0.25)
    # raw 0.45 -> residualised 0.40 was "200% retained" with the plain ratio
    assert retained_fraction(0.45, 0.40) == 0.0 and retained_fraction(0.5, 0.9) == 0.0
    assert np.isnan(retained_fraction(np.nan, 0.6))
    below = RESID.assign(auroc=0.45, auroc_residualised=0.40,
                         retained_fraction=[retained_fraction(0.45, 0.40)] * 2)
    assert verdict(COMPS, INC, below, 10.0, n_perturbations=8).criteria[2].passed is False


def test_small_runs_are_not_evaluable():
    v = verdict(COMPS.iloc[:1], INC, RESID, 4.0, _effects(), n_perturbations=2, min_perturbations=6)
    status = dict(zip(v.table()["name"].str[:3], v.table()["status"]))
    assert status == {"(a)": "not evaluable", "(b)": "not evaluable", "(c)": "pass", "(d)": "not evaluable"}
    for c in v.criteria[:2] + v.criteria[3:]:
        assert c.evidence == "not evaluable: 2 rankable perturbation(s) with DE targets (minimum 6)" and c.n == 2
        assert "CI" not in c.evidence and "delta" not in c.evidence
    assert v.to_dict()["criteria"][0]["status"] == "not evaluable"
    reg = Registry()
    reg.add("s", "small", "wilcoxon", p=0.01, effect_size=0.1, n=2, evaluable=False)
    reg.add("s", "big", "wilcoxon", p=0.01, effect_size=0.1, n=9)
    t = reg.table().set_index("hypothesis")
    assert t.loc["small", "flag"] == "not evaluable" and np.isnan(t.loc["small", "p_bh"])
    assert t.loc["big", "p_bh"] == pytest.approx(0.01)  # the not-evaluable test is not in the BH family


def test_bonferroni_z():
    from scipy.stats import norm

    from perturblab.interpret.stats import bonferroni_z

    assert bonferroni_z(3.0, 1) == pytest.approx(3.0)
    assert norm.sf(bonferroni_z(3.0, 8)) == pytest.approx(norm.sf(3.0) / 8)


def test_criterion_b_takes_every_split_design_and_its_confirmations():
    """The split-design analysis's rows join (b): the joint split's CI and the AUPRC / top-k recall deltas."""
    designs = pd.DataFrame({"features": ["gene", "gene + attention", "gene + attention"], "model": "logistic",
                            "split": ["joint", "joint", "gene"], "delta_auroc": [0.0, 0.02, 0.01],
                            "delta_auroc_ci_low": [np.nan, 0.005, 0.002], "delta_auroc_ci_high": [np.nan, 0.03, 0.02],
                            "delta_auprc": [0.0, 0.01, 0.004], "delta_topk_recall": [0.0, 0.05, 0.01]})

    def b(splits):
        return verdict(COMPS, INC, RESID, 4.0, _effects(), n_perturbations=8, splits=splits).criteria[1]

    assert b(None).passed is True and b(designs).passed is True
    assert "logistic/joint" in b(designs).evidence and "confirmation" in b(designs).evidence
    joint_ci_below = designs.assign(delta_auroc_ci_low=[np.nan, -0.001, 0.002])
    assert b(joint_ci_below).passed is False  # one split design whose CI reaches 0
    auprc_down = designs.assign(delta_auprc=[0.0, 0.01, -0.002])
    assert b(auprc_down).passed is False  # AUROC up, not confirmed on AUPRC
    topk_down = designs.assign(delta_topk_recall=[0.0, 0.0, 0.01])
    assert b(topk_down).passed is False  # not confirmed on top-k recall
