"""Robustness analyses of issue 14 on the planted-GRN simulator and on hand-made cases with known answers."""

import numpy as np
import pandas as pd
import pytest

from perturblab.interpret.baselines import gene_features
from perturblab.interpret.circularity import (
    direction_recovery,
    direction_recovery_rows,
    sign_agreement,
    sign_agreement_rows,
    trrust_subsets,
)
from perturblab.interpret.decomposition import (
    per_tf_recovery,
    per_tf_recovery_rows,
    recovery_decomposition,
    recovery_decomposition_rows,
    reference_degree,
)
from perturblab.interpret.edges import EdgeScores, correlation_scores, spearman_matrix
from perturblab.interpret.incremental import build_pairs
from perturblab.interpret.matching import matched_recovery, matched_recovery_rows, propensity_match
from perturblab.interpret.metrics import auroc
from perturblab.interpret.perturbation import de_targets
from perturblab.interpret.references import Reference, candidate_edges
from perturblab.interpret.registry_rows import add_rows
from perturblab.interpret.splits import split_design, split_design_rows, split_folds, topk_recall
from perturblab.interpret.stats import Registry
from perturblab.interpret.stratify import (
    achieved_power,
    minimal_detectable_effect,
    tf_stratification,
    tf_stratification_rows,
)


@pytest.fixture(scope="module")
def ctrl(sim_control):
    X, genes, _ = sim_control
    return X, genes, gene_features(X, genes)


@pytest.fixture(scope="module")
def corr(ctrl):
    return correlation_scores(ctrl[0], ctrl[1])


def _registry_accepts(rows):
    reg = Registry()
    assert add_rows(reg, rows) == len(rows)
    tab = reg.table()
    assert len(tab) == len(rows)
    return tab


# --- TRRUST circularity ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_trrust(sim):
    """The planted edges with their sign as TRRUST modes, plus random non-edges labelled Unknown."""
    e = sim.edges
    planted = pd.DataFrame({"source": e["source"], "target": e["target"],
                            "regulation": np.where(e["weight"] > 0, "Activation", "Repression")})
    rng = np.random.default_rng(0)
    genes = list(sim.adata.var_names[:60])
    have = set(zip(e["source"], e["target"]))
    unknown = []
    while len(unknown) < 30:
        s, t = sim.tfs[rng.integers(len(sim.tfs))], genes[rng.integers(len(genes))]
        if s != t and (s, t) not in have:
            have.add((s, t))
            unknown.append((s, t, "Unknown"))
    return pd.concat([planted, pd.DataFrame(unknown, columns=["source", "target", "regulation"])], ignore_index=True)


def test_trrust_subsets_by_mode():
    t = pd.DataFrame({"source": ["A", "A", "A", "B", "B"], "target": ["x", "x", "y", "z", "w"],
                      "regulation": ["Activation", "Repression", "Unknown", "Unknown", "Repression"]})
    sub = trrust_subsets(t)
    as_set = {k: set(zip(v["source"], v["target"])) for k, v in sub.items()}
    assert as_set["all"] == {("A", "x"), ("A", "y"), ("B", "z"), ("B", "w")}
    assert as_set["direction-known"] == {("A", "x"), ("B", "w")}
    assert as_set["activation"] == {("A", "x")} and as_set["repression"] == {("A", "x"), ("B", "w")}
    assert as_set["unknown"] == {("A", "y"), ("B", "z")}


def test_direction_known_subset_is_recovered_unknown_is_not(sim, corr, fake_trrust):
    tab = direction_recovery([corr], fake_trrust, tfs=sim.tfs).set_index("subset")
    assert tab.loc["direction-known", "auroc"] > 0.75 and tab.loc["direction-known", "p"] < 1e-6
    assert tab.loc["activation", "auroc"] > 0.7 and tab.loc["repression", "auroc"] > 0.7
    assert abs(tab.loc["unknown", "auroc"] - 0.5) < 0.15  # random pairs: chance
    assert tab.loc["direction-known", "known_vs_unknown_p"] < 1e-3
    # the subsets' positives are counted against non-TRRUST pairs only
    assert tab.loc["unknown", "n_positive"] == 30
    assert tab.loc["unknown", "n_candidates"] == tab.loc["all", "n_candidates"] - len(sim.edges)
    _registry_accepts(direction_recovery_rows(tab.reset_index()))


