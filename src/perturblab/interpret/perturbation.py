"""Perturbation-first evaluation (Kendiukhov 2026, section 4).

For each knocked-out gene ``g`` its DE targets are called against the control cells
(Welch t-test on log1p-normalised expression, ``|log2FC| > 0.5``, BH FDR 0.05 over genes).
Each edge score then ranks the candidate targets of ``g`` by ``S[g, :]`` (all genes except
``g``); the per-perturbation AUROC measures how well it finds the real targets. Scores are
compared with a paired Wilcoxon signed-rank test and a bootstrap CI over perturbations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import check_counts, check_obs_key, check_values_present
from .edges import EdgeScores, log_normalise
from .metrics import auprc, auroc

__all__ = ["de_targets", "perturbation_auroc", "compare_scores", "bootstrap_mean_ci"]


def de_targets(
    adata,
    perturbation_key: str = "perturbation",
    control: str = "control",
    perturbations: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    lfc_threshold: float = 0.5,
    alpha: float = 0.05,
    min_cells: int = 10,
) -> pd.DataFrame:
    """Differential expression of every perturbation against the control cells.

    Parameters
    ----------
    adata
        Cells x genes **raw counts**; normalised here to 1e4 per cell and ``log1p``.
    perturbation_key
        ``obs`` column naming each cell's perturbation (the knocked-out gene) or ``control``.
    control
        The value of ``perturbation_key`` for control cells.
    perturbations
        Perturbations to test (default: every non-control value with >= ``min_cells`` cells).
    genes
        Genes to test (default: all); library sizes always use all genes of ``adata``.
    lfc_threshold, alpha
        A gene is a DE target when ``|log2FC| > lfc_threshold`` and BH-adjusted p < ``alpha``.
        ``log2FC = log2((mean_pert + 1e-9) / (mean_ctrl + 1e-9))`` on normalised (not log) expression.
    min_cells
        Minimum cells per group.

    Returns
    -------
    Tidy table ``perturbation, gene, log2fc, t, p, padj, is_target, n_cells, n_control``; the knocked-out
    gene itself is left out of its own test (it is the perturbed gene, not a target).

    Raises
    ------
    KeyError
        If ``perturbation_key`` is missing. ``ValueError`` for unknown perturbations, too few cells
        or negative counts.
    """
    from statsmodels.stats.multitest import multipletests

    check_obs_key(adata, perturbation_key, "perturbation")
    check_counts(adata.X, "adata.X")
    labels = adata.obs[perturbation_key].astype(str).to_numpy()
    check_values_present([control], labels, "control label")
    counts = pd.Series(labels).value_counts()
    if perturbations is None:
        perturbations = sorted(p for p, n in counts.items() if p != control and n >= min_cells)
    else:
        check_values_present(list(perturbations), labels, "perturbation")
    ctrl = labels == control
    if ctrl.sum() < min_cells:
        raise ValueError(f"only {int(ctrl.sum())} control cells (< min_cells={min_cells})")
    var = np.asarray(adata.var_names).astype(str)
    if genes is None:
        genes = var
    else:
        check_values_present(list(genes), var, "gene")
        genes = np.asarray(genes).astype(str)
    col = pd.Index(var).get_indexer(genes)
    library = np.asarray(adata.X.sum(axis=1)).ravel()
    X = log_normalise(adata.X[:, col], library_size=library)
    mean_c = np.expm1(X[ctrl]).mean(axis=0)
    out = []
    for p in perturbations:
        sel = labels == p
        if sel.sum() < min_cells:
            raise ValueError(f"perturbation {p!r} has {int(sel.sum())} cells (< min_cells={min_cells})")
        keep = genes != p
        with np.errstate(invalid="ignore", divide="ignore"):
            t, pv = stats.ttest_ind(X[sel][:, keep], X[ctrl][:, keep], equal_var=False, axis=0)
        pv = np.where(np.isnan(pv), 1.0, pv)
        t = np.where(np.isnan(t), 0.0, t)
        lfc = np.log2((np.expm1(X[sel][:, keep]).mean(axis=0) + 1e-9) / (mean_c[keep] + 1e-9))
        padj = multipletests(pv, method="fdr_bh")[1]
        out.append(
            pd.DataFrame(
                {
                    "perturbation": p,
                    "gene": genes[keep],
                    "log2fc": lfc,
                    "t": t,
                    "p": pv,
                    "padj": padj,
                    "is_target": (padj < alpha) & (np.abs(lfc) > lfc_threshold),
                    "n_cells": int(sel.sum()),
                    "n_control": int(ctrl.sum()),
                }
            )
        )
    if not out:
        raise ValueError(f"no perturbation with at least {min_cells} cells in {perturbation_key!r}")
    return pd.concat(out, ignore_index=True)


def perturbation_auroc(scores: Sequence[EdgeScores], de: pd.DataFrame) -> pd.DataFrame:
    """Per-perturbation AUROC/AUPRC of each edge score at ranking the DE targets.

    Parameters
    ----------
    scores
        Edge scores over the same genes; perturbation ``g`` is ranked by row ``S[g, :]``.
    de
        Output of :func:`de_targets`.

    Returns
    -------
    One row per (score, perturbation): ``score, kind, layer, head, perturbation, n_candidates,
    n_targets, auroc, auprc``. Only perturbations whose gene is among the score genes can be
    ranked; the others have no row (their DE results stay in ``de``). AUROC is NaN when a
    perturbation has no DE target among the candidates.
    """
    if not scores:
        raise ValueError("no edge scores given")
    genes = scores[0].genes
    index = {g: i for i, g in enumerate(genes)}
    rows = []
    for p, grp in de.groupby("perturbation", sort=True):
        if p not in index:
            continue
        tgt = set(grp.loc[grp["is_target"], "gene"])
        cand = np.array([i for i, g in enumerate(genes) if g != p])
        lab = np.array([genes[i] in tgt for i in cand])
        for s in scores:
            v = s.matrix[index[p], cand]
            rows.append(
                {**s.describe(), "perturbation": p, "n_candidates": int(cand.size), "n_targets": int(lab.sum()),
                 "auroc": auroc(v, lab), "auprc": auprc(v, lab)}
            )
    return pd.DataFrame(rows)


def bootstrap_mean_ci(values, n_boot: int = 2000, confidence: float = 0.95, random_state: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (NaN for fewer than 2 finite values)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan"), float("nan")
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])
    res = stats.bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=confidence, method="percentile",
                          random_state=np.random.default_rng(random_state))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_scores(per_pert: pd.DataFrame, a: str, b: str, metric: str = "auroc", n_boot: int = 2000,
                   random_state: int = 0) -> dict:
    """Paired comparison of scores ``a`` and ``b`` over perturbations (both with a finite metric).

    Returns
    -------
    dict with ``a, b, n, mean_a, mean_b, delta`` (mean of a - b), ``ci_low, ci_high`` (bootstrap over
    perturbations), ``statistic, p`` (two-sided Wilcoxon signed-rank; p = 1 when all differences are 0).
    """
    wide = per_pert.pivot_table(index="perturbation", columns="score", values=metric)
    for s in (a, b):
        if s not in wide.columns:
            raise KeyError(f"score {s!r} not in the per-perturbation table (have: {', '.join(map(str, wide.columns))})")
    pair = wide[[a, b]].dropna()
    d = (pair[a] - pair[b]).to_numpy()
    out = {"a": a, "b": b, "n": int(d.size), "mean_a": float(pair[a].mean()), "mean_b": float(pair[b].mean()),
           "delta": float(d.mean()) if d.size else float("nan")}
    out["ci_low"], out["ci_high"] = bootstrap_mean_ci(d, n_boot=n_boot, random_state=random_state)
    if d.size == 0:
        out.update(statistic=float("nan"), p=float("nan"))
    elif np.all(d == 0):
        out.update(statistic=0.0, p=1.0)
    else:
        w = stats.wilcoxon(d)
        out.update(statistic=float(w.statistic), p=float(w.pvalue))
    return out
