"""Random-forest cell-type classifier (adverSCarial's scRF)."""

from __future__ import annotations

import numpy as np

from ._preprocess import log1p_matrix, model_input
from .base import CellTypeClassifier

__all__ = ["RandomForestClassifier", "balanced_sample"]


def balanced_sample(labels, n_per_class: int, random_state: int = 0) -> np.ndarray:
    """Indices of ``n_per_class`` cells per label, drawn without replacement, or with replacement
    for a label with fewer cells (seeded; labels in sorted order)."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(random_state)
    picks = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        picks.append(rng.choice(idx, size=n_per_class, replace=len(idx) < n_per_class))
    return np.concatenate(picks)


class RandomForestClassifier(CellTypeClassifier):
    """Random forest on log1p-normalised expression (scikit-learn), as adverSCarial's scRF.

    Training set: ``n_per_class`` cells per cell type (100 by default), sampled without
    replacement, or with replacement when a type has fewer cells (seeded by ``random_state``);
    then ``sklearn.ensemble.RandomForestClassifier(n_estimators=500)`` with its own bootstrap.

    Parameters
    ----------
    n_estimators
        Number of trees (500 as in the paper).
    n_per_class
        Balanced cells per cell type (100 as in the paper).
    n_jobs
        Threads for training and prediction (scikit-learn ``n_jobs``); results do not depend on it.
    random_state
        Seed of the balanced sampling and of the forest.

    Attributes
    ----------
    model_
        The fitted ``sklearn.ensemble.RandomForestClassifier``.
    used_genes_
        Indices into ``genes_`` of the genes used in at least one split (all other genes
        cannot change the output).
    """

    representation = "log1p"

    def __init__(self, n_estimators: int = 500, n_per_class: int = 100, n_jobs: int | None = None,
                 random_state: int = 0):
        self.n_estimators = n_estimators
        self.n_per_class = n_per_class
        self.n_jobs = n_jobs
        self.random_state = random_state

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> log1p-normalised float32 matrix (cells x ``genes_``)."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> RandomForestClassifier:
        """Train on raw-count ``adata`` (cells x genes) with labels in ``adata.obs[label_key]``."""
        from sklearn.ensemble import RandomForestClassifier as _RF

        y = self._labels(adata, label_key)
        X = log1p_matrix(adata)
        idx = balanced_sample(y, self.n_per_class, self.random_state)
        model = _RF(n_estimators=self.n_estimators, n_jobs=self.n_jobs, random_state=self.random_state)
        model.fit(X[idx], y[idx])
        self.model_ = model
        self.genes_ = np.asarray(adata.var_names.astype(str))
        self.classes_ = model.classes_.astype(object)
        feats = np.concatenate([t.tree_.feature for t in model.estimators_])
        self.used_genes_ = np.unique(feats[feats >= 0])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Forest class probabilities (mean of the trees' leaf frequencies), ``classes_`` order."""
        X = self._check_input(X)
        return self.model_.predict_proba(X)
