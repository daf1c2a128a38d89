"""Per-TF confidence intervals and the decomposition of reference recovery into degree, expression and residual parts.

* :func:`per_tf_recovery` - one AUROC per transcription factor (its reference targets among all its candidate
  targets) with a stratified bootstrap CI (targets and non-targets resampled apart) and a one-sided
  Mann-Whitney p. A pooled AUROC can come from a few hub TFs; the per-TF view shows how many TFs are recovered.
* :func:`recovery_decomposition` - how much of ``AUROC - 0.5`` is explained by the degree of the genes in the
  reference (hubs), by their expression (mean, variance, detection), and what is left. The score is
  residualised step by step with cross-fitted regressions (:func:`~perturblab.interpret.confounds.residualise`)
  on the source and target features: first degree, then degree + expression. With ``a0`` the raw AUROC, ``a1``
  after removing degree and ``a2`` after removing degree and expression, the parts are ``degree = a0 - a1``,
  ``expression = a1 - a2``, ``residual = a2 - 0.5``, summing exactly to ``a0 - 0.5``. The order matters when
  degree and expression are correlated (it is configurable). The paper names the decomposition without its
  procedure; sequential residualisation is the standard additive one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError
from ._types import records
from .confounds import residualise
from .edges import EdgeScores
from .metrics import auroc, auroc_ranks
from .references import Reference, candidate_edges, candidate_scores
from .registry_rows import registry_row

__all__ = [
    "per_tf_recovery",
    "per_tf_recovery_rows",
    "recovery_decomposition",
    "recovery_decomposition_rows",
    "reference_degree",
]


def per_tf_recovery(scores: Sequence[EdgeScores], reference: Reference, tfs: Iterable[str] | None = None,
                    min_targets: int = 3, n_boot: int = 1000, confidence: float = 0.95,
                    random_state: int = 0) -> pd.DataFrame:
    """AUROC of each TF's reference targets among its candidate targets, with a bootstrap CI.

    Parameters
    ----------
    scores
        Edge scores over the same genes; TF ``s`` ranks its candidates by ``S[s, :]``.
    reference
        A directed reference (TRRUST, DoRothEA, CollecTRI).
    tfs
        TF list restricting the sources (default: the reference's sources).
    min_targets
        TFs with fewer reference targets among the genes are left out (listed in no row).
    n_boot, confidence
        Stratified percentile bootstrap (targets and non-targets resampled apart, sizes kept).
    random_state
        Seed of the bootstrap.

    Returns
    -------
    One row per (score, TF): ``score, kind, layer, head, reference, tf, n_candidates, n_targets, auroc, ci_low,
    ci_high, p`` (one-sided Mann-Whitney, targets > non-targets).

    Raises
    ------
    InputError
        For an undirected reference.
    """
    if not reference.directed:
        raise InputError(f"per-TF recovery needs a directed reference; {reference.name!r} is undirected")
    if not scores:
        raise InputError("no edge scores given")
    genes = scores[0].genes
    rows, cols, lab = candidate_edges(genes, reference, tfs)
    alpha = (1 - confidence) / 2
    out = []
    for src in np.unique(rows):
        sel = rows == src
        y = lab[sel]
        if y.sum() < min_targets or y.all():
            continue
        pos_i, neg_i = np.flatnonzero(y), np.flatnonzero(~y)
        rng = np.random.default_rng([random_state, int(src)])
        bp = pos_i[rng.integers(pos_i.size, size=(n_boot, pos_i.size))]
        bn = neg_i[rng.integers(neg_i.size, size=(n_boot, neg_i.size))]
        boot_idx = np.hstack([bp, bn])
        boot_lab = np.zeros(boot_idx.shape, dtype=bool)
        boot_lab[:, : pos_i.size] = True
        for s in scores:
            v = s.matrix[src, cols[sel]]
            a = auroc(v, y)
            b = np.atleast_1d(auroc_ranks(v[boot_idx], boot_lab)) if n_boot else np.array([np.nan])
            lo, hi = (float(q) for q in np.nanquantile(b, [alpha, 1 - alpha])) if n_boot else (np.nan, np.nan)
            p = float(stats.mannwhitneyu(v[y], v[~y], alternative="greater").pvalue)
            out.append({**s.describe(), "reference": reference.name, "tf": str(genes[src]),
                        "n_candidates": int(y.size), "n_targets": int(y.sum()), "auroc": a, "ci_low": lo,
                        "ci_high": hi, "p": p})
    cols_out = ["score", "kind", "layer", "head", "reference", "tf", "n_candidates", "n_targets", "auroc", "ci_low",
                "ci_high", "p"]
    return pd.DataFrame(out, columns=cols_out)


def per_tf_recovery_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`per_tf_recovery`: one exploratory test per (score, TF)."""
    return [registry_row("per-TF recovery", f"{r.score} ranks {r.tf}'s {r.reference} targets first",
                         "Mann-Whitney (one-sided)", r.p, r.auroc, r.n_candidates, effect="AUROC")
            for r in records(table)]


def reference_degree(genes, reference: Reference) -> pd.DataFrame:
    """Out- and in-degree of each gene in the whole reference (all its edges, not only those among ``genes``).

    Returns
    -------
    DataFrame indexed by gene with ``out_degree`` and ``in_degree`` (for an undirected reference both are the
    number of partners).
    """
    e = reference.edges
    if not reference.directed:
        e = pd.concat([e, e.rename(columns={"source": "target", "target": "source"})]).drop_duplicates()
    out_deg, in_deg = e["source"].value_counts(), e["target"].value_counts()
    g = pd.Index(np.asarray(genes).astype(str), name="gene")
    return pd.DataFrame({"out_degree": out_deg.reindex(g).fillna(0).to_numpy(float),
                         "in_degree": in_deg.reindex(g).fillna(0).to_numpy(float)}, index=g)


def recovery_decomposition(scores: Sequence[EdgeScores], reference: Reference, features: pd.DataFrame,
                           tfs: Iterable[str] | None = None, order: Sequence[str] = ("degree", "expression"),
                           model: str = "ols", n_splits: int = 5, random_state: int = 0) -> pd.DataFrame:
    """Split ``AUROC - 0.5`` of each score on ``reference`` into degree, expression and residual parts.

    Parameters
    ----------
    scores
        Edge scores over the same genes.
    reference
        Reference network; its degrees (:func:`reference_degree`) are the "degree" features.
    features
        :func:`~perturblab.interpret.baselines.gene_features` of the genes (the "expression" features).
    tfs
        TF list for directed references.
    order
        Order in which the feature groups are removed (the first gets the shared part).
    model
        ``"ols"`` (default: fast, additive) or ``"gbdt"`` for the cross-fitted regressions.
    n_splits, random_state
        Cross-fitting folds and seed.

    Returns
    -------
    One row per (score, part): ``score, kind, layer, head, reference, part`` (``total``, the groups of
    ``order``, ``residual``), ``auroc_before``, ``auroc_after`` and ``contribution`` (AUROC points; the parts
    sum to the ``total`` row's contribution ``AUROC - 0.5``), ``fraction`` of the total, ``n_candidates`` and ``p``
    (residual row only: one-sided Mann-Whitney of the fully residualised score, reference edges > the rest).
    """
    if sorted(order) != ["degree", "expression"]:
        raise InputError(f"order must be a permutation of ('degree', 'expression'), got {tuple(order)}")
    genes = scores[0].genes
    groups = {"degree": reference_degree(genes, reference), "expression": features.loc[genes]}
    r, c, lab = candidate_edges(genes, reference, tfs)
    rows = []
    for s in scores:
        def _auc(m: np.ndarray) -> float:
            return auroc(candidate_scores(m, r, c, reference.directed), lab)

        a = [_auc(s.matrix)]
        used: list[pd.DataFrame] = []
        last = s.matrix
        for name in order:
            used.append(groups[name])
            last = residualise(s, pd.concat(used, axis=1), model=model, n_splits=n_splits,
                               random_state=random_state).matrix
            a.append(_auc(last))
        v = candidate_scores(last, r, c, reference.directed)
        p_res = (float(stats.mannwhitneyu(v[lab], v[~lab], alternative="greater").pvalue)
                 if lab.any() and not lab.all() else np.nan)
        total = a[0] - 0.5
        parts = [("total", a[0], a[0], total)]
        parts += [(name, a[i], a[i + 1], a[i] - a[i + 1]) for i, name in enumerate(order)]
        parts.append(("residual", a[-1], 0.5, a[-1] - 0.5))
        for part, before, after, contrib in parts:
            rows.append({**s.describe(), "reference": reference.name, "part": part, "auroc_before": before,
                         "auroc_after": after, "contribution": contrib,
                         "fraction": contrib / total if total != 0 else np.nan, "n_candidates": int(lab.size),
                         "p": p_res if part == "residual" else np.nan})
    return pd.DataFrame(rows)


def recovery_decomposition_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`recovery_decomposition`: per score, the residual part (recovery left after degree
    and expression are removed) tested against 0.5 (exploratory)."""
    return [registry_row("recovery decomposition",
                         f"{r.score} recovers {r.reference} beyond reference degree and gene expression",
                         "Mann-Whitney (one-sided) on residualised scores", r.p, r.contribution, r.n_candidates,
                         effect="residual AUROC - 0.5")
            for r in records(table[table["part"] == "residual"])]
