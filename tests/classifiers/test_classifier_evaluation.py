"""evaluate_classifier on a deterministic fake classifier with hand-computed metrics."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab.classifiers import CellTypeClassifier, evaluate_classifier
from perturblab.classifiers.evaluation import scores_by_label

P = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])


class Fixed(CellTypeClassifier):
    """Cell i gets the scores P[i]; classes a, b, c (c is not a dataset label)."""

    def preprocess(self, adata):
        return np.arange(adata.n_obs, dtype=np.float32)[:, None]

    def fit(self, adata, label_key):
        self.classes_, self.genes_ = np.array(["a", "b", "c"], dtype=object), np.array(["g"])
        return self

    def predict_proba(self, X):
        return P[self._check_input(X)[:, 0].astype(int)]


def _adata():
    a = ad.AnnData(np.ones((4, 1), np.float32), obs=pd.DataFrame({"y": ["a", "a", "b", "b"]}, index=list("wxyz")))
    a.var_names = ["g"]
    return a


def test_hand_computed_metrics():
    row = evaluate_classifier(Fixed().fit(None, "y"), _adata(), "y").iloc[0]
    # predictions a, b, b, c
    assert row["accuracy"] == pytest.approx(0.5)
    assert row["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2)  # F1(a) = 2/3, F1(b) = 1/2
    assert row["macro_auroc"] == pytest.approx((1.0 + 0.625) / 2)  # AUROC(b): (1 + 1 + 0.5 + 0) / 4
    assert row["not_a_label"] == pytest.approx(0.25) and row["n_auroc_labels"] == 2


def test_scores_summed_over_mapped_classes():
    class Mapped(Fixed):
        def map_labels(self, labels):
            return np.array([{"a": "x", "b": "x"}.get(v, v) for v in labels], dtype=object)

    clf = Mapped().fit(None, "y")
    s = scores_by_label(clf, P, ["x", "c", "zz"])
    assert list(s.columns) == ["c", "x"]  # "zz": no class maps to it
    np.testing.assert_allclose(s["x"], P[:, 0] + P[:, 1])
