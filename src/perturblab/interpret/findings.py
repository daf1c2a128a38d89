"""From the run's tables to the statistics registry, the verdict and the data caveat (used by the pipeline).

:func:`register_tests` records every test the run made (Kendiukhov 2026, section 11) - with the tested score's
selection taken into account (Bonferroni over candidate layers where one data-chosen matrix is tested) and
perturbation-based tests over fewer than the minimum number of perturbations flagged not evaluable.
:func:`apply_verdict` feeds the criteria of :func:`~perturblab.interpret.stats.verdict`; :func:`data_caveat`
writes the report's caveat from the data actually analysed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._types import records
from .ablation import AblationEffects
from .selection import LayerSelection
from .stats import NULL_Z_MIN, Registry, Verdict, bonferroni_z, verdict

__all__ = ["apply_verdict", "comparison_key", "data_caveat", "register_tests"]


def comparison_key(a: str, b: str) -> str:
    """Registry key of the paired comparison of scores ``a`` and ``b``."""
    return f"compare:{a}|{b}"


def _bonferroni(p: float, m: int) -> float:
    return float(min(1.0, p * m)) if np.isfinite(p) else p


def register_tests(reg: Registry, *, rec: pd.DataFrame, comps: pd.DataFrame, inc: pd.DataFrame, nulls: pd.DataFrame,
                   effects: AblationEffects | None, cssi_null: pd.DataFrame, selection: LayerSelection,
                   corr_name: str, n_perturbations: int, min_perturbations: int) -> None:
    """Add every test of a run to ``reg``.

    Confirmatory: the reference-recovery enrichment and the nulls of the final (single-matrix) attention score and
    of correlation, the tested score's paired comparisons, incremental value of attention and the top-vs-random
    ablation test. Under nested-CV selection the p-values of tests on the final score are multiplied by the
    number of candidates (Bonferroni; the hypothesis says so). Perturbation-based tests with fewer than
    ``min_perturbations`` perturbations are flagged not evaluable.
    """
    final, tested, m = selection.final, selection.tested_name, selection.bonferroni_m
    note = f" (Bonferroni x{m} over candidate layer summaries)" if m > 1 else ""
    enough = n_perturbations >= min_perturbations
    summaries = rec[rec["head"].isin(["mean", "max"]) | (rec["score"] == corr_name)]
    for r in records(summaries):
        is_final = r.score == final
        reg.add("reference recovery", f"{r.score} enriches {r.reference} edges among its top {r.fisher_top}"
                + (note if is_final else ""), "Fisher exact (one-sided)",
                p=_bonferroni(r.fisher_p, m) if is_final else r.fisher_p, effect_size=r.fisher_odds_ratio,
                effect="odds ratio", n=r.n_candidates, confirmatory=r.score in (final, corr_name),
                claim="attention recovers reference networks" if is_final else "")
    for r in records(rec[~rec.index.isin(summaries.index)]):
        reg.add("reference recovery (per head)", f"{r.score} enriches {r.reference}", "Fisher exact (one-sided)",
                p=r.fisher_p, effect_size=r.fisher_odds_ratio, effect="odds ratio", n=r.n_candidates,
                confirmatory=False)
    for r in records(comps):
        conf = r.a == tested
        claim = ("attention beats correlation" if r.b == corr_name else "attention beats gene baselines"
                 ) if conf else ""
        reg.add("perturbation-first", f"{r.a} ranks knock-out targets differently from {r.b}", "Wilcoxon signed-rank",
                p=r.p, effect_size=r.delta, effect="mean delta AUROC", statistic=r.statistic, n=r.n,
                confirmatory=conf and "out-degree" not in r.b, claim=claim, evaluable=int(r.n) >= min_perturbations,
                key=comparison_key(r.a, r.b))
    for r in records(inc[inc["features"] != "gene"]) if len(inc) else []:
        reg.add("incremental value", f"{r.features} ({r.model}, split by {r.split}) changes AUROC over gene features",
                "cluster bootstrap", p=r.delta_auroc_p, effect_size=r.delta_auroc, effect="delta AUROC", n=r.n_pairs,
                confirmatory=bool(r.features == "gene + attention"), claim="attention adds over gene features"
                if r.features == "gene + attention" else "", evaluable=enough)
    for r in records(nulls) if len(nulls) else []:
        is_final = r.score == final
        reg.add("confounds", f"{r.score} recovers {r.reference} beyond the {r.null} null" + (note if is_final else ""),
                "empirical null", p=_bonferroni(r.p_empirical, m) if is_final else r.p_empirical, effect_size=r.z,
                effect="z", n=r.n_null, confirmatory=bool(r.score in (final, corr_name)),
                claim="attention signal is not a degree artefact" if is_final and "curveball" in r.null else "")
    if effects is not None and effects.ks:
        reg.add("causal ablation", "ablating the top-ranked heads degrades the downstream attention's perturbation "
                "AUROC more than entropy-matched random heads (paired per perturbation, mean over k)",
                "Wilcoxon signed-rank (one-sided)", p=effects.top_vs_random_p, effect_size=effects.top_vs_random_effect,
                effect="mean degradation top - random", n=effects.n, claim="regulatory heads are causal",
                evaluable=enough)
        for kind, t in effects.layer_tests.items():
            reg.add("causal ablation", f"{kind} intervention at the regulatory layers {t['layers']} degrades the "
                    "downstream attention's perturbation AUROC", "Wilcoxon signed-rank (one-sided)", p=t["p"],
                    effect_size=t["effect"], effect="mean degradation", n=t["n"], claim="regulatory layers are causal",
                    evaluable=enough)
    if len(cssi_null):
        for (ref, score), g in cssi_null[cssi_null["score"] != "pooled"].groupby(["reference", "score"]):
            pooled = cssi_null[(cssi_null["reference"] == ref) & (cssi_null["score"] == "pooled")]["auroc"].iloc[0]
            real = g[g["strata"] == "real"]["auroc"]
            shuffled = g[g["strata"] == "shuffled"]["auroc"].to_numpy()
            if len(real) and shuffled.size:
                gain = float(real.iloc[0] - pooled)
                p = (1 + np.sum(shuffled - pooled >= gain)) / (1 + shuffled.size)
                reg.add("CSSI", f"{score} |Spearman| on real strata beats pooled on {ref}", "shuffled-strata null",
                        p=p, effect_size=gain, effect="delta AUROC vs pooled", n=int(shuffled.size), confirmatory=False)


def apply_verdict(registry: pd.DataFrame, comps: pd.DataFrame, inc: pd.DataFrame, resid: pd.DataFrame,
                  nulls: pd.DataFrame, effects: AblationEffects | None, selection: LayerSelection, n_perturbations: int,
                  min_perturbations: int, alpha: float, splits: pd.DataFrame | None = None) -> Verdict:
    """The four criteria for the tested score (a, b, d) and the final single-matrix score (c); ``splits``: the
    split-design analysis's table, which joins (b) when it ran."""
    tested, final = selection.tested_name, selection.final
    bc = None
    if len(comps):
        bc = comps[(comps["a"] == tested) & comps["b"].str.startswith("baseline")
                   & ~comps["b"].str.contains("out-degree")].copy()
        keys = registry.set_index("key")["p_bh"] if len(registry) else pd.Series(dtype=float)
        bc["p_bh"] = [keys.get(f"compare:{r.a}|{r.b}", np.nan) for r in records(bc)]
    r = resid[resid["score"] == final] if len(resid) else None
    z = (nulls[(nulls["score"] == final) & nulls["null"].str.contains("curveball")]["z"].to_numpy()
         if len(nulls) else None)
    return verdict(bc, inc if len(inc) else None, r if r is not None and len(r) else None, z, effects,
                   n_perturbations=n_perturbations, min_perturbations=min_perturbations, alpha=alpha,
                   null_z_min=bonferroni_z(NULL_Z_MIN, selection.bonferroni_m), splits=splits)


