"""The HVG-protocol confound and the 27-configuration sensitivity scan of the perturbation-first verdict.

* :func:`hvg_protocol` - the gene set decides which knock-outs can be ranked at all. The anchor forces the
  perturbed genes into the 2,000 highly variable genes (HVGs); pure HVGs keep only the perturbed genes that are
  variable by themselves. Both protocols are run (edge scores recomputed on each gene set, since the gene set
  is the model's input for value models), and the perturbations rankable under both are compared.
* :func:`sensitivity_scan` - the verdict's key statistics (mean perturbation AUROC of each score, the tested
  score minus the best gene-level baseline with its bootstrap CI, whether it beats every baseline) over
  ``|log2FC|`` threshold x number of control cells x number of genes (3 x 3 x 3 = 27 configurations). Edge
  scores depend on the cells and genes only (9 computations); the threshold re-labels the DE targets of the
  same tests. Control cells are nested subsamples (one seeded order); genes are the HVGs of those cells with the
  perturbed genes forced in. The figure is :func:`perturblab.interpret.pl.sensitivity_heatmap`.

``score_fn(ctrl, genes)`` supplies the edge scores of a configuration: in the pipeline, attention of the
tested layer re-extracted from those cells plus ``|Spearman|``; in tests, correlation only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ._types import records
from .baselines import baseline_scores, gene_features
from .edges import EdgeScores, log_normalise, select_genes
from .perturbation import compare_scores, de_targets, perturbation_auroc
from .registry_rows import registry_row

__all__ = ["SCAN_LFC", "ScoreFn", "default_scan_levels", "hvg_gene_sets", "hvg_protocol", "hvg_protocol_rows",
           "sensitivity_scan", "sensitivity_scan_rows"]

ScoreFn = Callable[[object, np.ndarray], list[EdgeScores]]

#: Default |log2FC| thresholds of the scan (the anchor's 0.5 in the middle).
SCAN_LFC = (0.25, 0.5, 1.0)


def default_scan_levels(n_cells: int, n_genes: int) -> dict[str, tuple]:
    """The scan grid around a run's setting: thresholds :data:`SCAN_LFC`, cells and genes at 1/4, 1/2 and 1 of
    the run's ``n_cells`` / ``n_genes`` (pass the numbers actually used, e.g. 2,000 cells and 299 genes)."""
    def levels(n: int) -> tuple[int, ...]:
        return tuple(sorted({max(20, n // 4), max(20, n // 2), int(n)}))

    return {"lfc_thresholds": SCAN_LFC, "n_cells": levels(n_cells), "n_genes": levels(n_genes)}


def _select(ctrl, n_genes: int, forced) -> np.ndarray:

    return np.asarray(select_genes(ctrl, n_genes, forced=forced))


def hvg_gene_sets(ctrl, n_genes: int, perturbed: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"forced": HVGs + perturbed genes, "pure": HVGs only}`` of the control cells (raw counts)."""
    return {"forced": _select(ctrl, n_genes, list(perturbed)), "pure": _select(ctrl, n_genes, [])}


def _evaluate(adata, ctrl, genes: np.ndarray, score_fn: ScoreFn, perturbation_key: str, control: str,
              alpha: float) -> tuple[list[EdgeScores], pd.DataFrame]:
    """(edge scores + gene-level baselines, DE table without a fold-change threshold) on one gene set."""
    pos = pd.Index(np.asarray(ctrl.var_names).astype(str)).get_indexer(genes)
    X = ctrl.X
    lib = np.asarray(X.sum(axis=1)).ravel()
    Xg = log_normalise(X[:, pos], library_size=lib)
    base = baseline_scores(gene_features(Xg, genes))
    scores = [*score_fn(ctrl, genes), *base]
    de = de_targets(adata, perturbation_key, control, genes=list(genes), lfc_threshold=0.0, alpha=alpha)
    return scores, de


def _per_pert(scores, de: pd.DataFrame, lfc: float, alpha: float) -> pd.DataFrame:
    d = de.assign(is_target=(de["padj"] < alpha) & (de["log2fc"].abs() > lfc))
    return perturbation_auroc(scores, d)


def hvg_protocol(adata, ctrl, n_genes: int, score_fn: ScoreFn, perturbation_key: str = "perturbation",
                 control: str = "control", lfc_threshold: float = 0.5, alpha: float = 0.05,
                 perturbed: Sequence[str] | None = None) -> pd.DataFrame:
    """Perturbation-first results under forced-in vs pure HVGs.

    Parameters
    ----------
    adata
        All cells x genes, raw counts (DE against the control cells).
    ctrl
        The control cells used for the edge scores (raw counts).
    n_genes
        Number of HVGs.
    score_fn
        ``(ctrl, genes) -> [EdgeScores]`` (module docstring); gene-level baselines are added here.
    perturbation_key, control, lfc_threshold, alpha
        DE settings (:func:`~perturblab.interpret.perturbation.de_targets`).
    perturbed
        Knocked-out genes (default: every non-control value of ``perturbation_key``).

    Returns
    -------
    Rows per (protocol, score) for ``protocol`` in ``forced``, ``pure``: ``n_genes_used, n_perturbed_in_genes,
    n_rankable, mean_auroc`` (over that protocol's rankable knock-outs); and ``forced - pure`` rows over the
    knock-outs rankable under both (``n_rankable`` = their number, ``mean_auroc`` = mean difference, ``p`` =
    Wilcoxon signed-rank, ``perturbations`` = their names).

    Examples
    --------
    >>> hvg_protocol(adata, ctrl, 2000, lambda c, g: [correlation_scores(...)])  # doctest: +SKIP
    """
    labels = adata.obs[perturbation_key].astype(str)
    if perturbed is None:
        perturbed = sorted(set(labels) - {control})
    sets = hvg_gene_sets(ctrl, n_genes, perturbed)
    per = {}
    rows = []
    for protocol, genes in sets.items():
        scores, de = _evaluate(adata, ctrl, genes, score_fn, perturbation_key, control, alpha)
        pp = _per_pert(scores, de, lfc_threshold, alpha)
        per[protocol] = pp
        kinds = {s.name: s.kind for s in scores}
        for s in scores:
            g = pp[pp["score"] == s.name].dropna(subset=["auroc"]) if len(pp) else pp
            rows.append({"protocol": protocol, "score": s.name, "kind": kinds[s.name], "n_genes_used": int(genes.size),
                         "n_perturbed_in_genes": int(np.isin(perturbed, genes).sum()),
                         "n_rankable": int(g["perturbation"].nunique()) if len(g) else 0,
                         "mean_auroc": float(g["auroc"].mean()) if len(g) else np.nan, "p": np.nan,
                         "perturbations": ", ".join(sorted(g["perturbation"].unique())) if len(g) else ""})
    from scipy import stats

    a, b = per["forced"], per["pure"]
    if len(a) and len(b):
        for s in a["score"].unique():
            x = a[a["score"] == s].set_index("perturbation")["auroc"]
            y = b[b["score"] == s].set_index("perturbation")["auroc"]
            both = pd.concat([x, y], axis=1, join="inner").dropna()
            d = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
            p = float(stats.wilcoxon(d).pvalue) if d.size >= 2 and np.any(d != 0) else (1.0 if d.size else np.nan)
            rows.append({"protocol": "forced - pure", "score": s, "kind": a.loc[a["score"] == s, "kind"].iloc[0],
                         "n_genes_used": np.nan, "n_perturbed_in_genes": np.nan, "n_rankable": int(d.size),
                         "mean_auroc": float(d.mean()) if d.size else np.nan, "p": p,
                         "perturbations": ", ".join(both.index.astype(str))})
    return pd.DataFrame(rows)


def hvg_protocol_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`hvg_protocol` (exploratory): forced vs pure HVGs per score, on shared knock-outs."""
    return [registry_row("HVG protocol", f"{r.score} ranks knock-out targets differently with perturbed genes forced "
                         "into the HVGs than with pure HVGs", "Wilcoxon signed-rank", r.p, r.mean_auroc, r.n_rankable,
                         effect="mean delta AUROC (forced - pure)")
            for r in records(table[table["protocol"] == "forced - pure"])]


def sensitivity_scan(adata, ctrl, score_fn: ScoreFn, tested: str | None = None,
                     perturbation_key: str = "perturbation", control: str = "control",
                     lfc_thresholds: Sequence[float] = SCAN_LFC, n_cells: Sequence[int] = (500, 1000, 2000),
                     n_genes: Sequence[int] = (500, 1000, 2000), alpha: float = 0.05, n_boot: int = 200,
                     random_state: int = 0) -> pd.DataFrame:
    """Key perturbation-first statistics over ``|log2FC|`` threshold x control cells x genes.

    Parameters
    ----------
    adata
        All cells x genes, raw counts.
    ctrl
        The pool of control cells (raw counts); ``n_cells`` are nested subsamples of it.
    score_fn
        ``(ctrl_subset, genes) -> [EdgeScores]``.
    tested
        Name of the score under test (default: the first ``attention`` score, else the first score).
    lfc_thresholds, n_cells, n_genes
        The grid (:func:`default_scan_levels` builds one around a run's setting); sizes above what the data have
        are capped (``n_cells_used``, ``n_genes_used`` report what was used).
    alpha, n_boot, random_state
        DE FDR level, bootstrap of the CIs, seed of the cell order.

    Returns
    -------
    One row per (lfc_threshold, n_cells, n_genes, score): ``n_cells_used, n_genes_used, score, kind, tested,
    n_rankable, mean_n_targets, mean_auroc, best_baseline, delta_vs_best_baseline, ci_low, ci_high, p``
    (paired Wilcoxon vs the best baseline) and ``beats_all_baselines`` (delta > 0 with CI low > 0 against every
    baseline; criterion 1 of the verdict). Baseline rows have NaN deltas.
    """
    labels = adata.obs[perturbation_key].astype(str)
    perturbed = sorted(set(labels) - {control})
    order = np.random.default_rng(random_state).permutation(ctrl.n_obs)
    rows = []
    for nc in sorted({min(int(n), ctrl.n_obs) for n in n_cells}):
        sub = ctrl[np.sort(order[:nc])].copy()
        for ng in sorted({min(int(n), ctrl.n_vars) for n in n_genes}):
            genes = _select(sub, ng, perturbed)
            scores, de = _evaluate(adata, sub, genes, score_fn, perturbation_key, control, alpha)
            names = [s.name for s in scores]
            name_t = tested or next((s.name for s in scores if s.kind == "attention"), names[0])
            if name_t not in names:
                raise InputError(f"tested score {name_t!r} is not among the scores of score_fn ({names})")
            kinds = {s.name: s.kind for s in scores}
            base_names = [s.name for s in scores if s.kind == "baseline"]
            for lfc in lfc_thresholds:
                pp = _per_pert(scores, de, lfc, alpha)
                if pp.empty:
                    continue
                means = pp.groupby("score")["auroc"].mean()
                best = str(means[base_names].idxmax()) if means[base_names].notna().any() else None
                targets = pp.drop_duplicates("perturbation")["n_targets"]
                for s in names:
                    row = {"lfc_threshold": float(lfc), "n_cells": nc, "n_genes": ng, "n_cells_used": int(sub.n_obs),
                           "n_genes_used": int(genes.size), "score": s, "kind": kinds[s], "tested": s == name_t,
                           "n_rankable": int(pp.loc[pp["score"] == s, "auroc"].notna().sum()),
                           "mean_n_targets": float(targets.mean()), "mean_auroc": float(means.get(s, np.nan)),
                           "best_baseline": best, "delta_vs_best_baseline": np.nan, "ci_low": np.nan,
                           "ci_high": np.nan, "p": np.nan, "beats_all_baselines": np.nan}
                    if kinds[s] != "baseline" and best is not None:
                        c = compare_scores(pp, s, best, n_boot=n_boot, random_state=random_state)
                        allc = [compare_scores(pp, s, b, n_boot=n_boot, random_state=random_state) for b in base_names]
                        row.update(delta_vs_best_baseline=c["delta"], ci_low=c["ci_low"], ci_high=c["ci_high"],
                                   p=c["p"], beats_all_baselines=bool(all(x["delta"] > 0 and x["ci_low"] > 0
                                                                          for x in allc)))
                    rows.append(row)
    return pd.DataFrame(rows)


def sensitivity_scan_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`sensitivity_scan` (exploratory): the tested score vs the best baseline in each
    configuration."""
    return [registry_row("sensitivity scan", f"{r.score} vs {r.best_baseline} at |log2FC| > {r.lfc_threshold}, "
                         f"{r.n_cells_used} control cells, {r.n_genes_used} genes", "Wilcoxon signed-rank", r.p,
                         r.delta_vs_best_baseline, r.n_rankable, effect="mean delta AUROC vs best baseline")
            for r in records(table[table["tested"].astype(bool)])]
