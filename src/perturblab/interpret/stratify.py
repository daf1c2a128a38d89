"""TF vs non-TF stratification of perturbations, with a power analysis of the achievable effect.

Attention of a transcription factor might encode its targets even if attention of other genes does not. The
perturbation-first comparison of two scores (``a`` - ``b``, e.g. the tested attention score vs
``|Spearman|``) is therefore repeated within knocked-out TFs (Lambert et al. 2018) and within the other
knocked-out genes, and the two strata are compared. With few perturbations a null result says little, so each
row carries the minimal detectable effect (MDE) at the given power: Cohen's ``d`` from statsmodels' power tools
(``TTestPower`` for the paired delta within a stratum, ``TTestIndPower`` for the difference between strata)
and its value in AUROC units (``d`` times the observed standard deviation), plus the achieved power for the
observed effect. Tests: Wilcoxon signed-rank within a stratum, Mann-Whitney between strata (the paper names the
stratification, not the tests; these are the standard non-parametric ones, with t-test power as the usual
approximation).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import MissingKeyError
from ._types import records
from .registry_rows import registry_row

__all__ = ["achieved_power", "minimal_detectable_effect", "tf_stratification", "tf_stratification_rows"]


def minimal_detectable_effect(n1: int, n2: int | None = None, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest Cohen's ``d`` detectable with ``power`` at two-sided ``alpha``.

    One-sample / paired t-test with ``n1`` observations when ``n2`` is None, else a two-sample t-test with
    ``n1`` and ``n2``. NaN when a group has fewer than 2 observations.
    """
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if n1 < 2 or (n2 is not None and n2 < 2):
        return float("nan")
    if n2 is None:
        return float(TTestPower().solve_power(nobs=n1, alpha=alpha, power=power, alternative="two-sided"))
    return float(TTestIndPower().solve_power(nobs1=n1, ratio=n2 / n1, alpha=alpha, power=power,
                                             alternative="two-sided"))


