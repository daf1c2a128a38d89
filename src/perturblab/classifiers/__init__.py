"""Cell-type classifiers under a common protocol (see :mod:`perturblab.classifiers.base`).

Six classifiers of the adverSCarial paper and CellTypist, one module each, plus
:func:`get_classifier` / :func:`fit_classifier` (by name) and :func:`evaluate_classifier`
(accuracy, macro-F1, AUROC).
"""

from __future__ import annotations

from .base import CellTypeClassifier, ClusterCall, NotFittedError, majority_vote
from .celltypist import CellTypistClassifier
from .chetah import ChetahClassifier
from .evaluation import evaluate_classifier
from .mlp import MLPClassifier
from .random_forest import RandomForestClassifier
from .registry import CLASSIFIERS, fit_classifier, get_classifier
from .sctype import PBMC3K_LABEL_MAP, ScTypeClassifier
from .svm import SVMClassifier

__all__ = [
    "CLASSIFIERS",
    "CellTypeClassifier",
    "CellTypistClassifier",
    "ChetahClassifier",
    "ClusterCall",
    "MLPClassifier",
    "NotFittedError",
    "PBMC3K_LABEL_MAP",
    "RandomForestClassifier",
    "SVMClassifier",
    "ScTypeClassifier",
    "evaluate_classifier",
    "fit_classifier",
    "get_classifier",
    "majority_vote",
]
