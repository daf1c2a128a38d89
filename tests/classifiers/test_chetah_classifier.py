"""CHETAH-style classifier: CHETAH's head-neck reference, synthetic cases, PBMC3k."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from scipy.stats import spearmanr

from perturblab.classifiers import ChetahClassifier
from perturblab.classifiers.chetah import spearman_to_profile
from perturblab.datasets import fetch


def test_spearman_to_profile_matches_scipy():
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(6, 30)).astype(float)  # ties
    p = rng.normal(size=30)
    expected = [spearmanr(x, p)[0] for x in X]
    np.testing.assert_allclose(spearman_to_profile(X, p), expected, rtol=1e-10)
    assert spearman_to_profile(np.zeros((2, 30)), p).tolist() == [0.0, 0.0]  # constant row: 0, as CHETAH's NA


@pytest.fixture(scope="module")
def headneck():
    return ad.read_h5ad(fetch("fixtures/chetah_headneck_ref.h5ad"))


def test_headneck_reference_classifies_itself(headneck):
    clf = ChetahClassifier().fit_reference(headneck.X, headneck.obs["celltypes"], headneck.var_names)
    assert len(clf.nodes_) == 8 and clf.nodes_[0].name == "Unassigned"  # 9 types -> 8 binary nodes
    assert sorted(clf.nodes_[0].leaves) == sorted(clf.classes_)
    assert all(len(g) == 200 for n in clf.nodes_ for g in n.genes.values())
    pred = clf.predict(headneck.X)
    assert np.mean(pred == headneck.obs["celltypes"].astype(str).to_numpy()) > 0.9
    # the two stromal types split from the immune cells at the root
    root = {frozenset(clf.nodes_[0].branch1), frozenset(clf.nodes_[0].branch2)}
    assert root >= {frozenset({"Endothelial", "Fibroblast"})}


def _two_types(n=20, genes=50, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.0, size=genes)
    a = base.copy()
    a[:10] += 5
    b = base.copy()
    b[10:20] += 5
    X = np.vstack([rng.normal(a, 0.5, size=(n, genes)), rng.normal(b, 0.5, size=(n, genes))]).clip(0)
    return X, np.array(["a"] * n + ["b"] * n), [f"g{i}" for i in range(genes)]


def test_threshold_controls_abstention():
    X, y, genes = _two_types()
    sure = ChetahClassifier(n_genes=20, threshold=0.1).fit_reference(X, y, genes)
    assert (sure.predict(X) == y).all()
    never = ChetahClassifier(n_genes=20, threshold=2.5).fit_reference(X, y, genes)  # confidence <= 2
    assert (never.predict(X) == "Unassigned").all()
    P = sure.predict_proba(X)
    assert P.shape == (40, 2) and ((P >= 0) & (P <= 1)).all()
    assert (sure.classes_[P.argmax(1)] == y).all()


def test_pbmc3k(pbmc_train, pbmc_test):
    clf = ChetahClassifier().fit(pbmc_train, "cell_type")
    X = clf.preprocess(pbmc_test)
    labels = pbmc_test.obs["cell_type"].astype(str).to_numpy()
    pred = clf.predict(X)
    assert np.mean(pred == labels) > 0.6
    assert any(p == "Unassigned" or p.startswith("Node") for p in pred)  # intermediate answers exist
    for target in ["B", "CD14+ Mono", "NK"]:
        assert clf.predict_cluster(X, labels, target).label == target


def test_average_ranks_equal_scipy_with_ties():
    from scipy.stats import rankdata

    from perturblab.classifiers.chetah import average_ranks

    rng = np.random.default_rng(1)
    X = np.log1p(rng.poisson(0.7, size=(40, 57))).astype(np.float32)  # many ties, zeros first
    X[3] = 0.0  # a constant row
    np.testing.assert_array_equal(average_ranks(X), rankdata(X.astype(np.float64), axis=1))
    assert average_ranks(np.zeros((0, 5))).shape == (0, 5)


@pytest.mark.parametrize(("threshold", "modification"), [(0.1, "perc99"), (0.1, "perc1"), (0.4, "decile+5")])
def test_single_gene_fast_path_equals_predict_on_every_cell(headneck, threshold, modification):
    """The incremental-rank path gives predict's answer for every cell and gene, abstentions included."""
    from perturblab.attack._engine import AttackTarget
    from perturblab.attack._fastpath import fast_cell_labels, single_gene_fast
    from perturblab.attack.modifications import get_modification

    clf = ChetahClassifier(threshold=threshold).fit_reference(headneck.X, headneck.obs["celltypes"],
                                                              headneck.var_names)
    X = np.asarray(headneck.X, dtype=np.float32)
    clusters = headneck.obs["celltypes"].astype(str).to_numpy()
    tgt = AttackTarget(clf, X, clusters, "CD8 T cell")
    genes = np.asarray(clf.used_genes_)[::5]
    V = get_modification(modification).values(tgt.X, tgt.mask, genes)
    names, codes, unsure = fast_cell_labels(tgt, genes, V)
    assert not unsure.any()
    answers = set()
    for j, g in enumerate(genes):
        Xm = tgt.Xc.copy()
        Xm[:, g] = V[:, j]
        expected = clf.predict(Xm).astype(str)
        np.testing.assert_array_equal(names[codes[j]], expected)
        answers |= set(expected)
    if threshold > 0.1:
        assert any(a.startswith("Node") or a == "Unassigned" for a in answers)  # abstentions covered
    generic = AttackTarget(clf, X, clusters, "CD8 T cell").classify_single_genes(genes, V, fast=False)
    assert single_gene_fast(AttackTarget(clf, X, clusters, "CD8 T cell"), genes, V) == generic
