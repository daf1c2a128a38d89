"""TRRUST circularity: the direction-known subset (Activation / Repression) evaluated apart.

TRRUST is text-mined from the literature, and part of that literature called regulations from expression
(co-expression, expression after perturbation). Recovering TRRUST with an expression-derived score is then
partly circular. Edges whose mode is known (``Activation`` or ``Repression``) come more often from mechanistic
experiments than the ``Unknown`` ones, so recovery is evaluated on each subset apart:

* ``all`` - every TRRUST pair;
* ``direction-known`` - pairs with at least one Activation or Repression row;
* ``activation`` / ``repression`` - pairs with an Activation (resp. Repression) row;
* ``unknown`` - pairs with Unknown rows only.

Candidates are those of :func:`~perturblab.interpret.references.candidate_edges` (TF sources x genes); for a
subset, the TRRUST pairs outside the subset are removed from the candidates (they are neither positives nor
negatives), so each subset is compared against non-TRRUST pairs only. :func:`sign_agreement` checks, for a
signed score (Spearman rho), that activations are positively and repressions negatively correlated.
The paper's exact procedure is not published; this is the standard subset analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError, MissingKeyError
from ._types import records
from .edges import EdgeScores
from .metrics import ranking_metrics
from .references import Reference, candidate_edges
from .registry_rows import registry_row

__all__ = [
    "SUBSETS",
    "direction_recovery",
    "direction_recovery_rows",
    "sign_agreement",
    "sign_agreement_rows",
    "trrust_subsets",
]

SUBSETS = ("all", "direction-known", "activation", "repression", "unknown")


def trrust_subsets(trrust: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The TRRUST pair subsets (``source, target``) by mode of regulation (see the module docstring).

    Parameters
    ----------
    trrust
        :func:`perturblab.datasets.trrust` table (``source, target, regulation``).
    """
    if {"source", "target", "regulation"} - set(trrust.columns):
        raise MissingKeyError("TRRUST table needs columns 'source', 'target' and 'regulation'")
    t = trrust.astype({"source": str, "target": str, "regulation": str})
    modes = t.groupby(["source", "target"])["regulation"].agg(set)
    act = modes.map(lambda s: "Activation" in s)
    rep = modes.map(lambda s: "Repression" in s)
    known = act | rep
    sel = {"all": np.ones(len(modes), bool), "direction-known": known.to_numpy(), "activation": act.to_numpy(),
           "repression": rep.to_numpy(), "unknown": (~known).to_numpy()}
    idx = modes.index.to_frame(index=False)
    return {k: idx[v].reset_index(drop=True) for k, v in sel.items()}


def _labels(genes: np.ndarray, rows: np.ndarray, cols: np.ndarray, pairs: pd.DataFrame) -> np.ndarray:
    """Membership of the candidates ``(genes[rows], genes[cols])`` in ``pairs`` (``source, target``)."""
    index = {g: i for i, g in enumerate(genes)}
    e = pairs[pairs["source"].isin(index) & pairs["target"].isin(index)]
    pos = np.zeros((genes.size, genes.size), dtype=bool)
    pos[e["source"].map(index).to_numpy(int), e["target"].map(index).to_numpy(int)] = True
    return pos[rows, cols]


def _mwu_p(v: np.ndarray, lab: np.ndarray) -> float:
    if not lab.any() or lab.all():
        return float("nan")
    return float(stats.mannwhitneyu(v[lab], v[~lab], alternative="greater").pvalue)


