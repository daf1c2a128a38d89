"""HTML report of an interpretability run (perturblab.report; figures are matplotlib, embedded)."""

from __future__ import annotations

import pandas as pd

from ..exceptions import InputError, MissingKeyError
from ..report import Report
from . import pl
from .report_analyses import add_analysis_sections

__all__ = ["SECTION_IDS", "build_report"]

SECTION_IDS = ("data", "verdict", "reference-recovery", "perturbation", "incremental", "confounds", "ablation", "cssi",
               "robustness", "positive", "cssi-honest", "beyond", "registry")


def _drawn(plot, table: pd.DataFrame, **kw):
    """The figure of ``plot(table)`` (an :mod:`perturblab.interpret.pl` function), or None when the table has
    nothing to draw."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    try:
        return plot(table, **kw).figure
    except (InputError, MissingKeyError):
        return None


def _add(sec, fig, caption):
    if fig is None:
        sec.text(f"No figure: {caption.split(':')[0]} has no finite values for this run.")
    else:
        sec.figure(fig, caption=caption)


def _status(v: dict) -> str:
    crit = v.get("criteria", [])
    n_pass = sum(c.get("passed") is True for c in crit)
    n_ne = sum(c.get("passed") is None for c in crit)
    return (f"Overall: {'PASS' if v.get('passed') else 'FAIL'} ({n_pass} of {len(crit)} criteria pass, {n_ne} not "
            "evaluable; all four must pass, and not evaluable counts as not passed).")


def build_report(tables: dict[str, pd.DataFrame], summary: dict) -> Report:
    """Assemble the report from the run's tables (see :func:`~perturblab.interpret.pipeline.run_interpretation`)."""
    t = {k: (v if v is not None else pd.DataFrame()) for k, v in tables.items()}
    rep = Report("What does attention encode?", subtitle=f"model {summary.get('model')}; tested attention score: "
                 f"{summary.get('attention_score_tested')}")
    sec = rep.section("Data and caveats", id="data")
    for sentence in summary.get("caveats", []):
        sec.text(sentence)
    if summary.get("gene_vocabulary"):
        sec.text(f"Model vocabulary: {summary['gene_vocabulary']}.")
    if summary.get("perturbed_genes_without_token"):
        sec.text("Knocked-out genes without a token (their attention cannot be ranked): "
                 + ", ".join(summary["perturbed_genes_without_token"]) + ".")
    sel = summary.get("layer_selection") or {}
    if sel:
        sec.text(f"Attention score under test: {sel.get('description', sel.get('final'))}.")
    folds = t.get("layer_selection", pd.DataFrame())
    if len(folds):
        sec.table(folds, caption="Nested cross-validation: the layer summary chosen for each perturbation on the "
                  "other folds")

    sec = rep.section("Verdict", id="verdict")
    v = summary.get("verdict", {})
    sec.text(_status(v))
    sec.table(t.get("verdict", pd.DataFrame()), caption="The four criteria of Kendiukhov 2026 (n: rankable "
              "perturbations the criterion rests on)")

    sec = rep.section("Reference recovery", id="reference-recovery")
    rec = t.get("reference_recovery", pd.DataFrame())
    if len(rec):
        _add(sec, _drawn(pl.layer_profiles, rec), "Layer profile: AUROC per layer and reference")
        sec.table(rec[rec["head"].isin(["mean", "max"]) | rec["kind"].eq("correlation")],
                  caption="Layer summaries and |Spearman| (per-head rows in reference_recovery.parquet)")

    sec = rep.section("Perturbation-first evaluation and gene baselines", id="perturbation")
    pp = t.get("perturbation_auroc", pd.DataFrame())
    if len(pp):
        _add(sec, _drawn(pl.baseline_vs_edge, pp), "Per-perturbation AUROC: edge scores vs baselines")
    comps = t.get("perturbation_comparisons", pd.DataFrame())
    if len(comps) and "evaluable" in comps.columns and not comps["evaluable"].all():
        sec.text(f"Comparisons over fewer than {summary.get('min_perturbations')} perturbations are marked not "
                 "evaluable: their deltas and intervals are descriptive only.")
    sec.table(comps, caption="Paired Wilcoxon and bootstrap CIs over perturbations")
    de = t.get("de_targets", pd.DataFrame())
    d = summary.get("data", {})
    if len(de):
        cols = {"n_de_targets": ("is_target", "sum")}
        if "tested" in de.columns:
            cols["n_tested_genes"] = ("tested", "sum")
        sec.table(de.groupby("perturbation").agg(**cols).reset_index(),
                  caption=f"DE targets per knock-out (Welch t, |log2FC| > {d.get('de_lfc', 0.5)}, BH "
                  f"{d.get('de_alpha', 0.05)}; genes detected in < {d.get('de_min_detection', 0):.0%} of both groups "
                  "not tested)")

    sec = rep.section("Incremental value over gene features", id="incremental")
    inc = t.get("incremental", pd.DataFrame())
    if len(inc):
        sec.table(inc, caption="Out-of-fold AUROC, GroupKFold; delta vs gene-only with cluster-bootstrap CI")
    else:
        sec.text("Not computed: fewer than 2 rankable perturbations with DE targets.")

    sec = rep.section("Confounds and null models", id="confounds")
    sec.text("Residualisation is reported with both residualisers: OLS (primary, as Kendiukhov 2026; criterion (c)) "
             "and GBDT (secondary). Retained fraction = (residualised - 0.5) / (raw - 0.5) when the raw AUROC is "
             "above 0.5, and 0 otherwise (no above-chance signal to retain).")
    for name, cap in (("confound_r2", "Cross-validated R2 of edge score on source/target mean, variance, detection"),
                      ("residualisation", "Reference AUROC before and after cross-fitted residualisation"),
                      ("nulls", "Degree-preserving (curveball) and label-shuffle nulls")):
        sec.table(t.get(name, pd.DataFrame()), caption=cap)

    sec = rep.section("Causal head ablation", id="ablation")
    abl = t.get("ablation", pd.DataFrame())
    if len(abl):
        sec.text("Outcome: the perturbation AUROC of the attention of the heads downstream of each intervention "
                 "(the layers after its first intervened layer, the intervened heads left out), before and after it, "
                 "paired per perturbation; random heads are entropy-matched to the top heads. The model's output "
                 "(masked-expression error, output and cell-embedding shift) and the hidden-state shift (maximum over "
                 "layers) are reported per run.")
        _add(sec, _drawn(pl.ablation, abl), "Ablation dose-response: degradation after zeroing top/bottom/random heads")
        sec.table(abl, caption="Interventions (fidelity_hidden: maximum over layers of the hidden-state cosine shift; "
                  "must exceed 0.02 to count)")
        heads = t.get("head_ranking", pd.DataFrame())
        if len(heads):
            sec.table(heads, caption="Head ranking (composite: mean percentile rank of reference and perturbation "
                      "AUROC)")
    else:
        sec.text("Ablation not run.")

    sec = rep.section("CSSI: cell-state stratified interpretability", id="cssi")
    cs = t.get("cssi_recovery", pd.DataFrame())
    if len(cs):
        _add(sec, _drawn(pl.cssi, cs), "CSSI gains: AUROC of pooled vs stratified scores per reference")
        sec.table(cs[["score", "reference", "n_positive", "auroc", "auprc", "epr", "topk_f1", "n_strata",
                      "strata_left_out"]],
                  caption="CSSI recovery")
    cn = t.get("cssi_null_stress", pd.DataFrame())
    if len(cn):
        sec.table(cn.groupby(["reference", "strata", "score"])[["auroc", "topk_f1"]].mean().reset_index(),
                  caption="Null stress tests: shuffled / random strata should not beat pooled")

    add_analysis_sections(rep, t, summary)

    sec = rep.section("Statistics registry", id="registry")
    reg = t.get("registry", pd.DataFrame())
    sec.text(f"{summary.get('n_tests')} tests, {summary.get('n_confirmatory')} confirmatory (BH over the evaluable "
             "ones); exploratory tests are adjusted within their own family; tests over fewer than "
             f"{summary.get('min_perturbations')} perturbations are flagged not evaluable.")
    sec.table(t.get("claims", pd.DataFrame()), caption="Claim-to-evidence map")
    sec.table(reg, caption="Every test")
    return rep
