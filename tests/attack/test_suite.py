"""Max-change, CGD, grid, random walk, overview and signature genes."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.attack import (
    MClassifier,
    apply_modification,
    cgd_attack,
    distant_pairs,
    grid_attack,
    max_change_attack,
    max_change_overview,
    random_walk_attack,
    signature_genes,
    single_gene_overview,
)
from perturblab.classifiers.base import CellTypeClassifier


def test_max_change_keeps_label_and_is_seeded(loom_short):
    X, cl, genes = loom_short
    clf = MClassifier(genes)
    r = max_change_attack(clf, X, cl, "NK", "perc99", gene_names=genes, random_state=3)
    assert r.check_label == r.baseline_label == "NK" and 150 < len(r.genes) < 200
    idx = [list(genes).index(g) for g in r.genes]
    assert clf(apply_modification(X, cl, "NK", idx, "perc99"), cl, "NK").prediction == "NK"
    again = max_change_attack(clf, X, cl, "NK", "perc99", gene_names=genes, random_state=3)
    assert again.genes == r.genes and again.n_classifier_calls == r.n_classifier_calls
    assert not {"GZMK", "LST1", "CD74", "CCR7"} & set(r.genes) or r.check_label == "NK"
    with pytest.raises(ValueError, match="max_split_size"):
        max_change_attack(clf, X, cl, "NK", gene_names=genes, max_split_size=0)


def test_max_change_on_sctype_real_data(sctype_test):
    clf, X, cl = sctype_test
    r = max_change_attack(clf, X, cl, "NK", "perc99", max_split_size=100, random_state=0)
    assert r.check_label == r.baseline_label and len(r.genes) > 10_000
    assert r.n_classifier_calls < 1000


class Linear2(CellTypeClassifier):
    """Scores A = x0, B = x1 (softmax); per-cell."""

    def __init__(self):
        self.classes_ = np.array(["A", "B"], dtype=object)
        self.genes_ = np.array(["g0", "g1"])

    def preprocess(self, adata):
        return adata

    def fit(self, adata, label_key):
        return self

    def predict_proba(self, X):
        S = np.asarray(X, float)
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)


def test_cgd_known_answer_on_a_linear_classifier():
    X = np.array([[2, 1], [2, 1], [0, 5]], dtype=np.float32)
    cl = np.array(["t", "t", "o"])
    r = cgd_attack(Linear2(), X, cl, "t", ["g0", "g1"], new_target="B", alpha=1, epsilon=0)
    # probe g0: 2 -> 4 raises A: slope < 0 -> opposite step (1 - 1*sign(2))*2 - 0 = 0 -> B wins
    assert r.modified_genes == ["g0"] and r.switched and r.new_target == "B" and r.original_label == "A"
    np.testing.assert_array_equal(r.X[:2, 0], [0, 0])
    np.testing.assert_array_equal(r.X[2], X[2])
    assert r.n_classifier_calls == 3  # baseline, probe, commit
    assert r.by_gene["frac_new_target"].tolist() == [0.0, 1.0]
    # epsilon: the probe step of x=0 is +eps, the opposite -eps (same rule, no sign bug)
    X2 = np.array([[0, 0.5], [0, 0.5], [9, 9]], dtype=np.float32)
    r2 = cgd_attack(Linear2(), X2, cl, "t", ["g0", "g1"], new_target="A", alpha=0.5, epsilon=1)
    np.testing.assert_allclose(r2.X[:2, 0], [1, 1])
    assert r2.switched and r2.modified_genes == ["g0"]
    with pytest.raises(ValueError, match="unknown new target"):
        cgd_attack(Linear2(), X, cl, "t", ["g0"], new_target="Z")
    with pytest.raises(ValueError, match="gene"):
        cgd_attack(Linear2(), X, cl, "t", ["nope"])


class RowRounding(CellTypeClassifier):
    """Scores A = x0, B = x1, C = x2, B rounded by 1e-7 x the number of rows scored together (as a BLAS product
    may round differently with its shape)."""

    def __init__(self):
        self.classes_ = np.array(["A", "B", "C"], dtype=object)
        self.genes_ = np.array(["g0", "g1", "g2"])

    def preprocess(self, adata):
        return adata

    def fit(self, adata, label_key):
        return self

    def class_scores(self, X):
        return np.asarray(X, float) + np.array([0.0, 1e-7 * len(X), 0.0])

    def predict_proba(self, X):
        S = self.class_scores(X)
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)


def test_cgd_ignores_rounding_that_depends_on_the_rows_scored():
    # g1 (B's gene) moves cell 0 to B; cells 1 and 2 stay A, so g2 is probed on 2 of the 3 cells. g2 weighs only
    # on C: its slope is 0 (hand answer), not the 1e-7 x (2 - 3) of comparing a 2-row with a 3-row call
    X = np.array([[5, 4.5, 1], [5, 0.5, 1], [5, 0.5, 1], [0, 0, 9]], dtype=np.float64)
    cl = np.array(["t", "t", "t", "o"])
    r = cgd_attack(RowRounding(), X, cl, "t", ["g1", "g2"], new_target="B", alpha=0.5, epsilon=0)
    assert r.modified_genes == ["g1"] and not r.switched
    np.testing.assert_array_equal(r.X[:, 2], X[:, 2])
    assert r.by_gene["n_cells_modified"].tolist() == [0, 3, 0]


def test_cgd_sctype_switches_nk(sctype_test):
    clf, X, cl = sctype_test
    order = np.asarray(clf.genes_)[np.asarray(clf.used_genes_)]
    r = cgd_attack(clf, X, cl, "NK", order, alpha=1, epsilon=1)
    assert r.switched and r.n_classifier_calls <= 1 + 2 * len(order)
    assert r.summary["n_genes_modified"].iloc[0] == len(r.modified_genes)


def _grid_data():
    X = np.zeros((6, 3), dtype=np.float32)
    X[:2] = 5  # target cells
    X[2:4] = 0
    X[4:] = 10
    return X, np.array(["t", "t", "o", "o", "o", "o"]), ["c", "a", "b"]


def grid_clf(X, clusters, target):
    m = np.asarray(clusters) == target
    c, a, b = X[m][:, :3].mean(axis=0)
    return ("hit", 1.0) if (a < 1 and b < 1) or c > 8 else ("orig", 1.0)


def test_grid_returns_minimal_not_first_lexicographic():
    X, cl, names = _grid_data()
    r = grid_attack(grid_clf, X, cl, "t", names, gene_names=names)
    # lexicographic first hit is (c: none, a: perc1, b: perc1); the minimal one is c: perc99 alone
    assert r.min_genes == 1 and r.table[["c", "a", "b"]].values.tolist() == [["perc99", "", ""]]
    # flipping: c=perc99 (9) + a=b=perc1 with c none or perc1 (2)
    assert r.n_combinations == 27 and r.n_classifier_calls == 27 and r.n_flipping == 9 + 2
    with pytest.raises(ValueError, match="exceed max_combinations"):
        grid_attack(grid_clf, X, cl, "t", names, gene_names=names, max_combinations=10)


def test_random_walk_is_seeded_and_flips():
    X, cl, names = _grid_data()
    X = np.hstack([X, np.tile(X[:, :1] * 0 + 3, (1, 5))])  # 5 irrelevant genes
    names = names + [f"z{i}" for i in range(5)]
    r = random_walk_attack(grid_clf, X, cl, "t", gene_names=names, first_batch=20, walk_length=30, random_state=1)
    r2 = random_walk_attack(grid_clf, X, cl, "t", gene_names=names, first_batch=20, walk_length=30, random_state=1)
    assert r.genes == r2.genes and r.modifications == r2.modifications and r.history == r2.history
    assert r.new_label == "hit" and r.history == sorted(r.history, reverse=True)
    Xm = X.copy()
    for g, m in zip(r.genes, r.modifications):
        Xm = apply_modification(Xm, cl, "t", [names.index(g)], m)
    assert grid_clf(Xm, cl, "t")[0] == "hit"
    assert len(r.genes) <= 2


def test_overviews(loom_short):
    X, cl, genes = loom_short
    clf = MClassifier(genes)
    sg = single_gene_overview(clf, X, cl, targets=["NK", "B"], gene_names=genes)
    assert sg.shape[0] == 4 and set(sg["target"]) == {"NK", "B"}
    nk = sg[(sg.target == "NK") & (sg.modification == "perc1")].iloc[0]
    assert nk["n_hits"] == 1 and nk["genes"] == "GZMB"
    mc = max_change_overview(clf, X, cl, modifications=("perc99",), targets=["NK"], gene_names=genes)
    assert mc["n_genes_modifiable"].iloc[0] == 0  # both 100-gene halves hold a flipping gene: dropped unsplit
    mc = max_change_overview(clf, X, cl, modifications=("perc99",), targets=["NK"], gene_names=genes,
                             max_split_size=1)
    assert mc["n_genes_modifiable"].iloc[0] > 150 and (mc["check_label"] == mc["baseline_label"]).all()


def test_signature_genes():
    assert distant_pairs(["A", "B", "C", "D"]) == [
        ("A", "B"), ("C", "D"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D")]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    cl = np.array(["x"] * 20 + ["y"] * 20)
    X[:20, 2] += 5  # gene 2 separates x from y
    X[:, 3] = 1.0  # constant: the anchor's +0.01 tweak keeps the test defined
    for method in ("wilcox", "ttest"):
        s = signature_genes(X, cl, ["g0", "g1", "g2", "g3"], method=method)
        assert s["gene"].iloc[0] == "g2" and sorted(s["gene"]) == ["g0", "g1", "g2", "g3"]
        assert s["rank"].tolist() == [1, 2, 3, 4] and (s["pair"] == "x___y").all()
    with pytest.raises(ValueError, match="method"):
        signature_genes(X, cl, ["g0", "g1", "g2", "g3"], method="anova")
