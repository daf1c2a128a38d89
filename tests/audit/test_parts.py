"""The audit's building blocks on small known cases and on the real PBMC3k split."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.audit import stratified_split
from perturblab.audit.detectability import Embedding, perturbation_size
from perturblab.audit.robustness import attacked_metrics
from perturblab.audit.units import ROW_BUDGETS, choose_mode


def test_stratified_split(pbmc3k, pbmc_halves):
    train, test = pbmc_halves
    assert "UNDETERMINED" not in set(train.obs["cell_type"]) | set(test.obs["cell_type"])
    assert train.n_obs + test.n_obs == 2638 and abs(train.n_obs - test.n_obs) <= 1
    a = train.obs["cell_type"].value_counts()
    b = test.obs["cell_type"].value_counts()
    assert ((a - b).abs() <= 1).all()  # every cell type split in half
    kept = np.asarray((pbmc3k[pbmc3k.obs["cell_type"] != "UNDETERMINED"].X > 0).sum(axis=0)).ravel() >= 3
    assert list(test.var_names) == list(pbmc3k.var_names[kept])
    again = stratified_split(pbmc3k, "cell_type", random_state=0)[1]
    assert list(again.obs_names) == list(test.obs_names)
    other = stratified_split(pbmc3k, "cell_type", random_state=1)[1]
    assert list(other.obs_names) != list(test.obs_names)
    with pytest.raises(KeyError, match="label column 'celltype'"):
        stratified_split(pbmc3k, "celltype")


def test_choose_mode():
    from perturblab.classifiers import ChetahClassifier, MLPClassifier, ScTypeClassifier, SVMClassifier

    svm, mlp = ROW_BUDGETS["SVMClassifier"], ROW_BUDGETS["MLPClassifier"]
    assert choose_mode(ScTypeClassifier(), 10**6, 10**4) == "exhaustive"
    assert choose_mode(SVMClassifier(), 100, svm // 100) == "exhaustive"
    assert choose_mode(SVMClassifier(), 100, svm // 100 + 1) == "dichotomic"
    assert choose_mode(MLPClassifier(), 1000, mlp // 1000) == "exhaustive"
    assert choose_mode(MLPClassifier(), 1000, mlp // 1000 + 1) == "dichotomic"
    chetah = ROW_BUDGETS["ChetahClassifier"]  # its exact fast path: every PBMC3k cluster is searched exhaustively
    assert choose_mode(ChetahClassifier(), 931, 374) == "exhaustive"
    assert choose_mode(ChetahClassifier(), 1000, chetah // 1000 + 1) == "dichotomic"
    assert choose_mode(ChetahClassifier(), 1000, chetah, "dichotomic") == "dichotomic"


def test_perturbation_size_hand_computed():
    before = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0]])
    after = np.array([[1.0, 5.0, 0.0], [3.0, 4.0, 1.0]])  # gene 1: +3 and +4
    s = perturbation_size(before, after)
    assert s == {"n_genes_modified": 1, "n_cells_modified": 2, "l1_per_cell": 3.5, "l2_per_cell": 3.5,
                 "frac_expression": 7.0 / 7.0}
    assert perturbation_size(before, before)["n_cells_modified"] == 0


def test_embedding_shift_known_case():
    rng = np.random.default_rng(0)
    A = rng.normal(0, 0.1, (30, 4)) + np.array([0, 0, 0, 0])
    B = rng.normal(0, 0.1, (30, 4)) + np.array([5, 0, 0, 0])
    X = np.vstack([A, B]).astype(np.float32)
    y = np.array(["a"] * 30 + ["b"] * 30)
    emb = Embedding(X, y, n_pcs=2)
    same = emb.shift(A, A, "a")
    assert same["pca_shift"] == pytest.approx(0, abs=1e-9) and same["frac_left_cluster"] == 0
    moved = emb.shift(A, A + np.array([5, 0, 0, 0]), "a")  # every cell of a moved onto b
    assert moved["pca_shift"] == pytest.approx(5, rel=1e-3)
    assert moved["frac_left_cluster"] == 1.0
    coords = emb.coordinates(A, A)
    assert set(coords["state"]) == {"before", "after"} and len(coords) == 60


class _Threshold:
    """Known-answer classifier: label "hi" when gene 0 > 0, else "lo"; score = sigmoid-like."""

    classes_ = np.array(["hi", "lo"], dtype=object)
    genes_ = np.array(["g0", "g1"])

    def predict_proba(self, X):
        p = (np.asarray(X)[:, 0] > 0).astype(float)
        return np.column_stack([p, 1 - p])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def map_labels(self, labels):
        return np.asarray(labels).astype(object)


def test_attacked_metrics_hand_computed():
    X = np.array([[1, 0], [1, 0], [-1, 0], [1, 0]], dtype=np.float32)
    y = np.array(["hi", "hi", "lo", "lo"])  # last cell misclassified
    m = attacked_metrics(_Threshold(), X, y).set_index("scope")
    assert m.loc["overall", "accuracy"] == 0.75
    assert m.loc["hi", "accuracy"] == 1.0 and m.loc["lo", "accuracy"] == 0.5
    # F1(hi) = 2*1*(2/3)/(1+2/3) = 0.8; F1(lo) = 2*1*0.5/1.5 = 2/3
    assert m.loc["hi", "f1"] == pytest.approx(0.8) and m.loc["lo", "f1"] == pytest.approx(2 / 3)
    assert m.loc["overall", "f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m.loc["hi", "auroc"] == pytest.approx(0.75)  # scores 1,1 for hi vs 0,1 for lo


def test_raw_counts_model_matches_preprocess(pbmc_halves):
    from perturblab.audit.space import RawCountsModel
    from perturblab.classifiers import fit_classifier

    train, test = pbmc_halves
    clf, _ = fit_classifier("sctype", train, "cell_type")
    sub = test[:50]
    C = sub.X.toarray().astype(np.float32)
    model = RawCountsModel(clf, test.var_names)
    np.testing.assert_array_equal(model.predict(C), clf.predict(clf.preprocess(sub)))
    assert model.per_cell and model.used_genes_ is None
    with pytest.raises(ValueError, match="cells x"):
        model.predict(C[:, :10])
