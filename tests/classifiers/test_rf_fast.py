"""Classifier performance paths: the vectorised random forest (FlatForest) against scikit-learn,
MLP training threads, and CellTypist's AUROC scores."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.classifiers import (
    CellTypistClassifier,
    MLPClassifier,
    RandomForestClassifier,
    evaluate_classifier,
)
from perturblab.classifiers.random_forest import FlatForest, _round_down_float32


@pytest.fixture(scope="module")
def rf(pbmc_small):
    train, _ = pbmc_small
    return RandomForestClassifier(n_estimators=60, random_state=0).fit(train, "cell_type")


def test_flat_forest_equals_sklearn_on_pbmc3k(rf, pbmc_small):
    _, test = pbmc_small
    X = rf.preprocess(test)
    F = rf.flat_forest_
    np.testing.assert_allclose(rf.predict_proba(X), rf.model_.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rf.predict(X), rf.model_.predict(X))
    np.testing.assert_array_equal(F.apply(X) - F.roots[:, None], rf.model_.apply(X).T)
    assert F.n_trees == 60 and F.max_depth == max(t.tree_.max_depth for t in rf.model_.estimators_)
    np.testing.assert_array_equal(rf.used_genes_, F.used_features)


def test_flat_forest_threshold_semantics_on_float32_inputs(rf, pbmc_small):
    """Inputs exactly at, just above and just below the float32 rounding of each root threshold:
    the same ``X32 <= threshold`` decisions as scikit-learn."""
    _, test = pbmc_small
    base = rf.preprocess(test[:1])[0]
    rows = []
    for est in rf.model_.estimators_[:20]:
        f, thr = est.tree_.feature[0], est.tree_.threshold[0]
        t32 = np.float32(thr)
        for v in (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))):
            row = base.copy()
            row[f] = v
            rows.append(row)
    X = np.array(rows, dtype=np.float32)
    np.testing.assert_array_equal(rf.flat_forest_.apply(X) - rf.flat_forest_.roots[:, None], rf.model_.apply(X).T)
    np.testing.assert_allclose(rf.predict_proba(X), rf.model_.predict_proba(X), rtol=0, atol=1e-12)
    X64 = X.astype(np.float64) + 1e-9  # float64 input is cast to float32 first, as scikit-learn does
    np.testing.assert_allclose(rf.predict_proba(X64), rf.model_.predict_proba(X64), rtol=0, atol=1e-12)


def test_round_down_float32_hand_values():
    thr = np.array([0.1, 0.5, 1.5, 2.0 ** -30 * 3 + 1e-20, 1e40])
    t = _round_down_float32(thr)
    assert t.dtype == np.float32
    assert t[0] == np.nextafter(np.float32(0.1), np.float32(0))  # float32(0.1) > 0.1: one step down
    assert t[1] == np.float32(0.5) and t[2] == np.float32(1.5)  # exact
    assert t[3] == np.float32(2.0 ** -30 * 3)  # just above a float32: rounds down to it
    assert t[4] == np.finfo(np.float32).max
    assert (t.astype(np.float64) <= thr).all()


def test_single_tree_hand_computed():
    """One stump on x = 0, 1, 2, 3 with labels a, a, b, b: threshold 1.5, '<=' goes left."""
    from sklearn.ensemble import RandomForestClassifier as SkRF

    model = SkRF(n_estimators=1, bootstrap=False, random_state=0).fit(np.arange(4.0)[:, None], list("aabb"))
    F = FlatForest.from_sklearn(model)
    X = np.array([[1.5], [np.nextafter(np.float32(1.5), np.float32(2))], [-7.0], [9.0]], dtype=np.float32)
    np.testing.assert_array_equal(F.predict_proba(X), [[1, 0], [0, 1], [1, 0], [0, 1]])
    assert F.max_depth == 1 and F.n_trees == 1


def test_flat_forest_built_lazily_and_checks_input(rf, pbmc_small):
    _, test = pbmc_small
    X = rf.preprocess(test[:20])
    expected = rf.predict_proba(X)
    clone = RandomForestClassifier(n_estimators=60)
    clone.__dict__.update({k: v for k, v in rf.__dict__.items() if k != "_flat"})  # e.g. an older pickle
    np.testing.assert_array_equal(clone.predict_proba(X), expected)
    with pytest.raises(ValueError, match="columns"):
        rf.predict_proba(X[:, :10])
    with pytest.raises(ValueError, match="features"):
        rf.flat_forest_.predict_proba(X[:, :10])


def test_flat_forest_rejects_multi_output():
    from sklearn.ensemble import RandomForestClassifier as SkRF

    X = np.arange(8.0)[:, None]
    model = SkRF(n_estimators=2, random_state=0).fit(X, np.stack([X[:, 0] > 3, X[:, 0] > 5], axis=1))
    with pytest.raises(ValueError, match="single-output"):
        FlatForest.from_sklearn(model)


def test_flat_forest_chunks_large_inputs(rf, pbmc_small, monkeypatch):
    import perturblab.classifiers.random_forest as mod

    _, test = pbmc_small
    X = rf.preprocess(test[:50])
    expected = rf.predict_proba(X)
    monkeypatch.setattr(mod, "_PAIRS_PER_CHUNK", 7 * 60)  # 7 cells per chunk
    np.testing.assert_array_equal(rf.predict_proba(X), expected)


def test_mlp_trains_with_bounded_threads(pbmc_small):
    import torch

    train, _ = pbmc_small
    sub = train[:200].copy()
    before = torch.get_num_threads()
    try:
        weights = []
        for caller_threads in (2, 1):
            torch.set_num_threads(caller_threads)
            clf = MLPClassifier(epochs=1, random_state=3, device="cpu").fit(sub, "cell_type")
            assert torch.get_num_threads() == caller_threads  # restored after fit
            weights.append(clf.first_layer_weight_)
        np.testing.assert_array_equal(weights[0], weights[1])  # same seed, same numbers, any caller setting
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="n_threads"):
        MLPClassifier(n_threads=0).fit(sub, "cell_type")


def test_celltypist_auroc_uses_decision_scores(pbmc_small):
    from sklearn.metrics import roc_auc_score

    train, test = pbmc_small
    clf = CellTypistClassifier(max_iter=20, random_state=0).fit(train[:600].copy(), "cell_type")
    X = clf.preprocess(test)
    D = clf.auroc_scores(X)
    np.testing.assert_array_equal(D, clf.decision_function(X))
    # the probabilities are a per-class increasing function of the decision scores
    P = clf.predict_proba(X)
    for j in range(D.shape[1]):
        o = np.argsort(D[:, j], kind="stable")
        assert (np.diff(P[o, j]) >= 0).all()
    y = test.obs["cell_type"].astype(str).to_numpy()
    expected = np.mean([roc_auc_score(y == c, D[:, j]) for j, c in enumerate(clf.classes_)
                        if 0 < (y == c).sum() < len(y)])
    row = evaluate_classifier(clf, test, "cell_type").iloc[0]
    assert row["macro_auroc"] == pytest.approx(expected, abs=1e-12)


def test_leaf_cache_is_exact_under_in_place_changes(rf, pbmc_small):
    """CGD-like call sequence: one gene of some cells changes between calls, shapes alternate,
    and the caller mutates its own array in place; every answer equals scikit-learn's."""
    _, test = pbmc_small
    X = rf.preprocess(test[:80])
    rng = np.random.default_rng(0)
    rf._leaf_cache = []
    genes = rng.choice(rf.used_genes_, 12, replace=False)
    for step, g in enumerate(genes):
        rows = rng.choice(80, 30, replace=False)
        X[rows, g] = X[rows, g] * 2 + 1  # in place: the cache must hold its own copy
        sub = X if step % 2 else X[rows]
        np.testing.assert_allclose(rf.predict_proba(sub), rf.model_.predict_proba(sub), rtol=0, atol=1e-12)
    assert 1 <= len(rf._leaf_cache) <= rf.leaf_cache_size
    np.testing.assert_allclose(rf.predict_proba(X), rf.model_.predict_proba(X), rtol=0, atol=1e-12)


