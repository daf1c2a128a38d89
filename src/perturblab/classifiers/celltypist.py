"""CellTypist (Dominguez Conde et al. 2022) trained and applied through the ``celltypist`` library."""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from ._preprocess import CLIP, log1p_matrix, model_input
from .base import CellTypeClassifier

__all__ = ["CellTypistClassifier"]


class CellTypistClassifier(CellTypeClassifier):
    """CellTypist logistic regression, trained with ``celltypist.train`` in SGD mode.

    Why SGD mode: celltypist 1.7.1's default path builds ``LogisticRegression(multi_class="ovr")``,
    an argument removed in scikit-learn 1.8, so it fails with the scikit-learn 1.9 we depend on;
    ``use_SGD=True`` trains an ``SGDClassifier(loss="log_loss")`` (one-vs-rest logistic regression)
    and works with any recent scikit-learn, which we prefer to pinning an old scikit-learn.

    Representation ``"log1p"`` (``normalize_total(1e4)`` + ``log1p``, as CellTypist requires).
    Prediction is CellTypist's own: the model's ``StandardScaler`` (fitted by ``celltypist.train``),
    values above 10 clipped (as ``celltypist.annotate``), then ``Model.predict_labels_and_prob``
    (decision function, sigmoid probabilities, "best match" label = argmax).

    AUROC uses :meth:`auroc_scores` (the decision scores), not the probabilities: SGD-trained
    CellTypist models have decision scores in the thousands (PBMC3k train half: intercepts
    -2,700 to -7,400), so the float64 sigmoid rounds 95% of the probabilities to exactly 0 or 1
    and the tied cells make a one-vs-rest AUROC meaningless (0.66 on the PBMC3k test half with
    the probabilities, 0.98 with the decision scores, whose per-class order is the same as the
    exact probabilities').

    Parameters
    ----------
    alpha
        L2 regularisation of the SGD classifier (CellTypist's default 1e-4).
    max_iter
        Passes over the data (``None``: CellTypist's default, 1000 below 50,000 cells).
    n_jobs
        Threads for the one-vs-rest fits (results do not depend on it).
    random_state
        Seed of the SGD classifier (``SGDClassifier(random_state=...)``).

    Attributes
    ----------
    model_
        The ``celltypist.models.Model``.
    used_genes_
        Indices into ``genes_`` of the model's features (genes expressed in the training data).
    """

    representation = "log1p"
    score_kind = "decision_function"

    def __init__(self, alpha: float = 1e-4, max_iter: int | None = None, n_jobs: int | None = None,
                 random_state: int = 0):
        self.alpha = alpha
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> log1p-normalised float32 matrix (cells x ``genes_``)."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> CellTypistClassifier:
        """Train with ``celltypist.train(use_SGD=True)`` on raw-count ``adata`` (labels in ``obs[label_key]``)."""
        import celltypist

        y = self._labels(adata, label_key)
        if len(np.unique(y)) < 2:
            raise InputError(f"need at least 2 cell types to train CellTypist, got {list(np.unique(y))}")
        X = log1p_matrix(adata)
        genes = np.asarray(adata.var_names.astype(str))
        # our normalisation is exact, but the genes passed may be a subset of those the library size
        # was computed on, so CellTypist's "sums to 1e4" check is skipped
        model = celltypist.train(X, labels=y, genes=genes, check_expression=False, use_SGD=True,
                                 alpha=self.alpha, max_iter=self.max_iter, n_jobs=self.n_jobs,
                                 random_state=self.random_state)
        pos = {g: i for i, g in enumerate(genes)}
        self.model_ = model
        self.genes_ = genes
        self.classes_ = np.asarray(model.classifier.classes_).astype(object)
        self.used_genes_ = np.array([pos[g] for g in model.classifier.features], dtype=np.int64)
        return self

    def _run(self, X: np.ndarray):
        X = self._check_input(X)
        scaler = self.model_.scaler
        Z = (X[:, self.used_genes_].astype(np.float64) - scaler.mean_) / scaler.scale_
        Z[Z > CLIP] = CLIP
        return self.model_.predict_labels_and_prob(Z)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """CellTypist decision scores (n_cells x n_classes)."""
        return self._run(X)[0]

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: CellTypist's decision scores (its label is their argmax)."""
        return np.asarray(self.decision_function(X), dtype=np.float64)

    def torch_module(self):
        """``torch.nn.Module``: log1p model input -> CellTypist decision scores (scaler, clip at 10, linear)."""
        from ._torch import StandardizedLinear

        self._check_fitted()
        sc, lin = self.model_.scaler, self.model_.classifier
        return StandardizedLinear(self.used_genes_, sc.mean_, sc.scale_, lin.coef_, lin.intercept_, clip=CLIP)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """CellTypist probabilities (sigmoid of each one-vs-rest decision score; rows do not sum to 1)."""
        return self._run(X)[1]

    def auroc_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores that rank cells per class for AUROC (n_cells x n_classes): the decision scores.

        A strictly increasing function of each :meth:`predict_proba` column that does not
        saturate (see the class docstring); used by
        :func:`~perturblab.classifiers.evaluation.evaluate_classifier`.
        """
        return self.decision_function(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """CellTypist's "best match" label (argmax of the decision scores)."""
        return np.asarray(self._run(X)[2]).astype(object)
