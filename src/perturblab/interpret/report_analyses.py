"""The four report sections of the issue-14 analyses: robustness of the negative result, what attention does
encode, CSSI honestly, and beyond the paper (figures from :mod:`perturblab.interpret.pl`).

Each section lists the selected analyses with the question each asks (:data:`~perturblab.interpret.catalogue.ANALYSES`),
shows their tables and figures, and says which analyses were not selected or could not run and why.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..exceptions import InputError
from ._types import records
from .catalogue import ANALYSES

__all__ = ["ANALYSIS_SECTIONS", "add_analysis_sections"]

#: Report section id -> (title, catalogue section name).
ANALYSIS_SECTIONS = {
    "robustness": ("Robustness of the negative result", "robustness"),
    "positive": ("The positive finding: what attention does encode", "positive"),
    "cssi-honest": ("CSSI, honestly: scaling, strata scan, nulls and per-edge FDR", "cssi"),
    "beyond": ("Beyond the paper: other edge sources, SAE features, in-silico perturbation", "beyond"),
}

# (analysis, table, caption, plot function name in pl or None, plot caption)
_BLOCKS: dict[str, list[tuple[str, str, str, str | None, str]]] = {
    "robustness": [
        ("value_edges", "value_edges", "Value-weighted edges (softmax(QK) . V) through the attention evaluations",
         None, ""),
        ("matching", "matching", "Reference recovery after propensity-score matching of edges on gene covariates",
         None, ""),
        ("matching", "matching_balance", "Covariate balance per reference", "balance",
         "Covariate balance (standardised mean difference) before and after matching"),
        ("splits", "splits", "Incremental value over gene features by split design (perturbation, target, joint)",
         "split_designs", "AUROC gain of edge features over gene features per split design and model"),
        ("tf_strata", "tf_strata", "Knocked-out TFs vs other knocked-out genes, with the minimal detectable effect",
         None, ""),
        ("circularity", "circularity", "TRRUST edges by direction (Activation / Repression / Unknown)", None, ""),
        ("circularity", "sign_agreement", "Sign agreement of Spearman rho with TRRUST modes", None, ""),
        ("per_tf", "per_tf", "Per-TF recovery with bootstrap confidence intervals", "per_tf_forest",
         "Per-TF AUROC with 95% confidence intervals"),
        ("decomposition", "decomposition", "Reference recovery decomposed into degree, expression and residual",
         "decomposition", "Decomposition of reference recovery"),
        ("hvg_protocol", "hvg_protocol", "Perturbed genes forced into the HVGs vs pure HVGs", None, ""),
        ("sensitivity", "sensitivity", "Sensitivity scan: |log2FC| threshold x control cells x genes",
         "sensitivity_heatmap", "Tested attention minus the best gene-level baseline over the scan"),
    ],
    "positive": [
        ("layer_profiles", "layer_profiles", "Depth trends: Spearman of recovery vs layer (PPI early, regulation "
         "late?)", None, ""),
        ("layer_profiles", "layer_profile_recovery", "Recovery of STRING >= 700, >= 900 and TRRUST per layer",
         "layer_profiles", "Layer profiles (dotted: |Spearman|)"),
        ("partial", "partial", "Partial correlation of attention with reference membership given co-expression",
         None, ""),
        ("coexpression", "coexpression", "Attention vs co-expression per layer and head (rho, R2)",
         "coexpression_map", "Attention-co-expression map"),
        ("gene_sets", "gene_sets", "Gene-set co-membership recovery", None, ""),
    ],
    "cssi": [
        ("cssi_scaling", "cssi_scaling", "Scaling failure: AUROC vs top-K F1 as cells grow (sign test)", None, ""),
        ("cssi_scaling", "cssi_scaling_curve", "Scaling curve (correlation on real data)", "scaling",
         "Recovery vs number of cells"),
        ("cssi_strata_scan", "cssi_strata_scan", "CSSI over the number of strata with shuffled, random-strata and "
         "gene-permuted nulls (real data, correlation)", "cssi_scan", "CSSI gain over pooled per number of strata"),
        ("cssi_edge_fdr", "cssi_edge_fdr", "Per-edge FDR: edges present in at least one stratum", None, ""),
    ],
    "beyond": [
        ("embedding_edges", "embedding_edges", "Token-embedding and hidden-state similarity as edge sources", None,
         ""),
        ("sae", "sae_gene_sets", "Sparse-autoencoder features enriched for gene sets", None, ""),
        ("sae", "sae_history", "SAE training (fraction of variance unexplained per epoch)", None, ""),
        ("in_silico", "in_silico", "In-silico perturbation scored against the measured knock-out effects",
         "in_silico", "In-silico perturbation vs gene-level baselines"),
    ],
}


def _plot(sec, name: str, table: pd.DataFrame, caption: str) -> None:
    from . import pl

    fn: Callable = getattr(pl, name)
    try:
        ax = fn(table)
    except (InputError, KeyError, ValueError) as err:
        sec.text(f"No figure ({caption}): {err}")
        return
    sec.figure(ax.figure, caption=caption)


def add_analysis_sections(rep, tables: dict[str, pd.DataFrame], summary: dict) -> None:
    """Add the four analysis sections to ``rep`` (a :class:`perturblab.report.Report`) from the run's tables."""
    selected = list(summary.get("analyses", []))
    notes = summary.get("analyses_not_run", {}) or {}
    for sid, (title, cat) in ANALYSIS_SECTIONS.items():
        sec = rep.section(title, id=sid)
        names = [n for n, spec in ANALYSES.items() if spec.section == cat]
        ran = [n for n in names if n in selected and n not in notes]
        if ran:
            sec.items([f"{n}: {ANALYSES[n].question}" for n in ran], caption="Analyses in this section")
        left = [n for n in names if n not in selected]
        if left:
            sec.text("Not selected in this run: " + ", ".join(left) + " (select with --analysis NAME).")
        for n in names:
            if n in notes:
                sec.text(f"{n} could not run: {notes[n]}")
        if cat == "cssi":
            _cssi_evidence(sec, tables)
        for analysis, tab, cap, plot, plot_cap in _BLOCKS[cat]:
            df = tables.get(tab)
            if analysis not in ran or df is None or not len(df):
                continue
            if plot is not None:
                _plot(sec, plot, df, plot_cap)
            sec.table(df, caption=cap, max_rows=100)
        if cat == "robustness" and "splits" in ran:
            sec.text("The joint cross-gene x cross-perturbation split is reported here and in the registry; it is "
                     "not (yet) part of verdict criterion (b).")
        if cat == "positive":
            miss = tables.get("gene_sets_unavailable")
            if "gene_sets" in ran and miss is not None and len(miss):
                sec.text("Gene-set libraries that could not be loaded (offline and no local copy): "
                         + "; ".join(f"{r.library} ({r.reason})" for r in records(miss)) + ".")
        if cat == "beyond":
            miss = tables.get("sae_gene_sets_unavailable")
            if "sae" in ran and "sae_gene_sets" not in tables:
                sec.text("SAE features were not tested against gene sets: no gene-set library could be used"
                         + (" (" + "; ".join(f"{r.library}: {r.reason}" for r in records(miss)) + ")"
                            if miss is not None and len(miss) else "") + ".")


def _cssi_evidence(sec, tables: dict[str, pd.DataFrame]) -> None:
    """The run's CSSI recovery split by evidence: real attention apart from correlation (real data)."""
    cs = tables.get("cssi_recovery")
    if cs is None or not len(cs) or "kind" not in cs.columns:
        return
    sec.text("Real-attention CSSI results are shown apart from correlation ones: public self-reviews of related work "
             "find the large CSSI gains only on synthetic data. Every table in this section is on real data.")
    cols = [c for c in ("score", "reference", "n_positive", "auroc", "auprc", "topk_f1", "n_strata") if c in cs]
    for kind, cap in (("attention", "CSSI recovery, attention evidence (real data)"),
                      ("correlation", "CSSI recovery, correlation evidence (real data)")):
        part = cs[cs["kind"].eq(kind)]
        if len(part):
            sec.table(part[cols], caption=cap)