def test_reapply_descends_only_trees_using_changed_genes(rf, pbmc_small):
    _, test = pbmc_small
    F = rf.flat_forest_
    X = rf.preprocess(test[:40])
    leaves = F.apply(X)
    assert F.reapply(X.copy(), X, leaves) is leaves  # nothing changed
    g = int(rf.used_genes_[0])
    X2 = X.copy()
    X2[:5, g] += 3.0
    got = F.reapply(X2, X, leaves)
    np.testing.assert_array_equal(got, F.apply(X2))
    users = F.tree_features[:, 0]
    np.testing.assert_array_equal(got[~users], leaves[~users])  # other trees keep their cached leaves
    unused = np.setdiff1d(np.arange(X.shape[1]), rf.used_genes_)[0]
    X3 = X.copy()
    X3[:, unused] = 99.0
    assert F.reapply(X3, X, leaves) is leaves
    X4 = X + 1.0  # everything changed: a full evaluation
    np.testing.assert_array_equal(F.reapply(X4, X, leaves), F.apply(X4))
    with pytest.raises(ValueError, match="do not match"):
        F.reapply(X[:3], X, leaves)


def test_pickle_drops_the_leaf_cache(rf, pbmc_small):
    import pickle

    _, test = pbmc_small
    X = rf.preprocess(test[:10])
    expected = rf.predict_proba(X)
    assert rf._leaf_cache
    clone = pickle.loads(pickle.dumps(rf))
    assert not hasattr(clone, "_leaf_cache")
    np.testing.assert_array_equal(clone.predict_proba(X), expected)
