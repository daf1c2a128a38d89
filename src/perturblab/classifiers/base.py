"""The common protocol of perturblab's cell-type classifiers (scikit-learn style).

Contract (every classifier in this package follows it):

- ``representation``: the input representation the model works on, one of
  ``"counts"`` (raw UMI counts), ``"log1p"`` (``normalize_total(1e4)`` + ``log1p``)
  or ``"scaled"`` (log1p then z-scored per gene, clipped at 10).
- ``preprocess(adata)``: turns an AnnData of **raw counts** (cells x genes) into
  the dense float32 model-input matrix (cells x ``genes_``) in that representation.
  Attacks modify this matrix (the model input, as adverSCarial does); the
  "raw-count" attack realism option modifies counts and re-runs ``preprocess``.
- ``fit(adata, label_key)``: ``adata.X`` holds raw counts; labels in ``adata.obs[label_key]``.
  Sets ``classes_`` (sorted labels) and ``genes_`` (the genes of the model input, in order).
- ``predict_proba(X)``: ``X`` is the model-input matrix (n_cells x n_genes_) ->
  (n_cells, n_classes) scores in ``classes_`` order.
- ``predict(X)``: per-cell labels (may include ``unknown_label`` when the
  classifier abstains, e.g. scType's "Unknown" or CHETAH's intermediate nodes).
- ``predict_cluster(X, clusters, target)``: adverSCarial's cluster-level call:
  the majority vote of per-cell predictions over the cells of ``target``, and a score.
- ``per_cell = True``: a cell's prediction depends on that cell's row alone, so
  attacks only re-score the modified cells.
- ``used_genes_``: indices (into ``genes_``) of the genes that can influence the
  output (``None`` = all). Attacks skip other genes as proven no-ops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._validation import check_finite, check_labels
from ..exceptions import InputError, NotFittedError, UnknownNameError

__all__ = ["CellTypeClassifier", "ClusterCall", "NotFittedError"]


@dataclass(frozen=True)
class ClusterCall:
    """Result of :meth:`CellTypeClassifier.predict_cluster`.

    ``label`` is the majority per-cell label (ties: the first in sorted order),
    ``score`` the fraction of the cluster's cells carrying that label (in [0, 1]),
    ``n_cells`` the cluster size.
    """

    label: str
    score: float
    n_cells: int


class CellTypeClassifier(ABC):
    """Abstract base class; see the module docstring for the contract."""

    representation: ClassVar[str] = "log1p"
    per_cell: ClassVar[bool] = True
    unknown_label: ClassVar[str] = "Unknown"

    classes_: np.ndarray
    genes_: np.ndarray
    used_genes_: np.ndarray | None = None

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> dense float32 model input (cells x ``genes_``)."""

    @abstractmethod
    def fit(self, adata, label_key: str) -> CellTypeClassifier:
        """Train on raw-count ``adata`` with labels in ``adata.obs[label_key]``."""

    @abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Model input (n_cells x n_genes_) -> scores (n_cells x n_classes)."""

    # -- shared behaviour ---------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Per-cell labels: ``classes_[argmax(predict_proba(X))]``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_cluster(self, X: np.ndarray, clusters, target: str) -> ClusterCall:
        """adverSCarial's cluster call: majority vote over the cells of cluster ``target``.

        Raises
        ------
        UnknownNameError
            If ``target`` is not among ``clusters`` (empty cluster).
        """
        clusters = np.asarray(clusters).astype(str)
        mask = clusters == str(target)
        if not mask.any():
            raise UnknownNameError("cluster", target, set(clusters))
        labels = self.predict(np.asarray(X)[mask])
        return majority_vote(labels)

    def map_labels(self, labels) -> np.ndarray:
        """Classifier labels -> dataset labels (identity; scType maps ScTypeDB names via ``label_map``).

        Used to score predictions against a dataset's annotation; labels without a mapping are
        returned unchanged (and count as errors when they are not dataset labels).
        """
        return np.asarray(labels).astype(object)

    # -- helpers for implementations ----------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(adata, label_key) first")

    def _check_input(self, X) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.genes_):
            raise InputError(
                f"X must be cells x genes with {len(self.genes_)} columns in genes_ order "
                f"(the output of preprocess); got shape {X.shape}"
            )
        check_finite(X)
        return X

    @staticmethod
    def _labels(adata, label_key: str) -> np.ndarray:
        return check_labels(adata, label_key, "label")


def majority_vote(labels) -> ClusterCall:
    """Majority label of ``labels`` and its fraction (ties broken by sorted label order)."""
    labels = np.asarray(labels).astype(str)
    counts = Counter(labels)
    top = max(sorted(counts), key=lambda k: counts[k])
    return ClusterCall(label=top, score=counts[top] / len(labels), n_cells=len(labels))
