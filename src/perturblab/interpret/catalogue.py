"""The catalogue of issue-14 analyses: what each asks, its function, registry rows, defaults and inputs.

:data:`ANALYSES` maps a short name (the value of a ``--analyses`` selection) to an :class:`AnalysisSpec`. The
``needs`` name the pipeline's variables the analysis runs on (``ctrl`` control cells, ``X`` their
log-normalised expression over ``genes``, ``model``, ``layers`` / ``att_all`` / ``att_summary`` / ``best_att``
attention, ``corr`` ``|Spearman|``, ``feats`` gene features, ``base`` baselines, ``refs`` / ``directed``
references, ``tfs``, ``de`` DE targets, ``per_pert`` per-perturbation AUROC, ``pairs`` incremental-value pairs,
``adata`` all cells). ``seconds`` is the run time measured on the default Papalexi 2021 run (own model,
2,000 control cells, 299 genes, 1 CPU thread; ``benchmarks/interpret_analyses_cost.py``) and ``default`` says
whether the default run includes it (the default run must stay under 10 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ANALYSES", "AnalysisSpec", "default_analyses"]


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis: ``question`` it asks, ``function`` and ``rows`` (registry rows) as dotted names under
    :mod:`perturblab.interpret`, ``defaults`` (keyword arguments of the default run), ``needs`` (pipeline
    variables), ``section`` of the report, measured ``seconds`` and whether it is ``default``."""

    question: str
    function: str
    rows: str
    section: str
    needs: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    seconds: float = 0.0
    default: bool = True


