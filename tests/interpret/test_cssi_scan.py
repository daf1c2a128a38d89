"""CSSI, honestly (issue 14): scaling failure, strata scan with three nulls, per-edge FDR, on planted states."""

import numpy as np
import pandas as pd
import pytest

from perturblab.exceptions import PerturblabWarning
from perturblab.interpret.cssi_scan import (
    cssi_edge_fdr,
    cssi_edge_fdr_rows,
    kmeans_strata,
    scaling_curve,
    scaling_test,
    scaling_test_rows,
    strata_scan,
    strata_scan_rows,
)
from perturblab.interpret.references import Reference
from perturblab.interpret.registry_rows import add_rows
from perturblab.interpret.stats import Registry


@pytest.fixture(scope="module")
def ctrl(sim_control):
    return sim_control


def _registry_accepts(rows):
    reg = Registry()
    add_rows(reg, rows)
    assert len(reg.table()) == len(rows)


def test_scaling_auroc_improves_with_cells(sim, ctrl):
    X, genes, _ = ctrl
    ref = Reference("global", sim.reference("global"))
    with pytest.warns(PerturblabWarning, match="exceed"):
        curve = scaling_curve(X, genes, ref, tfs=sim.tfs, n_cells=(200, 800, 5000), n_repeats=8, random_state=0)
    assert sorted(curve["n_cells"].unique()) == [200, 800] and curve["repeat"].nunique() == 8
    assert (curve["evidence"] == "correlation").all() and (curve["data"] == "simulated").all()
    test = scaling_test(curve).set_index("metric")
    # every repeat's AUROC rises from 200 to 800 cells: sign test p = 2 / 2^8
    assert test.loc["auroc", "n_increase"] == 8 and test.loc["auroc", "p"] == pytest.approx(2 / 256)
    assert test.loc["auroc", "improves"]
    assert test.loc["topk_f1", "scaling_failure"] == (not test.loc["topk_f1", "improves"])
    _registry_accepts(scaling_test_rows(test.reset_index()))


def test_scaling_test_hand_made():
    curve = pd.DataFrame({"evidence": "attention", "data": "real", "reference": "r",
                          "n_cells": [200] * 5 + [1000] * 5, "repeat": list(range(5)) * 2,
                          "auroc": [0.6] * 5 + [0.7] * 5,
                          "topk_f1": [0.3, 0.3, 0.3, 0.3, 0.3, 0.2, 0.4, 0.3, 0.2, 0.4]})
    t = scaling_test(curve).set_index("metric")
    assert t.loc["auroc", "p"] == pytest.approx(2 / 32) and not t.loc["auroc", "improves"]  # 5 repeats: p = 0.0625
    assert t.loc["topk_f1", "n_increase"] == 2 and t.loc["topk_f1", "n_decrease"] == 2
    assert t.loc["topk_f1", "p"] == 1.0 and not t["scaling_failure"].any()


def test_strata_scan_peaks_at_the_true_number_of_states(sim, ctrl):
    from sklearn.decomposition import PCA

    X, genes, states = ctrl
    ss = Reference("state-specific", sim.reference("state_specific"))
    emb = PCA(10, random_state=0).fit_transform(X)
    scan = strata_scan(X, genes, ss, emb, ks=(2, 3, 6), tfs=sim.tfs, n_repeats=2, n_gene_null=100)
    m = scan.groupby(["k", "strata", "score"])["auroc"].mean()
    pooled = m[(3, "real", "pooled")]
    assert m[(3, "real", "CSSI-max")] > pooled + 0.2
    assert max((2, 3, 6), key=lambda k: m[(k, "real", "CSSI-max")]) == 3
    for k in (2, 3, 6):
        for strata in ("shuffled", "random"):
            assert m[(k, strata, "CSSI-max")] < pooled + 0.06  # no inflation by stratifying alone
    real3 = scan[(scan["k"] == 3) & (scan["strata"] == "real") & (scan["score"] == "CSSI-max")].iloc[0]
    assert real3["gene_null_z"] > 3 and real3["gene_null_p"] < 0.05
    # k-means recovers the planted states
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(states, kmeans_strata(emb, 3)) > 0.9
    rows = strata_scan_rows(scan)
    assert len(rows) == 3 * 2 * 2
    _registry_accepts(rows)


def test_edge_fdr_is_calibrated_and_finds_planted_edges(sim, ctrl):
    X, genes, states = ctrl
    ref = Reference("all", sim.reference("all"))
    fdr = cssi_edge_fdr(X, genes, states, tfs=sim.tfs, reference=ref)
    assert len(fdr) == len(sim.tfs) * (genes.size - 1)
    assert fdr.loc[fdr["in_reference"], "called"].mean() > 0.7  # planted edges are called
    assert ((fdr["q"] >= fdr["p"]) | np.isclose(fdr["q"], fdr["p"])).all()
    # within-stratum permutation of every gene: no edge left, p-values uniform
    rng = np.random.default_rng(0)
    Xp = X.copy()
    for s in np.unique(states):
        idx = np.flatnonzero(states == s)
        for j in range(X.shape[1]):
            Xp[idx, j] = X[rng.permutation(idx), j]
    null = cssi_edge_fdr(Xp, genes, states, tfs=sim.tfs)
    assert null["called"].sum() <= 1 and 0.02 < (null["p"] < 0.05).mean() < 0.09
    rows = cssi_edge_fdr_rows(fdr)
    assert len(rows) == 1 and rows[0]["p"] < 1e-6
    _registry_accepts(rows)
    with pytest.raises(ValueError, match="min_cells"):
        cssi_edge_fdr(X[:10], genes, states[:10])
