"""Cell-type classifiers under a common protocol (see :mod:`perturblab.classifiers.base`).

Six classifiers of the adverSCarial paper and CellTypist, one module each, plus
:func:`get_classifier` / :func:`fit_classifier` (by name; :func:`register_classifier` adds names),
:func:`wrap` (your own fitted scikit-learn estimator, torch module or function) and
:func:`evaluate_classifier` (accuracy, macro-F1, AUROC).
"""

from __future__ import annotations

from .base import (
    CellTypeClassifier,
    ClusterCall,
    DifferentiableClassifier,
    NotFittedError,
    is_abstention,
    is_differentiable,
    majority_vote,
)
from .celltypist import CellTypistClassifier
from .chetah import ChetahClassifier
from .evaluation import evaluate_classifier
from .label_maps import (
    label_map_coverage,
    read_label_map,
    sctype_label_map,
    unmapped_fraction,
)
from .mlp import MLPClassifier
from .random_forest import RandomForestClassifier
from .registry import (
    BUILTIN_CLASSIFIERS,
    CLASSIFIERS,
    fit_classifier,
    get_classifier,
    make_classifier,
    register_classifier,
)
from .sctype import PBMC3K_BROAD_LABEL_MAP, PBMC3K_LABEL_MAP, ScTypeClassifier
from .svm import SVMClassifier
from .wrap import CallableClassifier, SklearnClassifier, TorchClassifier, as_classifier, wrap

__all__ = [
    "BUILTIN_CLASSIFIERS",
    "CLASSIFIERS",
    "PBMC3K_BROAD_LABEL_MAP",
    "PBMC3K_LABEL_MAP",
    "CallableClassifier",
    "CellTypeClassifier",
    "CellTypistClassifier",
    "ChetahClassifier",
    "ClusterCall",
    "DifferentiableClassifier",
    "MLPClassifier",
    "NotFittedError",
    "RandomForestClassifier",
    "SVMClassifier",
    "ScTypeClassifier",
    "SklearnClassifier",
    "TorchClassifier",
    "as_classifier",
    "evaluate_classifier",
    "fit_classifier",
    "get_classifier",
    "is_abstention",
    "is_differentiable",
    "label_map_coverage",
    "majority_vote",
    "make_classifier",
    "read_label_map",
    "register_classifier",
    "sctype_label_map",
    "torch_preprocess",
    "unmapped_fraction",
    "wrap",
]


def __getattr__(name: str):
    if name == "torch_preprocess":  # imports torch: loaded on first use
        from ._torch import torch_preprocess

        return torch_preprocess
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
