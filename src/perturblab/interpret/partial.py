"""Partial correlation of edge scores with reference membership, controlling for expression similarity.

Does attention carry reference information beyond co-expression? Over the candidate edges of a reference
(:func:`~perturblab.interpret.references.candidate_edges`), the rank (Spearman) partial correlation of the edge
score ``x`` with membership ``y`` (0/1) given the co-expression score ``z`` (``|Spearman rho|`` of the same
cells) is the Pearson correlation of the residuals of ``rank(x)`` and ``rank(y)`` after a linear regression on
``rank(z)`` (the standard definition; the paper's exact estimator is not published). Its p-value is the t-test
with ``n - 3`` degrees of freedom. Candidate edges share genes, so they are not independent: the p-values are
optimistic and the registry rows are exploratory; the effect size is what to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError
from ._types import records
from .edges import EdgeScores
from .references import Reference, candidate_edges, candidate_scores
from .registry_rows import registry_row

__all__ = ["partial_correlation", "partial_correlation_rows", "partial_spearman"]


def _resid(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    zc = z - z.mean()
    denom = (zc**2).sum()
    beta = (zc * (a - a.mean())).sum() / denom if denom > 0 else 0.0
    return a - a.mean() - beta * zc


def partial_spearman(x, y, z) -> dict:
    """Rank partial correlation of ``x`` and ``y`` given ``z`` (1-D arrays of equal length).

    Returns
    -------
    dict ``r_xy, r_xz, r_yz`` (Spearman), ``partial_r``, ``t``, ``p`` (two-sided, ``n - 3`` df), ``n``.
    NaN where a variable is constant.
    """
    x, y, z = (np.asarray(v, dtype=float).ravel() for v in (x, y, z))
    if not x.size == y.size == z.size:
        raise InputError(f"x, y and z must have the same length, got {x.size}, {y.size}, {z.size}")
    n = x.size
    rx, ry, rz = stats.rankdata(x), stats.rankdata(y), stats.rankdata(z)

    def _r(a, b):
        sa, sb = a.std(), b.std()
        return float(np.corrcoef(a, b)[0, 1]) if sa > 0 and sb > 0 else float("nan")

    out = {"r_xy": _r(rx, ry), "r_xz": _r(rx, rz), "r_yz": _r(ry, rz), "n": int(n)}
    ex, ey = _resid(rx, rz), _resid(ry, rz)
    pr = _r(ex, ey) if n > 3 else float("nan")
    if np.isfinite(pr) and abs(pr) < 1:
        t = pr * np.sqrt((n - 3) / (1 - pr**2))
        p = float(2 * stats.t.sf(abs(t), n - 3))
    else:
        t, p = float("nan"), float("nan") if not np.isfinite(pr) else 0.0
    out.update(partial_r=pr, t=float(t), p=p)
    return out


def partial_correlation(scores: Sequence[EdgeScores], references: Sequence[Reference], control: EdgeScores,
                        tfs: Iterable[str] | None = None) -> pd.DataFrame:
    """Rank partial correlation of each edge score with membership of each reference, given ``control``.

    Parameters
    ----------
    scores
        Edge scores (attention per layer, value-weighted, embedding similarity...), over the same genes as
        ``control``.
    references
        Reference networks; candidates as in :func:`~perturblab.interpret.references.reference_recovery`.
    control
        The expression-similarity score to control for (default in the pipeline: ``|Spearman rho|``).
    tfs
        TF list restricting the sources of directed references.

    Returns
    -------
    One row per (score, reference): ``score, kind, layer, head, reference, control, n, n_positive, r_xy, r_xz,
    r_yz, partial_r, t, p``.

    Examples
    --------
    >>> partial_correlation(att_summary, refs, control=corr, tfs=tfs)  # doctest: +SKIP
    """
    genes = control.genes
    tf_list = None if tfs is None else list(tfs)
    rows = []
    for ref in references:
        r, c, lab = candidate_edges(genes, ref, tf_list)
        if lab.size == 0:
            continue
        z = candidate_scores(control.matrix, r, c, ref.directed)
        for s in scores:
            if not np.array_equal(s.genes, genes):
                raise InputError(f"edge scores {s.name!r} are over different genes than the control {control.name!r}")
            x = candidate_scores(s.matrix, r, c, ref.directed)
            rows.append({**s.describe(), "reference": ref.name, "control": control.name, "n_positive": int(lab.sum()),
                         **partial_spearman(x, lab.astype(float), z)})
    cols = ["score", "kind", "layer", "head", "reference", "control", "n", "n_positive", "r_xy", "r_xz", "r_yz",
            "partial_r", "t", "p"]
    return pd.DataFrame(rows, columns=cols)


def partial_correlation_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`partial_correlation` (exploratory: candidate edges are not independent)."""
    claim = "attention encodes more than co-expression"
    return [registry_row("partial correlation", f"{r.score} relates to {r.reference} membership beyond {r.control}",
                         "rank partial correlation (t, n - 3 df)", r.p, r.partial_r, r.n, effect="partial Spearman r",
                         statistic=r.t, claim=claim if r.kind == "attention" else "")
            for r in records(table)]
