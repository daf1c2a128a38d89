"""Sparse input end to end: a CSR AnnData is attacked without densifying it, with the dense path's answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import perturblab as plab
from perturblab.attack._sparse import SparseModelInput, sparse_model_input


@pytest.fixture(scope="module")
def fitted(pbmc_hvg):
    import warnings

    train, test = pbmc_hvg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rf = plab.classifiers.RandomForestClassifier(n_estimators=20, random_state=0).fit(train, "cell_type")
        st = plab.classifiers.ScTypeClassifier().fit(train)
    assert sp.issparse(test.X)
    return {"random_forest": rf, "sctype": st}, test


@pytest.mark.parametrize("name", ["random_forest", "sctype"])
def test_sparse_model_input_equals_the_dense_one(fitted, name):
    clfs, test = fitted
    clf = clfs[name]
    dense = clf.preprocess(test)
    lazy = sparse_model_input(clf, test)
    assert isinstance(lazy, SparseModelInput) and lazy.shape == dense.shape
    rows = np.flatnonzero(test.obs["cell_type"] == "B")
    np.testing.assert_array_equal(lazy.rows(rows), dense[rows])
    genes = np.arange(0, dense.shape[1], 7)
    mask = np.isin(np.arange(test.n_obs), rows)
    chunked = sparse_model_input(clf, test)
    chunked.gene_chunks = lambda g: [g[:5], g[5:]]  # columns sorted in two pieces (bounded memory)
    for mod in ("perc1", "perc99", "decile+5", "decile-3", "random", "positive_aberrant"):
        m = plab.attack.get_modification(mod, random_state=3)
        expected = m.values(dense, mask, genes)
        np.testing.assert_array_equal(m.values(lazy, mask, genes), expected, err_msg=mod)
        np.testing.assert_array_equal(m.values(chunked, mask, genes), expected, err_msg=mod)


@pytest.mark.parametrize("name", ["random_forest", "sctype"])
def test_attacking_a_csr_anndata_matches_the_dense_attack(fitted, name):
    clfs, test = fitted
    clf = clfs[name]
    y = test.obs["cell_type"].astype(str).to_numpy()
    for mod in ("perc99", "decile+5"):
        sparse = plab.attack.single_gene_attack(clf, test, groupby="cell_type", target="B", modification=mod)
        dense = plab.attack.single_gene_attack(clf, clf.preprocess(test), y, "B", mod)
        assert sparse.table.equals(dense.table), mod
    mc = plab.attack.max_change_attack(clf, sparse_model_input(clf, test), y, "B", "perc1")
    mc_dense = plab.attack.max_change_attack(clf, clf.preprocess(test), y, "B", "perc1")
    assert mc.genes == mc_dense.genes