def data_caveat(data: dict, min_perturbations: int) -> list[str]:
    """Sentences on what the run's data allow, from ``summary["data"]`` (no dataset is named unless it was used)."""
    used = (f"this run used {data['n_cells_used']:,} cells (a subsample), " if data["n_cells_used"] < data["n_cells"]
            else "")
    out = [f"{data['source']}: {data['n_cells']:,} cells x {data['n_genes']:,} genes, {data['n_perturbations']} "
           f"perturbations and {data['n_control']:,} control cells; {used}{data['n_control_used']:,} control cells "
           f"and {data['n_genes_used']:,} genes analysed."]
    n = data["n_rankable"]
    out.append(f"{data['n_perturbed_in_genes']} knocked-out genes are among the analysed genes; {n} of them have DE "
               f"targets (|log2FC| > {data['de_lfc']}, BH < {data['de_alpha']}, genes detected in >= "
               f"{data['de_min_detection']:.0%} of a group) and can be ranked.")
    if n < min_perturbations:
        out.append(f"With {n} rankable perturbations (minimum {min_perturbations}) the perturbation-based criteria "
                   "(a), (b), (d) are not evaluable: their numbers are shown, not judged.")
    elif n < 20:
        out.append(f"Only {n} perturbations can be ranked: confidence intervals over perturbations are wide and "
                   "the paired tests have little power.")
    if data.get("n_reference_positives") is not None and data["n_reference_positives"] < 30:
        out.append(f"Few reference edges fall among the analysed genes ({data['n_reference_positives']} in the "
                   "largest directed reference): reference-recovery statistics are noisy.")
    return out