ANALYSES: dict[str, AnalysisSpec] = {
    "value_edges": AnalysisSpec(
        "Does the signal sit in the values (softmax(QK) . V) rather than in the attention weights?",
        "value_edges.iter_value_edges + value_edges.value_edge_scores + edge_sources.evaluate_edge_sources",
        "edge_sources.edge_source_rows", "robustness", ("model", "ctrl", "genes", "refs", "de", "corr", "base", "tfs"),
        {"measures": ("context", "norm"), "layers": None}, 19.6),
    "matching": AnalysisSpec(
        "Does attention still beat chance and correlation once reference edges are matched to non-edges on gene "
        "mean, variance, dropout and degree (k = 5, caliper 0.2 SD, SMD < 0.1)?",
        "matching.matched_recovery", "matching.matched_recovery_rows", "robustness",
        ("best_att", "corr", "directed", "feats", "tfs"), {"k": 5, "caliper_sd": 0.2, "n_boot": 500}, 7.1),
    "splits": AnalysisSpec(
        "Does attention add over gene features for new perturbations, new targets and both at once (AUROC, AUPRC, "
        "top-k recall; LR and GBDT)?", "splits.split_design", "splits.split_design_rows", "robustness", ("pairs",),
        {"splits": ("perturbation", "target", "joint"), "models": ("logistic", "gbdt"), "n_splits_joint": 3,
         "top_k": 20}, 13.7),
    "tf_strata": AnalysisSpec(
        "Is attention better for knocked-out TFs than for other knocked-out genes, and what effect could this "
        "screen detect?", "stratify.tf_stratification", "stratify.tf_stratification_rows", "robustness",
        ("per_pert", "tfs", "best", "corr"), {"alpha": 0.05, "power": 0.8}, 0.1),
    "circularity": AnalysisSpec(
        "Is TRRUST recovery carried by the direction-known (Activation / Repression) edges or by the Unknown ones, "
        "and do correlation signs agree with the modes?",
        "circularity.direction_recovery + circularity.sign_agreement",
        "circularity.direction_recovery_rows + circularity.sign_agreement_rows", "robustness",
        ("best_att", "corr", "X", "genes", "tfs"), {}, 1.6),
    "per_tf": AnalysisSpec(
        "How many TFs are recovered, each with a confidence interval?", "decomposition.per_tf_recovery",
        "decomposition.per_tf_recovery_rows", "robustness", ("best_att", "corr", "directed", "tfs"),
        {"min_targets": 3, "n_boot": 1000}, 0.1),
    "decomposition": AnalysisSpec(
        "How much of reference recovery is gene degree, how much expression, and what is left?",
        "decomposition.recovery_decomposition", "decomposition.recovery_decomposition_rows", "robustness",
        ("best_att", "corr", "directed", "feats", "tfs"), {"order": ("degree", "expression"), "model": "ols"}, 0.4),
    "hvg_protocol": AnalysisSpec(
        "Do results change when the perturbed genes are not forced into the HVGs?", "sensitivity.hvg_protocol",
        "sensitivity.hvg_protocol_rows", "robustness", ("adata", "ctrl", "model", "best_att"),
        {"lfc_threshold": 0.5}, 9.1),
    "sensitivity": AnalysisSpec(
        "Does the verdict's key statistic hold over |LFC| threshold x control cells x genes (27 configurations)?",
        "sensitivity.sensitivity_scan", "sensitivity.sensitivity_scan_rows", "robustness",
        ("adata", "ctrl", "model", "best_att"), {"levels": "sensitivity.default_scan_levels(n_cells, n_genes)",
                                                 "n_boot": 200}, 20.9),
    "layer_profiles": AnalysisSpec(
        "Does attention recover PPI early and regulation late (Spearman of recovery vs layer, BH)?",
        "profiles.layer_profiles", "profiles.layer_profile_rows", "positive", ("att_all", "corr", "tfs"),
        {"references": "profiles.profile_references()", "unit": ("summary", "head")}, 3.3),
    "partial": AnalysisSpec(
        "Does attention relate to reference membership beyond expression similarity?",
        "partial.partial_correlation", "partial.partial_correlation_rows", "positive",
        ("att_summary", "refs", "corr", "tfs"), {}, 0.2),
    "coexpression": AnalysisSpec(
        "How much of each layer's and head's attention is co-expression (rho, R2)?",
        "coexpression.attention_coexpression", "coexpression.attention_coexpression_rows", "positive",
        ("att_all", "corr"), {"max_pairs": 500_000}, 1.0),
    "gene_sets": AnalysisSpec(
        "Does attention recover pathway co-membership (Reactome, KEGG, GO BP)?",
        "gene_sets.gene_set_references + gene_sets.gene_set_recovery", "gene_sets.gene_set_recovery_rows",
        "positive", ("att_summary", "corr", "genes"), {"libraries": ("reactome", "kegg", "go_bp"), "min_size": 5,
                                                        "max_size": 300}, 1.8),
    "cssi_scaling": AnalysisSpec(
        "Do more cells improve AUROC but not top-K F1 (the scaling failure behind CSSI)?",
        "cssi_scan.scaling_curve + cssi_scan.scaling_test", "cssi_scan.scaling_test_rows", "cssi",
        ("X", "genes", "directed", "tfs"), {"n_cells": (200, 400, 600, 800, 1000), "n_repeats": 10,
                                            "evidence": "correlation", "data": "real"}, 2.7),
    "cssi_strata_scan": AnalysisSpec(
        "Does CSSI gain over pooled scores for any number of strata, beyond shuffled, random and gene-permuted "
        "nulls?", "cssi_scan.strata_scan", "cssi_scan.strata_scan_rows", "cssi",
        ("X", "genes", "directed", "tfs", "model", "ctrl"), {"ks": (2, 4, 8), "n_repeats": 2,
                                                             "n_gene_null": 200}, 10.9),
    "cssi_edge_fdr": AnalysisSpec(
        "Which edges are present in at least one stratum at 5% FDR, and are they reference edges?",
        "cssi_scan.cssi_edge_fdr", "cssi_scan.cssi_edge_fdr_rows", "cssi", ("X", "genes", "tfs", "strata"),
        {"alpha": 0.05, "min_cells": 20}, 0.1),
    "embedding_edges": AnalysisSpec(
        "Do token-embedding or hidden-state similarities recover references and knock-out targets?",
        "embedding_edges.embedding_similarity_scores + edge_sources.evaluate_edge_sources",
        "edge_sources.edge_source_rows", "beyond", ("model", "ctrl", "genes", "refs", "de", "corr", "base", "tfs"),
        {"layers": (0, -1)}, 4.5),
    "sae": AnalysisSpec(
        "Are sparse-autoencoder features of the residual stream enriched for gene sets?",
        "sae.collect_residuals + sae.train_sae + sae.feature_gene_matrix + sae.feature_gene_set_edges",
        "sae.feature_gene_set_rows", "beyond", ("model", "ctrl", "genes"), {"layer": -1, "k": 8, "expansion": 4,
                                                                            "epochs": 10, "max_tokens": 50_000},
        16.7),
    "in_silico": AnalysisSpec(
        "Does deleting a gene in the model's input predict its measured knock-out effects better than gene-level "
        "baselines?", "in_silico.in_silico_perturbation + in_silico.score_in_silico",
        "in_silico.score_in_silico_rows", "beyond", ("model", "ctrl", "genes", "de", "feats"),
        {"mode": "delete", "n_cells": 200}, 69.9),  # measured on 2,000 cells; the pipeline: a seeded sample
}


def default_analyses() -> tuple[str, ...]:
    """Names of the analyses of the default run."""
    return tuple(name for name, spec in ANALYSES.items() if spec.default)