def test_sign_agreement_follows_planted_signs(sim, ctrl, fake_trrust):
    X, genes, _ = ctrl
    signed = EdgeScores("spearman rho", spearman_matrix(X), genes, "correlation")
    tab = sign_agreement(signed, fake_trrust).set_index("subset")
    assert tab.loc["direction-known", "n_edges"] == len(sim.edges)
    assert tab.loc["direction-known", "fraction_agree"] > 0.85 and tab.loc["direction-known", "p"] < 1e-6
    # flipping the signs flips the answer
    flipped = EdgeScores("minus rho", -spearman_matrix(X), genes, "correlation")
    assert sign_agreement(flipped, fake_trrust).set_index("subset").loc["direction-known", "fraction_agree"] < 0.15
    _registry_accepts(sign_agreement_rows(tab.reset_index()))


# --- per-TF CIs and decomposition ------------------------------------------------------------------------


def test_per_tf_recovery_cis(sim, corr):
    ref = Reference("global", sim.reference("global"))
    tab = per_tf_recovery([corr], ref, tfs=sim.tfs, n_boot=300)
    n_targets = ref.edges["source"].value_counts()
    assert set(tab["tf"]) == set(n_targets[n_targets >= 3].index)  # TFs with >= min_targets targets
    assert ((tab["ci_low"] <= tab["auroc"]) & (tab["auroc"] <= tab["ci_high"])).all()
    assert (tab["auroc"] > 0.7).mean() >= 0.8
    # hand check of one TF's AUROC
    genes = corr.genes
    i = list(genes).index("TF0")
    cand = np.array([j for j in range(genes.size) if j != i])
    targets = set(ref.edges.loc[ref.edges["source"] == "TF0", "target"])
    lab = np.isin(genes[cand], list(targets))
    assert tab.set_index("tf").loc["TF0", "auroc"] == pytest.approx(auroc(corr.matrix[i, cand], lab))
    few = per_tf_recovery([corr], ref, tfs=sim.tfs, min_targets=n_targets.max() + 1, n_boot=10)
    assert len(few) == 0
    _registry_accepts(per_tf_recovery_rows(tab))


def test_decomposition_parts_add_up_and_find_a_degree_artefact(sim, ctrl, corr):
    _, genes, feats = ctrl
    ref = Reference("global", sim.reference("global"))
    deg = reference_degree(genes, ref)
    assert deg.loc["TF0", "out_degree"] == (ref.edges["source"] == "TF0").sum()
    hub = EdgeScores("target in-degree", np.broadcast_to(deg["in_degree"].to_numpy()[None, :], (genes.size,) * 2).copy()
                     + np.random.default_rng(0).normal(0, 1e-6, (genes.size,) * 2), genes, "attention")
    tab = recovery_decomposition([hub, corr], ref, feats, tfs=sim.tfs)
    for _, g in tab.groupby("score"):
        g = g.set_index("part")
        total = g.loc["total", "contribution"]
        assert g.loc[["degree", "expression", "residual"], "contribution"].sum() == pytest.approx(total)
    h = tab[tab["score"] == "target in-degree"].set_index("part")
    assert h.loc["total", "auroc_before"] > 0.75
    assert h.loc["degree", "fraction"] > 0.9 and abs(h.loc["residual", "contribution"]) < 0.05
    c = tab[tab["score"] == "spearman"].set_index("part")
    assert c.loc["residual", "fraction"] > 0.6 and c.loc["residual", "p"] < 1e-6  # planted edges are not artefacts
    rows = recovery_decomposition_rows(tab)
    assert len(rows) == 2
    _registry_accepts(rows)