def achieved_power(d: float, n1: int, n2: int | None = None, alpha: float = 0.05) -> float:
    """Power of the (paired or two-sample) two-sided t-test to detect Cohen's ``d`` (NaN if not computable)."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if not np.isfinite(d) or n1 < 2 or (n2 is not None and n2 < 2):
        return float("nan")
    if n2 is None:
        return float(TTestPower().power(effect_size=abs(d), nobs=n1, alpha=alpha, alternative="two-sided"))
    return float(TTestIndPower().power(effect_size=abs(d), nobs1=n1, ratio=n2 / n1, alpha=alpha,
                                       alternative="two-sided"))


def tf_stratification(per_pert: pd.DataFrame, tfs: Iterable[str], a: str, b: str, metric: str = "auroc",
                      alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Paired comparison of scores ``a`` and ``b`` within TF and non-TF perturbations, and between the strata.

    Parameters
    ----------
    per_pert
        :func:`~perturblab.interpret.perturbation.perturbation_auroc` table (``score, perturbation, metric``).
    tfs
        Transcription factors (:func:`~perturblab.interpret.references.load_tf_list`).
    a, b
        Score names (e.g. the tested attention score and ``"spearman"``); ``delta = a - b`` per perturbation.
    metric
        Column compared.
    alpha, power
        Of the power analysis.

    Returns
    -------
    Rows ``stratum`` in ``TF``, ``non-TF``, ``all`` (paired: ``n, mean_a, mean_b, delta, sd, p`` = Wilcoxon
    signed-rank, ``cohens_d = delta / sd``, ``mde_d``, ``mde`` (AUROC units), ``power_observed``) and ``TF vs
    non-TF`` (``delta`` = difference of the strata's mean deltas, ``p`` = two-sided Mann-Whitney of the deltas,
    ``n`` = both strata, MDE of the two-sample test), plus ``a, b, metric, perturbations``.

    Examples
    --------
    >>> tf_stratification(per_pert, load_tf_list(), a=best, b="spearman")  # doctest: +SKIP
    """
    if {"score", "perturbation", metric} - set(per_pert.columns):
        raise MissingKeyError(f"per-perturbation table needs columns 'score', 'perturbation' and {metric!r}")
    wide = per_pert.pivot_table(index="perturbation", columns="score", values=metric, dropna=False)
    for s in (a, b):
        if s not in wide.columns:
            raise MissingKeyError(f"score {s!r} not in the per-perturbation table")
    pair = wide[[a, b]].dropna()
    tf_set = set(map(str, tfs))
    is_tf = pair.index.astype(str).isin(tf_set)
    d_all = (pair[a] - pair[b]).to_numpy()
    rows = []
    for name, sel in (("TF", is_tf), ("non-TF", ~is_tf), ("all", np.ones(len(pair), bool))):
        d = d_all[sel]
        n = int(d.size)
        sd = float(d.std(ddof=1)) if n >= 2 else np.nan
        if n == 0:
            p = np.nan
        elif np.all(d == 0):
            p = 1.0
        else:
            p = float(stats.wilcoxon(d).pvalue)
        mde_d = minimal_detectable_effect(n, alpha=alpha, power=power)
        cd = float(d.mean() / sd) if n >= 2 and sd > 0 else np.nan
        rows.append({"stratum": name, "n": n, "mean_a": float(pair[a][sel].mean()) if n else np.nan,
                     "mean_b": float(pair[b][sel].mean()) if n else np.nan,
                     "delta": float(d.mean()) if n else np.nan, "sd": sd, "p": p, "cohens_d": cd, "mde_d": mde_d,
                     "mde": mde_d * sd if np.isfinite(sd) else np.nan,
                     "power_observed": achieved_power(cd, n, alpha=alpha),
                     "perturbations": ", ".join(pair.index[sel].astype(str))})
    d1, d2 = d_all[is_tf], d_all[~is_tf]
    n1, n2 = int(d1.size), int(d2.size)
    if n1 and n2:
        p = float(stats.mannwhitneyu(d1, d2, alternative="two-sided").pvalue)
    else:
        p = np.nan
    sd_pool = (float(np.sqrt(((n1 - 1) * d1.var(ddof=1) + (n2 - 1) * d2.var(ddof=1)) / (n1 + n2 - 2)))
               if n1 >= 2 and n2 >= 2 else np.nan)
    diff = float(d1.mean() - d2.mean()) if n1 and n2 else np.nan
    cd = diff / sd_pool if np.isfinite(sd_pool) and sd_pool > 0 else np.nan
    mde_d = minimal_detectable_effect(n1, n2, alpha=alpha, power=power)
    rows.append({"stratum": "TF vs non-TF", "n": n1 + n2, "mean_a": np.nan, "mean_b": np.nan, "delta": diff,
                 "sd": sd_pool, "p": p, "cohens_d": cd, "mde_d": mde_d,
                 "mde": mde_d * sd_pool if np.isfinite(sd_pool) else np.nan,
                 "power_observed": achieved_power(cd, n1, n2, alpha=alpha), "perturbations": ""})
    out = pd.DataFrame(rows)
    out.insert(0, "b", b)
    out.insert(0, "a", a)
    out["metric"] = metric
    return out


def tf_stratification_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`tf_stratification` (exploratory): the TF and non-TF strata and their difference
    (the pooled ``all`` row repeats the pipeline's perturbation-first comparison and is not registered)."""
    rows = []
    for r in records(table[table["stratum"] != "all"]):
        if r.stratum == "TF vs non-TF":
            hyp, test = f"{r.a} - {r.b} differs between TF and non-TF knock-outs", "Mann-Whitney (two-sided)"
        else:
            hyp, test = f"{r.a} ranks {r.stratum} knock-out targets differently from {r.b}", "Wilcoxon signed-rank"
        rows.append(registry_row("TF stratification", hyp, test, r.p, r.delta, r.n, effect=f"mean delta {r.metric}",
                                 statistic=r.cohens_d))
    return rows
