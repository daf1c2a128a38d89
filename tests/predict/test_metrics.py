"""Metrics against small hand-computed cases and reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from perturblab.predict import metrics as M


def test_r2_definitions_hand_computed():
    # y = 2x: perfect correlation, but 1 - SS_res/SS_tot penalises the scale error
    x = np.array([1.0, 2.0, 3.0])
    assert M.r2_pearson(x, 2 * x) == pytest.approx(1.0)
    # truth x (mean 2, SS_tot = 2), prediction 2x: SS_res = 1 + 4 + 9 = 14 -> 1 - 7 = -6
    assert M.r2_score(x, 2 * x) == pytest.approx(-6.0)
    # r([1,2,3],[1,3,2]) = 0.5 -> r^2 = 0.25
    assert M.r2_pearson(x, [1.0, 3.0, 2.0]) == pytest.approx(0.25)
    assert np.isnan(M.r2_pearson([1.0, 1.0], [1.0, 2.0]))


def test_mse_pearson_delta_direction():
    assert M.mse([0.0, 0.0], [1.0, 3.0]) == pytest.approx(5.0)
    ctrl = np.zeros(3)
    assert M.pearson_delta([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], ctrl) == pytest.approx(1.0)
    assert M.direction_match([1.0, -1.0, 1.0, 0.5], [2.0, 1.0, -1.0, 3.0], np.zeros(4)) == pytest.approx(0.5)
    assert M.direction_match([1.0, -1.0, 1.0], [2.0, 1.0, -1.0], np.zeros(3), genes=[0]) == 1.0


def test_edistance_hand_computed():
    X = np.array([[0.0], [2.0]])
    Y = np.array([[5.0], [7.0]])
    # D_xy = {5, 7, 3, 5} -> 5; D_xx = D_yy = 2 -> 2*5 - 2 - 2 = 6
    assert M.edistance(X, Y) == pytest.approx(6.0)
    # squared: D_xy = {25, 49, 9, 25} -> 27; within 4 -> 54 - 8 = 46
    assert M.edistance(X, Y, squared=True) == pytest.approx(46.0)
    assert M.edistance(X, X) == pytest.approx(2 * 1.0 - 2 - 2)  # cross mean {0,2,2,0} = 1
    # bootstrap duplicates (same ids) are left out of the within-group mean
    Xd = np.array([[0.0], [0.0], [2.0]])
    assert M.edistance(Xd, Y, ids_x=[0, 0, 1]) == pytest.approx(2 * np.mean([5, 7, 5, 7, 3, 5]) - 2 - 2)


def test_mmd_hand_computed():
    X = np.array([[0.0, 0.0], [2.0, 0.0]])
    Y = np.array([[1.0, 3.0], [1.0, 1.0]])
    # linear: ||(1,0) - (1,2)||^2 = 4
    assert M.mmd(X, Y, "linear") == pytest.approx(4.0)
    # rbf gamma=1: within X: (1 + 1 + 2 e^-4)/4; within Y: (2 + 2 e^-4)/4; cross: d^2 = 10,2,10,2
    kx = (2 + 2 * np.exp(-4)) / 4
    kxy = (2 * np.exp(-10) + 2 * np.exp(-2)) / 4
    assert M.mmd(X, Y, "rbf") == pytest.approx(2 * kx - 2 * kxy)
    with pytest.raises(ValueError, match="kernel"):
        M.mmd(X, Y, "poly")


def test_wasserstein_matches_scipy():
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(17, 5)).astype(float)
    Y = rng.normal(1.0, 1.0, size=(11, 5))
    w = M.wasserstein_per_gene(X, Y)
    ref = [wasserstein_distance(X[:, g], Y[:, g]) for g in range(5)]
    np.testing.assert_allclose(w, ref, rtol=1e-10)
    assert M.wasserstein_per_gene(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]]))[0] == pytest.approx(2.0)


def test_kde_distance_bounds():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 2))
    assert M.kde_distance(a, a) == pytest.approx(0.0)
    far = M.kde_distance(a, a + 100.0)
    assert far == pytest.approx(2.0, abs=1e-6)
    near = M.kde_distance(a, a + 0.3)
    assert 0 < near < far


def test_sets_and_overlap():
    assert M.jaccard(["a", "b", "c"], ["b", "c", "d"]) == pytest.approx(2 / 4)
    assert M.overlap_at_k(["a", "b", "c", "d"], ["b", "a", "x", "y"], 2) == 1.0
    assert M.overlap_at_k(["a", "b", "c", "d"], ["b", "a", "x", "y"], 4) == 0.5
    with pytest.raises(ValueError):
        M.overlap_at_k(["a"], ["a"], 0)


def test_wilcoxon_scores_equal_scanpy(kang):
    import scanpy as sc

    from perturblab.predict import rank_degs

    a = kang[kang.obs["cell_type"] == "B"].copy()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    a = a[:, np.asarray((a.X > 0).sum(0)).ravel() >= 20].copy()
    X = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    stim = (a.obs["condition"] == "stimulated").to_numpy()
    z = M.wilcoxon_scores(X[stim], X[~stim])
    sc.tl.rank_genes_groups(a, "condition", groups=["stimulated"], reference="control", method="wilcoxon",
                            n_genes=a.n_vars)
    res = a.uns["rank_genes_groups"]
    names = np.asarray(res["names"]["stimulated"]).astype(str)
    scores = np.asarray(res["scores"]["stimulated"], dtype=float)
    pos = a.var_names.get_indexer(names)
    np.testing.assert_allclose(z[pos], scores, rtol=1e-4, atol=1e-4)
    top_ours = rank_degs(X[stim], X[~stim], a.var_names)[:100]
    top_sc = rank_degs(X[stim], X[~stim], a.var_names, use_scanpy=True)[:100]
    assert len(set(top_ours) & set(top_sc)) >= 98  # identical scores; only exact ties may swap
    assert set(top_sc) == set(names[:100])