# --- propensity matching ---------------------------------------------------------------------------------


def test_matching_removes_a_covariate_score_and_keeps_real_signal(sim, ctrl, corr):
    _, genes, feats = ctrl
    rng = np.random.default_rng(1)
    # a reference biased towards highly expressed targets, and a score that only knows expression
    rows, cols, _ = candidate_edges(genes, Reference("x", sim.reference("global")), sim.tfs)
    m = feats["mean"].to_numpy()
    prob = 1 / (1 + np.exp(-(3 * (m[cols] - m.mean()) / m.std() - 3.5)))
    pick = rng.random(rows.size) < prob
    biased = Reference("biased", pd.DataFrame({"source": genes[rows[pick]], "target": genes[cols[pick]]}))
    shape = (genes.size, genes.size)
    expr = EdgeScores("target mean", np.broadcast_to(m[None, :], shape) + rng.normal(0, 1e-3, shape), genes, "x")
    rec, bal = matched_recovery([expr, corr], biased, feats, tfs=sim.tfs, use_degree=False, n_boot=200)
    r = rec.set_index("score")
    assert r.loc["target mean", "auroc_raw"] > 0.8
    assert abs(r.loc["target mean", "auroc_matched"] - 0.5) < 0.12  # nothing left once matched
    b = bal.set_index("covariate")
    assert b.loc["target_mean", "smd_before"] > 1 and abs(b.loc["target_mean", "smd_after"]) < 0.1
    assert abs(b.loc["propensity logit", "smd_after"]) < 0.1
    assert b["smd_after"].abs().mean() < b["smd_before"].abs().mean() / 3
    # the planted network survives matching on expression and degree
    glob = Reference("global", sim.reference("global"))
    rec2, bal2 = matched_recovery([corr, expr], glob, feats, tfs=sim.tfs, n_boot=200)
    r2 = rec2.set_index("score")
    assert r2.loc["spearman", "auroc_matched"] > 0.75 and r2.loc["spearman", "p"] < 0.01
    assert r2.loc["spearman - target mean", "ci_low"] > 0
    b2 = bal2.set_index("covariate")
    assert abs(b2.loc["target_in_degree", "smd_after"]) < 0.1 < b2.loc["target_in_degree", "smd_before"]
    assert b2["smd_after"].abs().max() < 0.2
    _registry_accepts(matched_recovery_rows(rec2))


def test_propensity_match_caliper_and_k():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 500), rng.normal(1, 1, 50)])
    t = np.r_[np.zeros(500, bool), np.ones(50, bool)]
    m = propensity_match(pd.DataFrame({"x": x}), t, k=5)
    assert m.controls.shape[1] == 5 and m.treated.size + m.n_unmatched == 50
    ok = m.controls >= 0
    assert (np.abs(m.logit[m.controls[ok]] - np.repeat(m.logit[m.treated], 5).reshape(-1, 5)[ok]) <= m.caliper).all()
    assert not t[m.controls[ok]].any()
    w = m.weights(t.size)
    assert w[t].sum() == m.treated.size and w[~t].sum() == pytest.approx(m.treated.size)
    with pytest.raises(ValueError, match="matching needs"):
        propensity_match(pd.DataFrame({"x": x[:3]}), [True, False, False], k=5)


# --- split designs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs(sim, ctrl, corr):
    _, genes, feats = ctrl
    de = de_targets(sim.adata)
    noise = EdgeScores("noise", np.random.default_rng(0).random(corr.matrix.shape), genes, "attention")
    return build_pairs(de, feats, {"correlation": corr, "noise": noise})


