"""Interpretability of single-cell foundation models: what does attention encode? (Kendiukhov 2026).

Part A: gene-token model adapters (Geneformer, scGPT, perturblab's own), streamed attention extraction, head
ablation, masked-expression training. Part B: the analyses (reference recovery, perturbation-first evaluation,
gene-level baselines, incremental value, confounds and nulls, CSSI), the planted-GRN simulator, the statistics
registry and verdict, and :func:`run_interpretation`, which runs them all (``perturblab interpret``).
Part C (issue 14, one module each, catalogued in :mod:`~perturblab.interpret.catalogue`): value-weighted
edges, propensity matching, split designs, TF stratification, TRRUST circularity, per-TF CIs and recovery
decomposition, the HVG-protocol confound and the sensitivity scan, layer profiles, partial correlation,
attention-co-expression map, gene-set references, CSSI scaling / strata scan / edge FDR, embedding and SAE
edges, in-silico perturbation; figures in :mod:`perturblab.interpret.pl`. :func:`run_interpretation` runs the
selected ones (``InterpretConfig.analyses``, ``perturblab interpret --analysis NAME``) as stored stages
(:mod:`~perturblab.interpret.analyses`); :meth:`InterpretResult.to_adata` writes the results into an AnnData.
"""

from __future__ import annotations

# --- part C: issue-14 analyses (modules; the entry points are also exported by name) ---
from . import (
    analyses,
    catalogue,
    circularity,
    coexpression,
    cssi_scan,
    decomposition,
    edge_sources,
    embedding_edges,
    gene_sets,
    in_silico,
    matching,
    partial,
    pl,
    profiles,
    registry_rows,
    sae,
    sensitivity,
    splits,
    stratify,
    value_edges,
)

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
from .catalogue import ANALYSES, AnalysisSpec
from .circularity import direction_recovery, sign_agreement
from .coexpression import attention_coexpression
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
from .cssi_scan import cssi_edge_fdr, scaling_curve, scaling_test, strata_scan
from .decomposition import per_tf_recovery, recovery_decomposition
from .edge_sources import evaluate_edge_sources
from .edges import (
    EdgeScores,
    attention_scores,
    correlation_scores,
    edge_table,
    log_normalise,
    spearman_matrix,
)
from .embedding_edges import embedding_similarity_scores, gene_embeddings
from .extraction import (
    LayerAttention,
    cell_embeddings,
    extract_attention,
    iter_layer_attention,
)
from .gene_sets import gene_set_recovery, gene_set_references
from .in_silico import in_silico_perturbation, score_in_silico
from .incremental import build_pairs, incremental_value
from .matching import matched_recovery
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
from .partial import partial_correlation
from .perturbation import TargetLabels, compare_scores, de_targets, perturbation_auroc
from .pipeline import InterpretConfig, InterpretResult, run_interpretation
from .profiles import layer_profiles, profile_references
from .references import (
    Reference,
    candidate_edges,
    load_reference,
    load_tf_list,
    reference_recovery,
)
from .registry_rows import add_rows
from .sae import train_sae
from .selection import LayerSelection, nested_cv_selection, prespecified_score
from .sensitivity import hvg_protocol, sensitivity_scan
from .simulate import SimulatedGRN, simulate_grn, simulate_screen
from .splits import split_design
from .stats import Registry, Verdict, retained_fraction, verdict
from .stratify import tf_stratification
from .training import TrainingResult, train_masked_expression
from .value_edges import iter_value_edges, value_edge_scores

__all__ = [
    "ANALYSES",
    "AblationEffects",
    "AblationResult",
    "AnalysisSpec",
    "EdgeScores",
    "GeneMatch",
    "GeneTokenModel",
    "GeneformerModel",
    "InterpretConfig",
    "InterpretResult",
    "LayerAttention",
    "LayerSelection",
    "OwnGeneTransformer",
    "Reference",
    "Registry",
    "ScGPTModel",
    "SimulatedGRN",
    "TargetLabels",
    "TokenBatch",
    "TrainingResult",
    "Verdict",
    "ablation_effects",
    "ablation_experiment",
    "add_rows",
    "attention_coexpression",
    "attention_scores",
    "auprc",
    "auroc",
    "baseline_scores",
    "build_pairs",
    "candidate_edges",
    "analyses",
    "catalogue",
    "cell_embeddings",
    "circularity",
    "coexpression",
    "compare_scores",
    "confound_r2",
    "correlation_scores",
    "cssi_aggregate",
    "cssi_edge_fdr",
    "cssi_null_stress",
    "cssi_scan",
    "cssi_scores",
    "curveball",
    "de_targets",
    "decomposition",
    "degree_preserving_null",
    "direction_recovery",
    "early_precision_ratio",
    "edge_sources",
    "edge_table",
    "embedding_edges",
    "embedding_similarity_scores",
    "entropy_matched_heads",
    "evaluate_edge_sources",
    "extract_attention",
    "fidelity",
    "gene_embeddings",
    "gene_features",
    "gene_set_recovery",
    "gene_set_references",
    "gene_sets",
    "hvg_protocol",
    "in_silico",
    "in_silico_perturbation",
    "incremental_value",
    "iter_layer_attention",
    "iter_value_edges",
    "label_shuffle_null",
    "layer_profiles",
    "leiden_strata",
    "load_model",
    "load_reference",
    "load_tf_list",
    "log_normalise",
    "matched_recovery",
    "matching",
    "nested_cv_selection",
    "partial",
    "partial_correlation",
    "per_tf_recovery",
    "perturbation_auroc",
    "pl",
    "prespecified_score",
    "profile_references",
    "profiles",
    "rank_heads",
    "ranking_metrics",
    "recovery_decomposition",
    "reference_recovery",
    "registry_rows",
    "residualise",
    "retained_fraction",
    "run_interpretation",
    "sae",
    "scaling_curve",
    "scaling_test",
    "score_in_silico",
    "sensitivity",
    "sensitivity_scan",
    "sign_agreement",
    "simulate_grn",
    "simulate_screen",
    "spearman_matrix",
    "split_design",
    "splits",
    "strata_scan",
    "stratified_matrices",
    "stratify",
    "tf_out_degree",
    "tf_stratification",
    "topk_f1",
    "train_masked_expression",
    "train_sae",
    "uniform_attention",
    "value_edge_scores",
    "value_edges",
    "verdict",
    "zero_heads",
    "zero_layer_attention",
    "zero_mlp",
]
