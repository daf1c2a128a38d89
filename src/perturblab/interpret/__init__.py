"""Interpretability of single-cell foundation models: what does attention encode? (Kendiukhov 2026)."""

# --- part A: adapters, attention extraction, ablation, training ---
from .ablation import ablation_experiment, fidelity, uniform_attention, zero_heads, zero_layer_attention, zero_mlp
from .extraction import LayerAttention, cell_embeddings, extract_attention, iter_layer_attention
from .models import GeneformerModel, GeneMatch, GeneTokenModel, OwnGeneTransformer, ScGPTModel, TokenBatch, load_model
from .training import TrainingResult, train_masked_expression

# --- part B: analyses, simulator, statistics registry, pipeline ---
from .baselines import baseline_scores, gene_features, tf_out_degree
from .confounds import confound_r2, curveball, degree_preserving_null, label_shuffle_null, residualise
from .cssi import cssi_aggregate, cssi_null_stress, cssi_scores, leiden_strata, stratified_matrices
from .edges import EdgeScores, attention_scores, correlation_scores, edge_table, log_normalise, spearman_matrix
from .incremental import build_pairs, incremental_value
from .metrics import auprc, auroc, early_precision_ratio, ranking_metrics, topk_f1
from .perturbation import compare_scores, de_targets, perturbation_auroc
from .pipeline import InterpretConfig, InterpretResult, run_interpretation
from .references import Reference, candidate_edges, load_reference, load_tf_list, reference_recovery
from .simulate import SimulatedGRN, simulate_grn
from .stats import Registry, Verdict, verdict
