"""Random forest, MLP, SVM and CellTypist on the real PBMC3k split (1,000 HVGs to stay fast)."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.classifiers import (
    CellTypistClassifier,
    MLPClassifier,
    RandomForestClassifier,
    SVMClassifier,
    get_classifier,
)
from perturblab.classifiers.random_forest import balanced_sample
from perturblab.classifiers.svm import wilcoxon_z

from .conftest import major_type_accuracy


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The test machine's 2 cores are shared: one torch thread avoids oversubscription."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


FAST = {
    "random_forest": lambda: RandomForestClassifier(n_estimators=100, random_state=0),
    "mlp": lambda: MLPClassifier(epochs=10, random_state=0, device="cpu"),
    "svm": lambda: SVMClassifier(random_state=0),
    "celltypist": lambda: CellTypistClassifier(max_iter=30, random_state=0),
}


@pytest.fixture(scope="module")
def fitted(pbmc_small):
    train, _ = pbmc_small
    return {name: make().fit(train, "cell_type") for name, make in FAST.items()}


@pytest.mark.parametrize("name", list(FAST))
def test_accuracy_on_pbmc3k_test_half(fitted, pbmc_small, name):
    clf = fitted[name]
    _, test = pbmc_small
    X = clf.preprocess(test)
    assert X.shape == (test.n_obs, len(clf.genes_)) and X.dtype == np.float32
    pred = clf.predict(X)
    assert major_type_accuracy(test.obs["cell_type"], pred) > 0.8
    P = clf.predict_proba(X)
    assert P.shape == (test.n_obs, len(clf.classes_))
    assert list(clf.classes_) == sorted(clf.classes_)
    call = clf.predict_cluster(X, test.obs["cell_type"], "B")
    assert call.label == "B" and call.score > 0.8 and call.n_cells == (test.obs["cell_type"] == "B").sum()


@pytest.mark.parametrize("name", list(FAST))
def test_same_seed_same_numbers(fitted, pbmc_small, name):
    train, test = pbmc_small
    sub = train[:400].copy()
    a, b = FAST[name]().fit(sub, "cell_type"), FAST[name]().fit(sub, "cell_type")
    X = a.preprocess(test[:50])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_random_forest_used_genes_are_the_split_genes(fitted, pbmc_small):
    rf = fitted["random_forest"]
    _, test = pbmc_small
    X = rf.preprocess(test[:100])
    unused = np.setdiff1d(np.arange(X.shape[1]), rf.used_genes_)
    assert unused.size > 0
    X2 = X.copy()
    X2[:, unused] = 50.0  # genes never used in a split cannot change the output
    np.testing.assert_array_equal(rf.predict_proba(X), rf.predict_proba(X2))


def test_balanced_sample_with_and_without_replacement():
    labels = np.array(["a"] * 5 + ["b"] * 200)
    idx = balanced_sample(labels, 100, random_state=1)
    assert (labels[idx] == "a").sum() == 100 and (labels[idx] == "b").sum() == 100
    assert len(set(idx[labels[idx] == "b"])) == 100  # enough cells: no repeats
    assert set(idx[labels[idx] == "a"]) <= set(range(5))  # too few: drawn with replacement
    np.testing.assert_array_equal(idx, balanced_sample(labels, 100, random_state=1))


def test_mlp_rank_one_first_layer(fitted, pbmc_small):
    mlp = fitted["mlp"]
    _, test = pbmc_small
    X = mlp.preprocess(test[:30])
    H = mlp.hidden1(X)
    np.testing.assert_allclose(H, X @ mlp.first_layer_weight_.T + mlp.first_layer_bias_, rtol=1e-4, atol=1e-4)
    j, delta = 7, 2.5
    X2 = X.copy()
    X2[:, j] += delta
    np.testing.assert_allclose(mlp.from_hidden1(H + delta * mlp.first_layer_weight_[:, j]), mlp.predict_proba(X2),
                               atol=1e-5)
    np.testing.assert_allclose(mlp.predict_proba(X).sum(axis=1), 1.0, atol=1e-5)


def test_svm_markers_and_threshold(fitted, pbmc_small):
    svm = fitted["svm"]
    _, test = pbmc_small
    assert all(1 <= len(m) <= 20 for m in svm.markers_.values())
    assert {"MS4A1", "CD79A", "CD79B", "TCL1A"} & set(svm.markers_["B"])  # known B-cell markers
    X = svm.preprocess(test)
    P = svm.predict_proba(X)
    pred = svm.predict(X)
    low = P.max(axis=1) < 0.5
    assert (pred[low] == "Unknown").all() and (pred[~low] != "Unknown").all()


def test_wilcoxon_z_matches_scipy():
    from scipy.stats import mannwhitneyu, norm

    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(40, 6)).astype(float)  # many ties
    g = np.zeros((40, 1), bool)
    g[:15, 0] = True
    z = wilcoxon_z(X, g)[0]
    p = mannwhitneyu(X[:15], X[15:], axis=0, method="asymptotic", use_continuity=False).pvalue
    np.testing.assert_allclose(2 * norm.sf(np.abs(z)), p, rtol=1e-8)


def test_celltypist_uses_library_prediction(fitted, pbmc_small):
    ct = fitted["celltypist"]
    _, test = pbmc_small
    X = ct.preprocess(test[:40])
    P, D = ct.predict_proba(X), ct.decision_function(X)
    np.testing.assert_allclose(P, 1 / (1 + np.exp(-D)))
    np.testing.assert_array_equal(ct.predict(X), ct.classes_[D.argmax(axis=1)])


def test_registry():
    assert isinstance(get_classifier("random_forest", n_estimators=3), RandomForestClassifier)
    with pytest.raises(ValueError, match="unknown classifier"):
        get_classifier("xgboost")