def test_joint_split_holds_out_perturbations_and_targets(pairs):
    folds = split_folds(pairs, "joint", n_splits_joint=2, random_state=0)
    tested = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(pairs)))  # every pair predicted exactly once
    for tr, te in folds:
        assert not set(pairs["perturbation"].iloc[tr]) & set(pairs["perturbation"].iloc[te])
        assert not set(pairs["target"].iloc[tr]) & set(pairs["target"].iloc[te])
    for split in ("perturbation", "target"):
        for tr, te in split_folds(pairs, split, n_splits=3):
            assert not set(pairs[split].iloc[tr]) & set(pairs[split].iloc[te])
    with pytest.raises(ValueError, match="split must be"):
        split_folds(pairs, "cells")


def test_split_designs_find_the_informative_edge_score(pairs):
    tab = split_design(pairs, edge_columns=("correlation", "noise"), models=("logistic",), n_splits=4, n_boot=200)
    assert set(tab["split"]) == {"perturbation", "target", "joint"}
    c = tab[tab["features"] == "gene + correlation"]
    assert (c["delta_auroc"] > 0.05).all() and (c["delta_auroc_ci_low"] > 0).all()
    assert (c["delta_topk_recall"] >= 0).all()
    n = tab[tab["features"] == "gene + noise"]
    assert (n["delta_auroc"].abs() < 0.08).all()
    assert tab.loc[tab["features"] == "gene", "delta_auroc_p"].isna().all()
    rows = split_design_rows(tab.assign(features=tab["features"].str.replace("correlation", "attention")))
    assert sum(r["confirmatory"] for r in rows) == 1  # gene + attention, joint split
    _registry_accepts(rows)


def test_topk_recall_hand_computed():
    assert topk_recall([0.9, 0.8, 0.1, 0.7], [True, False, True, False], k=2) == 0.5
    assert topk_recall([0.9, 0.8, 0.1, 0.7], [True, False, True, False], k=10) == 1.0
    assert np.isnan(topk_recall([1, 2], [False, False]))


# --- TF stratification and power -------------------------------------------------------------------------


def test_power_tools_known_values():
    # one-sample t-test, n = 10, alpha 0.05 two-sided, power 0.8: d = 0.996 (Cohen 1988 tables)
    assert minimal_detectable_effect(10) == pytest.approx(0.996, abs=0.01)
    # two-sample, 64 per group detects d = 0.5 with 80% power (Cohen 1988)
    assert achieved_power(0.5, 64, 64) == pytest.approx(0.80, abs=0.01)
    assert np.isnan(minimal_detectable_effect(1))


def test_tf_stratification_detects_a_tf_only_effect():
    rng = np.random.default_rng(0)
    perts = [f"TF{i}" for i in range(10)] + [f"G{i}" for i in range(10)]
    base = rng.uniform(0.55, 0.7, len(perts))
    delta = np.where([p.startswith("TF") for p in perts], 0.2, 0.0) + rng.normal(0, 0.03, len(perts))
    pp = pd.concat([pd.DataFrame({"score": "att", "perturbation": perts, "auroc": base + delta}),
                    pd.DataFrame({"score": "corr", "perturbation": perts, "auroc": base})])
    tab = tf_stratification(pp, [f"TF{i}" for i in range(10)], "att", "corr").set_index("stratum")
    assert tab.loc["TF", "n"] == 10 and tab.loc["non-TF", "n"] == 10
    assert tab.loc["TF", "p"] < 0.01 and tab.loc["non-TF", "p"] > 0.05
    assert tab.loc["TF vs non-TF", "p"] < 0.001 and tab.loc["TF vs non-TF", "delta"] == pytest.approx(0.2, abs=0.03)
    assert tab.loc["TF", "mde_d"] == pytest.approx(minimal_detectable_effect(10))
    assert tab.loc["TF", "power_observed"] > 0.99
    rows = tf_stratification_rows(tab.reset_index())
    assert len(rows) == 3
    _registry_accepts(rows)
