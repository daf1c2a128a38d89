"""Adversarial attacks on cell-type classifiers (a Python successor to adverSCarial).

An attack modifies the model-input matrix of a classifier (cells x genes) in the
cells of one target cluster and watches the cluster's label. Classifiers are
either per-cell objects of :mod:`perturblab.classifiers` or adverSCarial-style
cluster-level callables ``f(X, clusters, target) -> (label, score)`` such as
:class:`MClassifier`. Every result reports how many classifier calls it took.
"""

from ._engine import AttackTarget
from .budget import Budget, gene_bounds, rank_genes
from .cgd import CGDResult, cgd_attack, label_distribution
from .grid import GridResult, grid_attack
from .max_change import MaxChangeResult, max_change_attack
from .mclassifier import MClassifier, MClassifierCall
from .modifications import Modification, apply_modification, get_modification
from .overview import max_change_overview, single_gene_overview
from .random_walk import RandomWalkResult, random_walk_attack
from .signature import distant_pairs, signature_genes
from .single_gene import SingleGeneResult, single_gene_attack

#: Loaded on first use (they import torch and the adversarial-robustness-toolbox).
_LAZY = {"WhiteBoxResult": "whitebox", "budget_curve": "whitebox", "whitebox_attack": "whitebox"}

__all__ = [
    "AttackTarget",
    "Budget",
    "CGDResult",
    "GridResult",
    "MClassifier",
    "MClassifierCall",
    "MaxChangeResult",
    "Modification",
    "RandomWalkResult",
    "SingleGeneResult",
    "WhiteBoxResult",
    "apply_modification",
    "budget_curve",
    "cgd_attack",
    "distant_pairs",
    "gene_bounds",
    "get_modification",
    "grid_attack",
    "label_distribution",
    "max_change_attack",
    "max_change_overview",
    "random_walk_attack",
    "rank_genes",
    "signature_genes",
    "single_gene_attack",
    "single_gene_overview",
    "whitebox_attack",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
