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
- ``predict_proba(X)``: ``X`` is the model-input matrix (n_cells x ``len(genes_)``) ->
  (n_cells, n_classes) scores in ``classes_`` order.
- ``predict(X)``: per-cell labels (may include ``unknown_label`` when the
  classifier abstains, e.g. scType's "Unknown" or CHETAH's intermediate nodes).
- ``class_scores(X)``: the classifier's **native** per-cell class scores (n_cells x
  n_classes, ``classes_`` order), the quantity its per-cell label is the argmax of, on
  its natural unnormalised scale; ``score_kind`` names it (``"raw_score"``: scType's
  cell-type scores; ``"logit"``: the MLP's pre-softmax outputs; ``"decision_function"``:
  CellTypist's decision scores; ``"proba"``: the random forest's tree-vote fractions;
  ``"confidence"``: CHETAH's path confidence; ``"log_proba"``: the default, the log of
  ``predict_proba``). Gradient-like attacks (CGD) difference these scores: a softmax
  would squash them (its derivative vanishes where one class dominates).
- ``predict_cluster(X, clusters, target)``: adverSCarial's cluster-level call:
  the majority vote of per-cell predictions over the cells of ``target``, and a score.
- ``per_cell = True``: a cell's prediction depends on that cell's row alone, so
  attacks only re-score the modified cells.
- ``used_genes_``: indices (into ``genes_``) of the genes that can influence the
  output (``None`` = all). Attacks skip other genes as proven no-ops.

Differentiable classifiers (:class:`DifferentiableClassifier`) also expose
``torch_module()``: a ``torch.nn.Module`` mapping the model input (float32 tensor,
cells x ``genes_``) to class scores whose argmax is the per-cell label (logits), in
``classes_`` order. White-box attacks (:mod:`perturblab.attack.whitebox`) differentiate it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from .._validation import check_finite, check_labels
from ..exceptions import InputError, NotFittedError, UnknownNameError

__all__ = ["CellTypeClassifier", "ClusterCall", "DifferentiableClassifier", "NotFittedError", "is_abstention",
           "is_differentiable", "majority_vote"]

#: Answers that are abstentions for every classifier ("not applicable", missing).
NA_LABELS = frozenset({"NA", "nan", "None", ""})


@runtime_checkable
class DifferentiableClassifier(Protocol):
    """A classifier whose class scores are a differentiable torch function of its model input.

    ``torch_module()`` returns a ``torch.nn.Module`` in evaluation mode mapping a float32 tensor
    (cells x ``genes_``, the output of ``preprocess``) to class scores (cells x ``classes_``) whose
    per-cell argmax is the classifier's label before any abstention rule (logits for a network,
    scType's raw scores, CellTypist's decision scores). ``representation`` says which space the
    model input lives in (``"log1p"``, ``"scaled"``), so that attacks on raw counts can run the
    classifier's own preprocessing differentiably (:func:`perturblab.classifiers.torch_preprocess`).
    """

    classes_: np.ndarray
    genes_: np.ndarray
    representation: str

    def torch_module(self): ...


def is_differentiable(classifier) -> bool:
    """True when ``classifier`` follows :class:`DifferentiableClassifier` (has a callable ``torch_module``)."""
    return callable(getattr(classifier, "torch_module", None))


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
    #: What :meth:`class_scores` returns (see the module docstring).
    score_kind: ClassVar[str] = "log_proba"
    #: ``preprocess`` is perturblab's standard one (:func:`perturblab.classifiers._preprocess.model_input`:
    #: log1p of ``genes_``, then fit-time scaling for ``"scaled"``), so attacks on a sparse AnnData may keep it
    #: sparse (:mod:`perturblab.attack._sparse`).
    standard_preprocess: ClassVar[bool] = False

    classes_: np.ndarray
    genes_: np.ndarray
    used_genes_: np.ndarray | None = None
    checksum_: str  # sha256 of the file it was loaded from (load_classifier_file)

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> dense float32 model input (cells x ``genes_``)."""

    @abstractmethod
    def fit(self, adata, label_key: str) -> CellTypeClassifier:
        """Train on raw-count ``adata`` with labels in ``adata.obs[label_key]``."""

    @abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Model input (n_cells x ``len(genes_)``) -> scores (n_cells x n_classes)."""

    # -- shared behaviour ---------------------------------------------------------------
    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native per-cell class scores (n_cells x n_classes, ``classes_`` order); see ``score_kind``.

        Default: ``log(predict_proba(X))`` (log-probabilities, floored at 1e-300). For a softmax
        model the log-probabilities differ from the logits by a per-cell constant, so score
        *differences* between classes (what CGD uses) equal the logits'. Subclasses with a more
        natural scale override this (scType: raw scores; CellTypist: decision scores; MLP: logits;
        random forest: tree-vote fractions; CHETAH: path confidence).
        """
        P = np.asarray(self.predict_proba(X), dtype=np.float64)
        return np.log(np.clip(P, 1e-300, None))

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
        """The training labels; also warns when ``adata.X`` does not look like the raw counts ``fit`` expects
        (:func:`perturblab._validation.warn_representation`: non-integer or negative values, row sums)."""
        from .._validation import warn_representation

        warn_representation(adata.X, "counts", "adata.X (training data)")
        return check_labels(adata, label_key, "label")


def is_abstention(classifier, labels) -> np.ndarray:
    """Boolean mask of the answers in ``labels`` that are abstentions of ``classifier``.

    An answer abstains when it is the classifier's ``unknown_label`` ("Unknown"), a missing-value
    spelling ("NA", "nan", "None", ""), or, for a classifier with ``classes_``, any answer that is
    not one of its classes (CHETAH's "Unassigned" root and "Node<k>" intermediate nodes).
    """
    labels = np.asarray(labels).astype(str)
    unknown = getattr(classifier, "unknown_label", None)
    out = np.isin(labels, list(NA_LABELS | ({str(unknown)} if unknown is not None else set())))
    classes = getattr(classifier, "classes_", None)
    if classes is not None:
        out |= ~np.isin(labels, np.asarray(classes).astype(str))
    return out


def majority_vote(labels) -> ClusterCall:
    """Majority label of ``labels`` and its fraction (ties broken by sorted label order)."""
    labels = np.asarray(labels).astype(str)
    counts = Counter(labels)
    top = max(sorted(counts), key=lambda k: counts[k])
    return ClusterCall(label=str(top), score=counts[top] / len(labels), n_cells=len(labels))
