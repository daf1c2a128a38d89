"""Summaries of a benchmark table: model ranking, paired tests between models across targets,
and the degradation of each model from the balanced data to the other variants.

Input everywhere: the tidy table of :func:`perturblab.predict.benchmark.run_benchmark` (columns
``model, target, variant, seed, metric, gene_set, value, ...``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..suite import higher_is_better

__all__ = ["degradation", "directed", "higher_is_better", "paired_tests", "rank_models"]

_GROUP = ["variant", "metric", "gene_set"]


def directed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows whose metric has a better direction (:func:`higher_is_better` not None): the DEG counts
    ``de_nsig_counts_*`` are left out of rankings, tests and degradation."""
    if not len(table):
        return table
    return table[table["metric"].map(higher_is_better).notna().to_numpy()]


def _per_target(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds: one value per (variant, metric, gene_set, model, target), directed metrics only."""
    per = directed(table).groupby(_GROUP + ["model", "target"], observed=True, sort=False)["value"].mean()
    return per.reset_index()


def rank_models(table: pd.DataFrame) -> pd.DataFrame:
    """Rank the models per variant and metric by their mean over targets (and seeds).

    Returns
    -------
    pandas.DataFrame
        ``variant, metric, gene_set, model, mean, sd, n_targets, rank`` (rank 1 = best, following
        :func:`higher_is_better`; ties share the lowest rank), sorted by group and rank. Metrics without a
        better direction (``de_nsig_counts_*``) are left out.
    """
    per = _per_target(table)
    out = per.groupby(_GROUP + ["model"], observed=True, sort=False)["value"].agg(
        mean="mean", sd="std", n_targets="count").reset_index()
    sign = np.where(out["metric"].map(higher_is_better).astype(bool), -1.0, 1.0)
    out["rank"] = (out.assign(key=sign * out["mean"]).groupby(_GROUP, observed=True)["key"]
                   .rank(method="min").astype("Int64"))
    return out.sort_values(_GROUP + ["rank", "model"], kind="stable").reset_index(drop=True)


def paired_tests(table: pd.DataFrame, alternative: str = "two-sided") -> pd.DataFrame:
    """Wilcoxon signed-rank tests between every pair of models, paired by target.

    For each variant, metric and gene set, each model's value is averaged over seeds per
    target; pairs of models are compared on the targets both have (scipy
    ``wilcoxon``, exact null distribution for small samples). P-values are corrected with
    Benjamini-Hochberg (statsmodels ``multipletests(method="fdr_bh")``) over the model pairs of
    the same variant, metric and gene set.

    Returns
    -------
    pandas.DataFrame
        ``variant, metric, gene_set, model_a, model_b, n_targets, median_diff`` (a - b),
        ``better`` (the model with the better median, "" when equal), ``statistic, p_value,
        p_adj``. With fewer than two paired targets, or all differences zero, the test is
        not defined: p-values are NaN, never a made-up number. Metrics without a better direction
        (``de_nsig_counts_*``) are left out.
    """
    from scipy.stats import wilcoxon
    from statsmodels.stats.multitest import multipletests

    per = _per_target(table)
    rows = []
    for (variant, metric, gset), grp in per.groupby(_GROUP, observed=True, sort=False):
        wide = grp.pivot(index="target", columns="model", values="value")
        family = []
        for a, b in itertools.combinations(sorted(wide.columns), 2):
            pair = wide[[a, b]].dropna()
            d = (pair[a] - pair[b]).to_numpy()
            stat: float = np.nan
            p: float = np.nan
            if len(d) >= 2 and np.any(d != 0):
                res = wilcoxon(pair[a], pair[b], alternative=alternative, zero_method="wilcox")
                stat, p = float(res.statistic), float(res.pvalue)
            med = float(np.median(d)) if len(d) else np.nan
            better = "" if not med or np.isnan(med) else (a if (med > 0) == higher_is_better(str(metric)) else b)
            family.append({"variant": variant, "metric": metric, "gene_set": gset, "model_a": a, "model_b": b,
                           "n_targets": len(d), "median_diff": med, "better": better, "statistic": stat,
                           "p_value": p})
        pvals = np.array([r["p_value"] for r in family], dtype=float)
        adj = np.full_like(pvals, np.nan)
        ok = ~np.isnan(pvals)
        if ok.any():
            adj[ok] = multipletests(pvals[ok], method="fdr_bh")[1]
        for r, v in zip(family, adj):
            r["p_adj"] = float(v)
        rows.extend(family)
    cols = ["variant", "metric", "gene_set", "model_a", "model_b", "n_targets", "median_diff", "better",
            "statistic", "p_value", "p_adj"]
    return pd.DataFrame(rows, columns=cols)


def degradation(table: pd.DataFrame, reference: str = "balanced") -> pd.DataFrame:
    """Change of each model's metrics from the ``reference`` variant to every other variant.

    Returns
    -------
    pandas.DataFrame
        ``variant, metric, gene_set, model, target, seed, value, reference_value, change``
        (``value - reference_value``) and ``worse_by`` (the change signed so that positive
        means worse, following :func:`higher_is_better`). Empty when the reference variant
        is absent. Metrics without a better direction (``de_nsig_counts_*``) are left out.
    """
    keys = ["model", "target", "seed", "metric", "gene_set"]
    table = directed(table)
    ref = table.loc[table["variant"] == reference, keys + ["value"]].rename(columns={"value": "reference_value"})
    other = table.loc[table["variant"] != reference, keys + ["variant", "value"]]
    out = other.merge(ref, on=keys, how="inner")
    out["change"] = out["value"] - out["reference_value"]
    sign = np.where(out["metric"].map(higher_is_better).astype(bool), -1.0, 1.0) if len(out) else 1.0
    out["worse_by"] = sign * out["change"]
    cols = ["variant", "metric", "gene_set", "model", "target", "seed", "value", "reference_value", "change",
            "worse_by"]
    return out[cols].reset_index(drop=True)
