"""scType: hand-computed scores on a toy database, and the real PBMC3k test half."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from perturblab.classifiers import (
    PBMC3K_LABEL_MAP,
    ScTypeClassifier,
    evaluate_classifier,
)
from perturblab.classifiers.sctype import marker_sensitivity

TOY = {
    "positive": {"A": ["G1", "G2"], "B": ["G2", "G3"], "C": ["G2", "G3"], "D": ["G1", "G4"]},
    "negative": {"A": ["G3"], "B": [], "C": [], "D": []},
}


def toy_counts():
    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, size=(12, 3)).astype(np.float32)
    return _adata(X, ["g1", "G2", "G3"])


def _adata(X, genes):
    a = ad.AnnData(np.asarray(X, dtype=np.float32))
    a.var_names = genes
    return a


def test_marker_sensitivity_rescale():
    w = marker_sensitivity(TOY["positive"])  # 4 types: counts G1 2, G2 3, G3 2, G4 1
    assert w["G1"] == pytest.approx(2 / 3) and w["G2"] == pytest.approx(1 / 3)
    assert w["G3"] == pytest.approx(2 / 3) and w["G4"] == pytest.approx(1.0)
    assert marker_sensitivity({"A": ["X"]})["X"] == 0.5


def test_hand_computed_scores_and_scaling():
    adata = toy_counts()  # lower-case "g1" still matches G1 (case-insensitive, as sc-type)
    with pytest.warns(UserWarning, match="1 of 4 marker genes are absent"):
        clf = ScTypeClassifier(markers=TOY).fit(adata)
    assert list(clf.classes_) == ["A", "B", "C", "D"]
    assert sorted(clf.used_genes_) == [0, 1, 2]
    S = clf.decision_function(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))[0]
    # A = (2/3*z1 + 1/3*z2)/sqrt(2) - (2/3*z3)/1 ; B = C = (1/3*z2 + 2/3*z3)/sqrt(2) ; D = 2/3*z1 / 1
    expected = [(2 / 3 + 2 / 3) / np.sqrt(2) - 2.0, (2 / 3 + 2.0) / np.sqrt(2), (2 / 3 + 2.0) / np.sqrt(2), 2 / 3]
    np.testing.assert_allclose(S, expected, rtol=1e-6)
    # preprocess = log1p(normalize_total 1e4), z-scored with the training mean and sd (ddof=1)
    L = np.log1p(adata.X / adata.X.sum(1, keepdims=True) * 1e4)
    Z = (L - L.mean(0)) / L.std(0, ddof=1)
    np.testing.assert_allclose(clf.preprocess(adata), Z, rtol=1e-4, atol=1e-5)
    P = clf.predict_proba(clf.preprocess(adata))
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert (clf.classes_[P.argmax(1)] == clf.predict(clf.preprocess(adata))).all()


def test_native_cluster_call_unknown():
    with pytest.warns(UserWarning):
        clf = ScTypeClassifier(markers=TOY).fit(toy_counts())
    X = np.zeros((8, 3), dtype=np.float32)
    X[4:] = [1.0, 2.0, 3.0]
    clusters = np.array(["zero"] * 4 + ["hi"] * 4)
    label, sums = clf.sctype_cluster_call(X, clusters, "zero")
    assert label == "Unknown" and (sums == 0).all()  # summed score 0 < 4 cells / 4
    label, sums = clf.sctype_cluster_call(X, clusters, "hi")
    assert label == "B" and sums.iloc[0] == pytest.approx(4 * (2 / 3 + 2.0) / np.sqrt(2))


def test_no_marker_in_data_fails():
    with pytest.raises(ValueError, match="none of the 4 marker genes"):
        ScTypeClassifier(markers=TOY).fit(_adata(np.ones((3, 2)), ["X1", "X2"]))


@pytest.fixture(scope="module")
def sctype_pbmc(pbmc_train):
    with pytest.warns(UserWarning, match="marker genes are absent"):
        return ScTypeClassifier(label_map=PBMC3K_LABEL_MAP).fit(pbmc_train)


def test_pbmc3k_cluster_calls(sctype_pbmc, pbmc_test):
    X = sctype_pbmc.preprocess(pbmc_test)
    labels = pbmc_test.obs["cell_type"]
    assert sctype_pbmc.predict_cluster(X, labels, "NK").label == "Natural killer  cells"
    call = sctype_pbmc.predict_cluster(X, labels, "B")
    assert call.label == "Naive B cells" and call.score < 0.6  # a weak majority, as the anchor measured
    assert sctype_pbmc.predict_cluster(X, labels, "CD14+ Mono").label == "Classical Monocytes"
    assert sctype_pbmc.sctype_cluster_call(X, labels, "NK")[0] == "Natural killer  cells"


def test_pbmc3k_only_marker_genes_matter(sctype_pbmc, pbmc_test):
    X = sctype_pbmc.preprocess(pbmc_test[:50])
    assert len(sctype_pbmc.used_genes_) < 300
    other = np.setdiff1d(np.arange(X.shape[1]), sctype_pbmc.used_genes_)
    X2 = X.copy()
    X2[:, other] = 10.0
    np.testing.assert_array_equal(sctype_pbmc.decision_function(X), sctype_pbmc.decision_function(X2))


def test_pbmc3k_evaluation_uses_the_mapping(sctype_pbmc, pbmc_test):
    row = evaluate_classifier(sctype_pbmc, pbmc_test, "cell_type").iloc[0]
    assert row["n_auroc_labels"] == 9 and row["macro_auroc"] > 0.8
    assert 0.2 < row["accuracy"] < 0.9 and row["not_a_label"] > 0.1  # many unmapped ScTypeDB answers