def direction_recovery(scores: Sequence[EdgeScores], trrust: pd.DataFrame, tfs: Iterable[str] | None = None,
                       subsets: Sequence[str] = SUBSETS) -> pd.DataFrame:
    """Recovery of each TRRUST subset by each edge score.

    Parameters
    ----------
    scores
        Edge scores over the same genes (TF as query: ``S[tf, target]``).
    trrust
        :func:`perturblab.datasets.trrust` table.
    tfs
        TF list (Lambert 2018) for the candidate sources; None: TRRUST's own sources.
    subsets
        Subsets to evaluate (:data:`SUBSETS`).

    Returns
    -------
    One row per (score, subset): ``score, kind, layer, head, subset, n_candidates, n_positive, auroc, auprc, epr,
    topk_f1, p`` (one-sided Mann-Whitney of positives > negatives, the test of AUROC > 0.5) and, per score,
    ``known_vs_unknown_p`` on the ``direction-known`` row: Mann-Whitney of the scores of direction-known vs
    Unknown pairs (two-sided; does the score rank the two kinds of TRRUST edge differently?).

    Examples
    --------
    >>> direction_recovery([best_att, corr], datasets.trrust(), tfs=tfs)  # doctest: +SKIP
    """
    bad = [s for s in subsets if s not in SUBSETS]
    if bad:
        raise InputError(f"unknown TRRUST subset(s) {bad}; choose from {', '.join(SUBSETS)}")
    if not scores:
        raise InputError("no edge scores given")
    genes = scores[0].genes
    parts = trrust_subsets(trrust)
    r_all, c_all, lab_all = candidate_edges(genes, Reference("trrust", parts["all"]), tfs)
    rows = []
    for s in scores:
        if not np.array_equal(s.genes, genes):
            raise InputError(f"edge scores {s.name!r} are over different genes than {scores[0].name!r}")
        v_all = s.matrix[r_all, c_all]
        for name in subsets:
            lab = _labels(genes, r_all, c_all, parts[name])
            keep = lab | ~lab_all  # drop TRRUST pairs outside the subset
            v, y = v_all[keep], lab[keep]
            row = {**s.describe(), "subset": name, **ranking_metrics(v, y), "p": _mwu_p(v, y),
                   "known_vs_unknown_p": np.nan}
            if name == "direction-known":
                lab_unk = _labels(genes, r_all, c_all, parts["unknown"])
                a, b = v_all[lab], v_all[lab_unk]
                if a.size and b.size:
                    row["known_vs_unknown_p"] = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
            rows.append(row)
    cols = ["score", "kind", "layer", "head", "subset", "n_candidates", "n_positive", "auroc", "auprc", "epr",
            "topk_f1", "p", "known_vs_unknown_p"]
    return pd.DataFrame(rows).reindex(columns=cols)


def direction_recovery_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`direction_recovery`: the AUROC > 0.5 test per (score, subset), and per score the
    direction-known vs Unknown comparison (all exploratory)."""
    rows = []
    for r in records(table):
        rows.append(registry_row("TRRUST circularity", f"{r.score} recovers TRRUST ({r.subset}) edges",
                                 "Mann-Whitney (one-sided)", r.p, r.auroc, r.n_candidates, effect="AUROC"))
        if r.subset == "direction-known" and np.isfinite(r.known_vs_unknown_p):
            rows.append(registry_row("TRRUST circularity",
                                     f"{r.score} scores direction-known TRRUST edges differently from Unknown ones",
                                     "Mann-Whitney (two-sided)", r.known_vs_unknown_p, r.auroc, r.n_positive,
                                     effect="AUROC on direction-known edges"))
    return rows


def sign_agreement(signed: EdgeScores, trrust: pd.DataFrame) -> pd.DataFrame:
    """Do activations have positive and repressions negative signed scores (e.g. Spearman rho)?

    Parameters
    ----------
    signed
        A signed score (``spearman_matrix`` of the control cells, not its absolute value).
    trrust
        :func:`perturblab.datasets.trrust` table; pairs listed as both Activation and Repression are left out.

    Returns
    -------
    Rows ``activation``, ``repression`` and ``direction-known`` (both, signs flipped for repressions):
    ``subset, score, n_edges, n_agree, fraction_agree, p`` (two-sided binomial test of fraction 0.5; pairs with
    score exactly 0 are left out), ``mean_signed`` (mean score, repressions negated on the pooled row).
    """
    parts = trrust_subsets(trrust)
    both = parts["activation"].merge(parts["repression"], on=["source", "target"])
    index = {g: i for i, g in enumerate(signed.genes)}
    vals = {}
    for name, sign in (("activation", 1.0), ("repression", -1.0)):
        e = parts[name].merge(both, on=["source", "target"], how="left", indicator=True)
        e = e[(e["_merge"] == "left_only") & e["source"].isin(index) & e["target"].isin(index)
              & (e["source"] != e["target"])]
        v = signed.matrix[e["source"].map(index).to_numpy(int), e["target"].map(index).to_numpy(int)] * sign
        vals[name] = v[v != 0]
    vals["direction-known"] = np.concatenate([vals["activation"], vals["repression"]])
    rows = []
    for name, v in vals.items():
        n, k = int(v.size), int((v > 0).sum())
        rows.append({"subset": name, "score": signed.name, "n_edges": n, "n_agree": k,
                     "fraction_agree": k / n if n else np.nan,
                     "p": float(stats.binomtest(k, n, 0.5).pvalue) if n else np.nan,
                     "mean_signed": float(v.mean()) if n else np.nan})
    return pd.DataFrame(rows)


def sign_agreement_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`sign_agreement` (exploratory)."""
    return [registry_row("TRRUST circularity", f"sign of {r.score} agrees with TRRUST mode ({r.subset})",
                         "binomial (two-sided, 0.5)", r.p, r.fraction_agree, r.n_edges, effect="fraction agreeing")
            for r in records(table)]
