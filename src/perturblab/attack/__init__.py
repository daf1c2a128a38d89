"""Adversarial attacks on cell-type classifiers (a Python successor to adverSCarial).

An attack modifies the model-input matrix of a classifier (cells x genes) in the
cells of one target cluster and watches the cluster's label. Classifiers are
either per-cell objects of :mod:`perturblab.classifiers` or adverSCarial-style
cluster-level callables ``f(X, clusters, target) -> (label, score)`` such as
:class:`MClassifier`. Every result reports how many classifier calls it took.

Beyond adverSCarial: white-box FGSM / PGD under biological budgets for differentiable classifiers
(:mod:`~perturblab.attack.whitebox`, :mod:`~perturblab.attack.budget`), which attack needs the fewest
genes (:mod:`~perturblab.attack.compare`), the response to modification strength
(:mod:`~perturblab.attack.strength`), the flip taxonomy (:mod:`~perturblab.attack.taxonomy`),
abstention outcomes (:mod:`~perturblab.attack.abstention`), training-label noise
(:mod:`~perturblab.attack.label_noise`) and the wing's plots (:mod:`perturblab.attack.pl`).
"""

from . import pl
from ._engine import AttackTarget
from .abstention import abstention_table, probability_margin
from .budget import Budget, gene_bounds, rank_genes
from .cgd import CGDResult, cgd_attack, label_distribution
from .compare import fewest_genes
from .grid import GridResult, grid_attack
from .label_noise import (
    LabelNoiseResult,
    celltype_similarity,
    corrupt_labels,
    label_noise_sweep,
)
from .max_change import MaxChangeResult, max_change_attack
from .mclassifier import MClassifier, MClassifierCall
from .modifications import Modification, apply_modification, get_modification
from .overview import max_change_overview, single_gene_overview
from .random_walk import RandomWalkResult, random_walk_attack
from .signature import distant_pairs, signature_genes
from .single_gene import SingleGeneResult, single_gene_attack
from .strength import STRENGTH_LADDER, single_gene_cell_labels, strength_response
from .taxonomy import FLIP_CATEGORIES, flip_taxonomy, taxonomy_counts

#: Loaded on first use (they import torch and the adversarial-robustness-toolbox).
_LAZY = {"WhiteBoxResult": "whitebox", "budget_curve": "whitebox", "whitebox_attack": "whitebox"}

__all__ = [
    "FLIP_CATEGORIES",
    "STRENGTH_LADDER",
    "AttackTarget",
    "Budget",
    "CGDResult",
    "GridResult",
    "LabelNoiseResult",
    "MClassifier",
    "MClassifierCall",
    "MaxChangeResult",
    "Modification",
    "RandomWalkResult",
    "SingleGeneResult",
    "WhiteBoxResult",
    "abstention_table",
    "apply_modification",
    "budget_curve",
    "celltype_similarity",
    "cgd_attack",
    "corrupt_labels",
    "distant_pairs",
    "fewest_genes",
    "flip_taxonomy",
    "gene_bounds",
    "get_modification",
    "grid_attack",
    "label_distribution",
    "label_noise_sweep",
    "max_change_attack",
    "max_change_overview",
    "pl",
    "probability_margin",
    "random_walk_attack",
    "rank_genes",
    "signature_genes",
    "single_gene_attack",
    "single_gene_cell_labels",
    "single_gene_overview",
    "strength_response",
    "taxonomy_counts",
    "whitebox_attack",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
