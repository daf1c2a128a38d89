"""Attack performance paths: the random-forest single-gene fast path (cached leaves) and the
vectorised Mann-Whitney test of the signature-gene ranking, against their references."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from perturblab.attack import max_change_attack, signature_genes, single_gene_attack
from perturblab.attack._engine import AttackTarget
from perturblab.attack._fastpath import single_gene_fast
from perturblab.attack.modifications import get_modification
from perturblab.attack.signature import distant_pairs, mannwhitney_pairs
from perturblab.classifiers import RandomForestClassifier


@pytest.fixture(scope="module")
def rf_nk(pbmc_split):
    """A 40-tree random forest on 600 variable genes; (classifier, test matrix, clusters)."""
    train, test = pbmc_split
    genes = train.var_names[np.argsort(-np.asarray(train.X.power(2).mean(axis=0)).ravel())[:600]]
    train, test = train[:, genes].copy(), test[:, genes].copy()
    clf = RandomForestClassifier(n_estimators=40, random_state=0).fit(train, "cell_type")
    return clf, clf.preprocess(test), test.obs["cell_type"].astype(str).to_numpy()


@pytest.mark.parametrize("modification", ["perc99", "perc1", "random"])
def test_forest_fast_path_equals_generic_path(rf_nk, modification):
    clf, X, cl = rf_nk
    tgt = AttackTarget(clf, X, cl, "NK")
    genes = np.asarray(clf.used_genes_)
    V = get_modification(modification, random_state=1).values(tgt.X, tgt.mask, genes)
    fast = single_gene_fast(tgt, genes, V)
    assert fast is not None and tgt.n_calls == len(genes)
    generic = AttackTarget(clf, X, cl, "NK").classify_single_genes(genes, V, fast=False)
    assert fast == generic


def test_forest_fast_path_scores_equal_predict_proba(rf_nk):
    from perturblab.attack._fastpath import _forest_scores

    clf, X, cl = rf_nk
    tgt = AttackTarget(clf, X, cl, "CD14+ Mono")
    rng = np.random.default_rng(0)
    genes = np.concatenate([rng.choice(clf.used_genes_, 25, replace=False), [0, 1, 2]])  # + maybe-unused genes
    V = rng.uniform(0, 6, size=(tgt.n_cells, len(genes))).astype(np.float32)
    S = _forest_scores(tgt, clf, genes, V)(0, len(genes))
    for j, g in enumerate(genes):
        Xm = tgt.Xc.copy()
        Xm[:, g] = V[:, j]
        np.testing.assert_allclose(S[j], clf.predict_proba(Xm), rtol=0, atol=1e-12)


def test_forest_fast_path_falls_back(rf_nk, monkeypatch):
    import perturblab.attack._fastpath as fp

    clf, X, cl = rf_nk
    genes = np.asarray(clf.used_genes_[:30])
    V = get_modification("perc99").values(X, cl == "NK", genes)

    class Wrapped(RandomForestClassifier):
        def predict(self, X):  # an override: the fast path must not assume the base behaviour
            return super().predict(X)

    other = Wrapped()
    other.__dict__.update(clf.__dict__)
    assert single_gene_fast(AttackTarget(other, X, cl, "NK"), genes, V) is None
    monkeypatch.setattr(fp, "MAX_PATH_ENTRIES", 10)  # cluster too large for cached paths
    assert single_gene_fast(AttackTarget(clf, X, cl, "NK"), genes, V) is None
    res = single_gene_attack(clf, X, cl, "NK", "perc99", genes=list(clf.genes_[genes]))
    ref = single_gene_attack(clf, X, cl, "NK", "perc99", genes=list(clf.genes_[genes]), use_fast_path=False)
    assert res.genes == ref.genes and res.n_classifier_calls == ref.n_classifier_calls


def test_forest_exhaustive_attack_finds_planted_flip():
    """Synthetic forest where gene g0 alone separates the types (the others are the same noise,
    and g0's counts barely change library sizes): switching g0 on flips the "off" cluster."""
    import anndata as ad

    rng = np.random.default_rng(0)
    counts = rng.poisson(200.0, size=(200, 6)).astype(np.float32)
    counts[:100, 0] = 0
    counts[100:, 0] = rng.poisson(30, 100)
    a = ad.AnnData(counts)
    a.var_names = [f"g{i}" for i in range(6)]
    a.obs["cell_type"] = ["off"] * 100 + ["on"] * 100
    clf = RandomForestClassifier(n_estimators=20, n_per_class=100, random_state=0).fit(a, "cell_type")
    X = clf.preprocess(a)
    res = single_gene_attack(clf, X, a.obs["cell_type"], "off", "perc99")
    assert res.genes == ["g0"] and res.table["new_label"].tolist() == ["on"]
    ref = single_gene_attack(clf, X, a.obs["cell_type"], "off", "perc99", use_fast_path=False)
    assert ref.table.equals(res.table)


def test_max_change_with_forest_keeps_label(rf_nk):
    clf, X, cl = rf_nk
    res = max_change_attack(clf, X, cl, "NK", "perc99", max_split_size=20)
    assert res.check_label == res.baseline_label
    X2 = X.copy()
    rows = np.flatnonzero(cl == "NK")
    idx = [list(clf.genes_).index(g) for g in res.genes]
    V = get_modification("perc99").values(X, cl == "NK", np.array(idx, dtype=np.intp))
    X2[np.ix_(rows, idx)] = V
    assert clf.predict_cluster(X2, cl, "NK").label == res.baseline_label  # checked with sklearn's own model too
    labels = clf.model_.predict(X2[rows])
    assert pd.Series(labels).value_counts().idxmax() == res.baseline_label


def _reference_signature(X, clusters, names):
    """adverSCarial's getSignGenes with scipy, one pair at a time (the straightforward algorithm)."""
    X = np.asarray(X, dtype=np.float64)
    types = list(dict.fromkeys(clusters.tolist()))
    pairs = distant_pairs(types)
    order, pvals = [], []
    for a, b in pairs:
        c1, c2 = X[clusters == a].copy(), X[clusters == b].copy()
        for c in (c1, c2):
            c[0, (c == c[:1]).all(axis=0)] += 0.01
        p = np.nan_to_num(stats.mannwhitneyu(c1, c2, alternative="two-sided", axis=0).pvalue, nan=1.0)
        order.append(np.argsort(p, kind="stable"))
        pvals.append(p)
    seen, genes = set(), []
    for r in range(X.shape[1]):
        for k in range(len(pairs)):
            g = order[k][r]
            if g not in seen:
                seen.add(g)
                genes.append((names[g], pvals[k][g]))
    return genes


def test_signature_genes_equal_scipy_reference(pbmc_split):
    _, test = pbmc_split
    sub = test[:, :400]
    X = np.log1p(np.asarray(sub.X.todense() if hasattr(sub.X, "todense") else sub.X, dtype=np.float64))
    clusters = sub.obs["cell_type"].astype(str).to_numpy()
    got = signature_genes(X, clusters, sub.var_names)
    ref = _reference_signature(X, clusters, np.asarray(sub.var_names))
    assert got["gene"].tolist() == [g for g, _ in ref]
    np.testing.assert_allclose(got["pval"].to_numpy(), [p for _, p in ref], rtol=1e-12, atol=0)


def test_mannwhitney_pairs_equal_scipy_with_ties_and_exact_case():
    rng = np.random.default_rng(0)
    X = rng.poisson(0.8, size=(90, 40)).astype(float) * rng.choice([1.0, 0.5], size=(90, 40))  # many ties
    codes = rng.integers(0, 4, 90)
    codes[:3] = 3  # a group of at most 8 cells
    pairs = [(a, b) for a, b in combinations(range(4), 2)] + [(3, 0)]
    P = mannwhitney_pairs(X, codes, pairs)
    for k, (a, b) in enumerate(pairs):
        ref = stats.mannwhitneyu(X[codes == a], X[codes == b], alternative="two-sided", axis=0).pvalue
        np.testing.assert_allclose(P[k], ref, rtol=1e-12, atol=0)
    # tie-free with a group of 5 cells: scipy's exact distribution
    Y = rng.normal(size=(25, 12))
    small = np.array([0] * 5 + [1] * 20)
    ref = stats.mannwhitneyu(Y[small == 0], Y[small == 1], alternative="two-sided", axis=0, method="exact").pvalue
    np.testing.assert_allclose(mannwhitney_pairs(Y, small, [(0, 1)])[0], ref, rtol=1e-12)


def test_mannwhitney_pairs_hand_computed():
    """x = (1, 2, 2), y = (2, 3): U_x = 0 + 0.5 + 0.5 = 1, one tie group of 3 (tie term 24)."""
    X = np.array([[1.0], [2.0], [2.0], [2.0], [3.0]])
    codes = np.array([0, 0, 0, 1, 1])
    n1, n2, U = 3, 2, max(1.0, 6 - 1.0)
    sd = np.sqrt(n1 * n2 / 12 * ((5 + 1) - 24 / (5 * 4)))
    expected = 2 * stats.norm.sf((U - n1 * n2 / 2 - 0.5) / sd)
    assert mannwhitney_pairs(X, codes, [(0, 1)])[0, 0] == pytest.approx(expected, rel=1e-12)


def test_cgd_with_forest_leaf_cache_equals_full_evaluation(rf_nk):
    from perturblab.attack import cgd_attack

    clf, X, cl = rf_nk
    genes = list(clf.genes_[clf.used_genes_[:60]])
    with_cache = cgd_attack(clf, X, cl, "NK", genes, alpha=1, epsilon=1)
    clf.leaf_cache_size = 0
    try:
        without = cgd_attack(clf, X, cl, "NK", genes, alpha=1, epsilon=1)
    finally:
        del clf.leaf_cache_size
    pd.testing.assert_frame_equal(with_cache.by_gene, without.by_gene)
    np.testing.assert_array_equal(with_cache.X, without.X)


@pytest.mark.parametrize(("target", "modification"), [("CD14+ Mono", "perc99"), ("NK", "perc1")])
def test_max_change_additive_path_equals_generic_path(sctype_test, mlp_hvg, pbmc_hvg, target, modification):
    """The kept genes' summed first-stage change (scType scores, MLP first layer, CellTypist scores) gives the
    generic path's gene set and call count, and the classifier's own check label."""
    from perturblab.attack._engine import AttackTarget
    from perturblab.attack._fastpath import additive_stage
    from perturblab.classifiers import CellTypistClassifier

    train, test = pbmc_hvg
    mlp, _ = mlp_hvg
    celltypist = CellTypistClassifier(max_iter=20, random_state=0).fit(train, "cell_type")
    y = test.obs["cell_type"].astype(str).to_numpy()
    cases = [sctype_test, (mlp, mlp.preprocess(test), y), (celltypist, celltypist.preprocess(test), y)]
    for clf, X, clusters in cases:
        assert additive_stage(AttackTarget(clf, X, clusters, target)) is not None
        fast = max_change_attack(clf, X, clusters, target, modification, max_split_size=20)
        slow = max_change_attack(clf, X, clusters, target, modification, max_split_size=20, use_fast_path=False)
        assert fast.genes == slow.genes and fast.n_classifier_calls == slow.n_classifier_calls
        assert fast.check_label == fast.baseline_label and len(fast.genes) > 0


def test_dichotomic_single_gene_additive_path_equals_generic_path(mlp_hvg):
    mlp, test = mlp_hvg
    X = mlp.preprocess(test)
    y = test.obs["cell_type"].astype(str).to_numpy()
    for target, modification in [("B", "perc1"), ("CD14+ Mono", "perc99")]:
        fast = single_gene_attack(mlp, X, y, target, modification, mode="dichotomic")
        slow = single_gene_attack(mlp, X, y, target, modification, mode="dichotomic", use_fast_path=False)
        assert fast.genes == slow.genes and fast.n_classifier_calls == slow.n_classifier_calls
