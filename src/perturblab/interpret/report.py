"""HTML report of an interpretability run (perturblab.report; figures are matplotlib, embedded)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import Report
from ._types import records
from .report_analyses import add_analysis_sections

__all__ = ["SECTION_IDS", "build_report"]

SECTION_IDS = ("data", "verdict", "reference-recovery", "perturbation", "incremental", "confounds", "ablation", "cssi",
               "robustness", "positive", "cssi-honest", "beyond", "registry")


def _fig(width=6.0, height=3.6):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _layer_profile(rec: pd.DataFrame):
    from matplotlib.ticker import MaxNLocator

    att = rec[rec["kind"].eq("attention") & rec["head"].isin(["mean", "max"])].dropna(subset=["auroc"])
    if att.empty:
        return None
    fig, ax = _fig()
    for (ref, head), g in att.groupby(["reference", "head"]):
        g = g.sort_values("layer")
        ax.plot(g["layer"].astype(int), g["auroc"], marker="o", ls="-" if head == "mean" else "--",
                label=f"{ref} ({head})")
    corr = rec[rec["kind"].eq("correlation")].dropna(subset=["auroc"])
    for r in records(corr):
        ax.axhline(r.auroc, color="grey", lw=0.8, ls=":")
    ax.axhline(0.5, color="black", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel("AUROC")
    ax.set_title("Reference recovery per layer (dotted: |Spearman| per reference)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _perturbation_plot(per_pert: pd.DataFrame):
    d = per_pert.dropna(subset=["auroc"])
    if d.empty:
        return None
    order = d.groupby("score")["auroc"].mean().sort_values()
    fig, ax = _fig(6.5, 0.35 * len(order) + 1.5)
    colours = {"attention": "tab:blue", "correlation": "tab:orange", "baseline": "tab:green"}
    kind = d.drop_duplicates("score").set_index("score")["kind"]
    for i, s in enumerate(order.index):
        v = d[d["score"] == s]["auroc"].to_numpy()
        ax.barh(i, order[s], color=colours.get(kind[s], "grey"), alpha=0.6)
        ax.scatter(v, np.full(v.size, i), s=10, color="black", zorder=3)
    ax.set_yticks(range(len(order)), order.index, fontsize=7)
    ax.axvline(0.5, color="black", lw=0.6)
    ax.set_xlabel("AUROC of knock-out targets (bar: mean, dots: perturbations)")
    ax.set_title("Attention and correlation vs gene-level baselines")
    return fig


def _ablation_plot(abl: pd.DataFrame):
    if abl.empty or not {"intervention", "k", "degradation"} <= set(abl.columns):
        return None
    d = abl[abl["intervention"].isin(["top", "bottom", "random"])].dropna(subset=["degradation"])
    if d.empty:
        return None
    fig, ax = _fig()
    for name, g in d.groupby("intervention"):
        m = g.groupby("k")["degradation"].agg(["mean", "min", "max"]).sort_index()
        ax.errorbar(m.index, m["mean"], yerr=[m["mean"] - m["min"], m["max"] - m["mean"]], marker="o", capsize=3,
                    label=str(name))
    ax.axhline(0.0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("heads ablated (k)")
    ax.set_ylabel("degradation of downstream attention AUROC")
    ax.set_title("Ablation dose-response (positive = worse)")
    ax.legend(fontsize=7)
    return fig


def _cssi_plot(cssi: pd.DataFrame):
    d = cssi.dropna(subset=["auroc"])
    if d.empty:
        return None
    wide = d.pivot_table(index="reference", columns="score", values="auroc")
    fig, ax = _fig(7.0, 3.8)
    x = np.arange(len(wide))
    w = 0.8 / max(len(wide.columns), 1)
    for i, c in enumerate(wide.columns):
        ax.bar(x + i * w, wide[c], width=w, label=c)
    ax.set_xticks(x + 0.4 - w / 2, wide.index, fontsize=8)
    ax.axhline(0.5, color="black", lw=0.6)
    ax.set_ylabel("AUROC")
    ax.set_title("CSSI vs pooled edge scores")
    ax.legend(fontsize=6, ncol=2)
    return fig


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
        _add(sec, _layer_profile(rec), "Layer profile: AUROC per layer and reference")
        sec.table(rec[rec["head"].isin(["mean", "max"]) | rec["kind"].eq("correlation")],
                  caption="Layer summaries and |Spearman| (per-head rows in reference_recovery.parquet)")

    sec = rep.section("Perturbation-first evaluation and gene baselines", id="perturbation")
    pp = t.get("perturbation_auroc", pd.DataFrame())
    if len(pp):
        _add(sec, _perturbation_plot(pp), "Per-perturbation AUROC: edge scores vs baselines")
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
        _add(sec, _ablation_plot(abl), "Ablation dose-response: degradation after zeroing top/bottom/random heads")
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
        _add(sec, _cssi_plot(cs), "CSSI gains: AUROC of pooled vs stratified scores per reference")
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
