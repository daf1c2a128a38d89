"""CGD fidelity: native class scores, the majority stop rule, label distributions, the anchor's 4 genes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from perturblab.attack import cgd_attack, signature_genes
from perturblab.attack.cgd import label_distribution
from perturblab.classifiers.base import CellTypeClassifier


class Linear3(CellTypeClassifier):
    """Raw scores A = x0, B = x1, C = x2 (class_scores); predict_proba = softmax."""

    score_kind = "raw_score"

    def __init__(self):
        self.classes_ = np.array(["A", "B", "C"], dtype=object)
        self.genes_ = np.array(["g0", "g1", "g2"])

    def preprocess(self, adata):
        return adata

    def fit(self, adata, label_key):
        return self

    def class_scores(self, X):
        return np.asarray(X, dtype=np.float64)

    def predict_proba(self, X):
        S = self.class_scores(X)
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)


def test_native_scores_see_what_a_saturated_softmax_hides():
    # A = 30 dominates: probing g1 (B's raw score) by +1 raises B by 1; the softmax moves B by ~e^-28
    X = np.array([[30, 1, 0], [30, 1, 0], [0, 0, 9]], dtype=np.float32)
    cl = np.array(["t", "t", "o"])
    nat = cgd_attack(Linear3(), X, cl, "t", ["g1"], new_target="B", alpha=0, epsilon=1)
    assert nat.score_kind == "raw_score" and nat.by_gene["n_cells_modified"].tolist() == [0, 2]
    # when A is far ahead the float64 softmax of B does not move at all: no slope, no commit
    far = np.array([[800, 1, 0], [800, 1, 0], [0, 0, 9]], dtype=np.float32)
    prob = cgd_attack(Linear3(), far, cl, "t", ["g1"], new_target="B", alpha=0, epsilon=1, scores="proba")
    assert prob.score_kind == "proba" and prob.modified_genes == []
    nat = cgd_attack(Linear3(), far, cl, "t", ["g1"], new_target="B", alpha=0, epsilon=1)
    assert nat.modified_genes == ["g1"]


def test_majority_stop_rule_and_label_distribution():
    # cluster of 4 cells, all A (x0 = 2). new_target B. Gene g2 (C's score) moves cells to C only:
    # after g2 the majority is C: the "majority" rule stops, the "target" rule does not (B has 0 cells)
    X = np.array([[2, 0, 1.5]] * 4 + [[0, 0, 0]], dtype=np.float32)
    cl = np.array(["t"] * 4 + ["o"])

    class Cross(Linear3):  # raising g2 raises C and also B a little (so the slope to B is > 0)
        def class_scores(self, X):
            X = np.asarray(X, dtype=np.float64)
            return np.column_stack([X[:, 0], X[:, 1] + 0.1 * X[:, 2], X[:, 2]])

    maj = cgd_attack(Cross(), X, cl, "t", ["g2", "g1"], new_target="B", alpha=0, epsilon=1)
    assert maj.switched and maj.flipped and maj.new_label == "C" and maj.modified_genes == ["g2"]
    d = maj.label_distribution.set_index("label")
    assert d.loc["A", "n_before"] == 4 and d.loc["A", "n_after"] == 0 and d.loc["C", "n_after"] == 4
    assert maj.summary.loc[0, "new_label"] == "C" and maj.summary.loc[0, "n_anchor_calls"] == 3
    tgt = cgd_attack(Cross(), X, cl, "t", ["g2", "g1"], new_target="B", alpha=0, epsilon=1, stop_rule="target")
    # the target rule misses the flip to C: it goes on with g1 (B = 1.25 < C = 2.5) and ends "not switched"
    assert tgt.modified_genes == ["g2", "g1"] and tgt.n_anchor_calls == 5
    assert not tgt.switched and tgt.flipped and tgt.new_label == "C"
    with pytest.raises(ValueError, match="stop_rule"):
        cgd_attack(Cross(), X, cl, "t", ["g2"], stop_rule="sometimes")


def test_label_distribution_counts_and_abstentions():
    class Abst(Linear3):
        unknown_label = "Unknown"

    d = label_distribution(["A", "A", "B"], ["Unknown", "A", "Node2"], Abst()).set_index("label")
    assert d["n_before"].to_dict() == {"A": 2, "B": 1, "Node2": 0, "Unknown": 0}
    assert d.loc["Unknown", "abstention"] and d.loc["Node2", "abstention"] and not d.loc["A", "abstention"]
    np.testing.assert_allclose(d.loc["A", ["frac_before", "frac_after"]].to_numpy(float), [2 / 3, 1 / 3])


@pytest.fixture(scope="module")
def anchor_input(pbmc_split):
    """The anchor's CGD input: the PBMC3k test half in barcode order, log-normalised and z-scored
    with its own statistics (R's ``scale``, no clipping), as adverSCarial's vignette feeds scType."""
    import perturblab as plab
    from perturblab.classifiers._preprocess import log1p_matrix
    from perturblab.classifiers.sctype import ScTypeClassifier

    train, test = pbmc_split
    barcodes = {b: i for i, b in enumerate(plab.datasets.pbmc3k().obs_names)}
    test = test[np.argsort([barcodes[b] for b in test.obs_names])]
    L = log1p_matrix(test).astype(np.float64)
    sd = L.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    Z = ((L - L.mean(axis=0)) / sd).astype(np.float32)
    clusters = test.obs["cell_type"].astype(str).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = ScTypeClassifier().fit(train)
    genes = signature_genes(Z, clusters, np.asarray(test.var_names))["gene"].to_numpy()[:500]
    return clf, Z, clusters, genes


def test_cgd_reproduces_the_anchor_on_sctype_nk(anchor_input):
    clf, Z, clusters, genes = anchor_input
    r = cgd_attack(clf, Z, clusters, "NK", genes, alpha=1, epsilon=1)
    # adverSCarial 1.3.13: "switched after NKG7, FCGR3A, GZMB, GZMA", 36 classifier calls
    assert r.modified_genes == ["NKG7", "FCGR3A", "GZMB", "GZMA"]
    assert r.n_anchor_calls == 36 and r.summary.loc[0, "n_genes_visited"] == 31
    assert r.switched and r.flipped and r.original_label == "Natural killer  cells"
    assert r.new_label == "ISG expressing immune cells" and r.score_kind == "raw_score"
    d = r.label_distribution.set_index("label")
    assert d["n_before"].sum() == d["n_after"].sum() == (clusters == "NK").sum()
    assert d.loc["Natural killer  cells", "n_before"] > d.loc["Natural killer  cells", "n_after"]
    # the anchor's target drift gives the same genes here
    drift = cgd_attack(clf, Z, clusters, "NK", genes, alpha=1, epsilon=1, retarget=True)
    assert drift.modified_genes == r.modified_genes
    # the old scoring (softmax probabilities, "target" stop rule) is what the issue reported: many more genes
    old = cgd_attack(clf, Z, clusters, "NK", genes, alpha=1, epsilon=1, scores="proba", stop_rule="target")
    assert len(old.modified_genes) > 10


def test_cgd_uses_a_wrapped_classifiers_native_scores():
    class Wrapper:  # the audit's raw-count model: predict / predict_proba through model_input
        per_cell = True
        used_genes_ = None

        def __init__(self, inner):
            self.classifier, self.classes_, self.genes_ = inner, inner.classes_, inner.genes_

        def model_input(self, M):
            return np.asarray(M, dtype=np.float32) * 2.0

        def predict(self, M):
            return self.classifier.predict(self.model_input(M))

        def predict_proba(self, M):
            return self.classifier.predict_proba(self.model_input(M))

    far = np.array([[400, 0.5, 0], [400, 0.5, 0], [0, 0, 9]], dtype=np.float32)
    cl = np.array(["t", "t", "o"])
    r = cgd_attack(Wrapper(Linear3()), far, cl, "t", ["g1"], new_target="B", alpha=0, epsilon=1)
    # native raw scores through model_input (x2): B rises by 2 per probe; the softmax would not move at 800
    assert r.score_kind == "raw_score" and r.modified_genes == ["g1"]
