"""Interpretability of single-cell foundation models: what does attention encode? (Kendiukhov 2026).

Part A: gene-token model adapters (Geneformer, scGPT, perturblab's own), streamed attention extraction, head
ablation, masked-expression training. Part B: the analyses (reference recovery, perturbation-first evaluation,
gene-level baselines, incremental value, confounds and nulls, CSSI), the planted-GRN simulator, the statistics
registry and verdict, and :func:`run_interpretation`, which runs them all (``perturblab interpret``).
"""

from __future__ import annotations

# --- part A: adapters, attention extraction, ablation, training ---
from .ablation import (
    AblationEffects,
    AblationResult,
    ablation_effects,
    ablation_experiment,
    entropy_matched_heads,
    fidelity,
    rank_heads,
    uniform_attention,
    zero_heads,
    zero_layer_attention,
    zero_mlp,
)

# --- part B: analyses, simulator, statistics registry, pipeline ---
from .baselines import baseline_scores, gene_features, tf_out_degree
from .confounds import (
    confound_r2,
    curveball,
    degree_preserving_null,
    label_shuffle_null,
    residualise,
)
from .cssi import (
    cssi_aggregate,
    cssi_null_stress,
    cssi_scores,
    leiden_strata,
    stratified_matrices,
)
from .edges import (
    EdgeScores,
    attention_scores,
    correlation_scores,
    edge_table,
    log_normalise,
    spearman_matrix,
)
from .extraction import (
    LayerAttention,
    cell_embeddings,
    extract_attention,
    iter_layer_attention,
)
from .incremental import build_pairs, incremental_value
from .metrics import auprc, auroc, early_precision_ratio, ranking_metrics, topk_f1
from .models import (
    GeneformerModel,
    GeneMatch,
    GeneTokenModel,
    OwnGeneTransformer,
    ScGPTModel,
    TokenBatch,
    load_model,
)
from .perturbation import TargetLabels, compare_scores, de_targets, perturbation_auroc
from .pipeline import InterpretConfig, InterpretResult, run_interpretation
from .references import (
    Reference,
    candidate_edges,
    load_reference,
    load_tf_list,
    reference_recovery,
)
from .selection import LayerSelection, nested_cv_selection, prespecified_score
from .simulate import SimulatedGRN, simulate_grn, simulate_screen
from .stats import Registry, Verdict, retained_fraction, verdict
from .training import TrainingResult, train_masked_expression

__all__ = [
    "ablation_effects",
    "ablation_experiment",
    "AblationEffects",
    "AblationResult",
    "attention_scores",
    "auprc",
    "auroc",
    "baseline_scores",
    "build_pairs",
    "candidate_edges",
    "cell_embeddings",
    "compare_scores",
    "confound_r2",
    "correlation_scores",
    "cssi_aggregate",
    "cssi_null_stress",
    "cssi_scores",
    "curveball",
    "de_targets",
    "degree_preserving_null",
    "early_precision_ratio",
    "edge_table",
    "EdgeScores",
    "entropy_matched_heads",
    "extract_attention",
    "fidelity",
    "gene_features",
    "GeneformerModel",
    "GeneMatch",
    "GeneTokenModel",
    "incremental_value",
    "InterpretConfig",
    "InterpretResult",
    "iter_layer_attention",
    "label_shuffle_null",
    "LayerAttention",
    "LayerSelection",
    "leiden_strata",
    "load_model",
    "load_reference",
    "load_tf_list",
    "log_normalise",
    "nested_cv_selection",
    "OwnGeneTransformer",
    "perturbation_auroc",
    "prespecified_score",
    "rank_heads",
    "ranking_metrics",
    "Reference",
    "reference_recovery",
    "Registry",
    "residualise",
    "retained_fraction",
    "run_interpretation",
    "ScGPTModel",
    "simulate_grn",
    "simulate_screen",
    "SimulatedGRN",
    "spearman_matrix",
    "stratified_matrices",
    "TargetLabels",
    "tf_out_degree",
    "TokenBatch",
    "topk_f1",
    "train_masked_expression",
    "TrainingResult",
    "uniform_attention",
    "verdict",
    "Verdict",
    "zero_heads",
    "zero_layer_attention",
    "zero_mlp",
]
