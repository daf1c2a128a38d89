"""A tiny differentiable per-cell classifier with known answers, shared by the attack tests."""

from __future__ import annotations

import numpy as np

from perturblab.classifiers.base import CellTypeClassifier


class Lin(CellTypeClassifier):
    """Scores A = x0, B = x1 (raw scores, differentiable); genes g0, g1, g2 (g2 has no effect).

    ``threshold``: answer "Unknown" when the softmax probability of the best class is below it."""

    representation = "log1p"

    def __init__(self, threshold: float = 0.0):
        self.classes_ = np.array(["A", "B"], dtype=object)
        self.genes_ = np.array(["g0", "g1", "g2"])
        self.threshold = threshold

    def preprocess(self, adata):
        return adata

    def fit(self, adata, label_key):
        return self

    def predict_proba(self, X):
        S = np.asarray(X, dtype=np.float64)[:, :2]
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)

    def predict(self, X):
        P = self.predict_proba(X)
        out = self.classes_[P.argmax(axis=1)].astype(object)
        out[P.max(axis=1) < self.threshold] = self.unknown_label
        return out

    def torch_module(self):
        from perturblab.classifiers._torch import LinearScores

        return LinearScores([0, 1], np.eye(2))
