"""Attention-co-expression mapping: how much of each layer's and head's attention is co-expression?

For every attention matrix (per layer: mean / max over heads, and each head) and the co-expression score of the
same cells (``|Spearman rho|``), over all ordered gene pairs ``i != j``: Spearman's rho between attention
``A[i, j]`` and ``|rho_ij|``, and the R2 of the least-squares line ``A ~ |rho|`` (= squared Pearson r) and of
the rank line (= squared Spearman rho). The paper's title finding is that attention "captures co-expression";
this is the per-layer/head map of that statement (procedure not published; these are the standard measures).
Gene pairs share genes, so the p-values are optimistic (exploratory rows only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError
from ._types import records
from .edges import EdgeScores
from .registry_rows import registry_row

__all__ = ["attention_coexpression", "attention_coexpression_rows"]


def attention_coexpression(scores: Sequence[EdgeScores], coexpression: EdgeScores, max_pairs: int | None = 500_000,
                           random_state: int = 0) -> pd.DataFrame:
    """Spearman rho and R2 of each edge score against co-expression over ordered gene pairs.

    Parameters
    ----------
    scores
        Edge scores over the genes of ``coexpression`` (typically
        :func:`~perturblab.interpret.edges.attention_scores` with ``per_head=True``).
    coexpression
        ``|Spearman rho|`` (:func:`~perturblab.interpret.edges.correlation_scores`) of the same cells.
    max_pairs
        Evaluate at most this many ordered pairs (a seeded sample, the same for every score); None: all
        ``G (G - 1)``. 2,000 genes have 4 million pairs; 500,000 keep rho to about +-0.003.
    random_state
        Seed of the pair sample.

    Returns
    -------
    One row per score: ``score, kind, layer, head, n_pairs, spearman_rho, p, r2_linear, r2_rank, slope``
    (least-squares slope of the score on ``|rho|``).

    Examples
    --------
    >>> attention_coexpression(attention_scores(layers, per_head=True), corr)  # doctest: +SKIP
    """
    g = coexpression.genes.size
    r, c = np.nonzero(~np.eye(g, dtype=bool))
    if max_pairs is not None and r.size > max_pairs:
        pick = np.sort(np.random.default_rng(random_state).choice(r.size, max_pairs, replace=False))
        r, c = r[pick], c[pick]
    z = coexpression.matrix[r, c]
    zr = stats.rankdata(z)
    rows = []
    for s in scores:
        if not np.array_equal(s.genes, coexpression.genes):
            raise InputError(f"edge scores {s.name!r} are over different genes than {coexpression.name!r}")
        x = s.matrix[r, c]
        if np.ptp(x) == 0 or np.ptp(z) == 0:
            rho = p = r2 = slope = float("nan")
        else:
            rho_res = stats.pearsonr(stats.rankdata(x), zr)
            rho, p = float(rho_res.statistic), float(rho_res.pvalue)
            lin = stats.linregress(z, x)
            r2, slope = float(lin.rvalue**2), float(lin.slope)
        rows.append({**s.describe(), "n_pairs": int(r.size), "spearman_rho": rho, "p": p, "r2_linear": r2,
                     "r2_rank": rho**2 if np.isfinite(rho) else float("nan"), "slope": slope})
    return pd.DataFrame(rows, columns=["score", "kind", "layer", "head", "n_pairs", "spearman_rho", "p", "r2_linear",
                                       "r2_rank", "slope"])


def attention_coexpression_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`attention_coexpression`: layer summaries only (per-head rows stay in the table)."""
    return [registry_row("attention-co-expression", f"{r.score} follows co-expression (|Spearman|)",
                         "Spearman correlation over gene pairs", r.p, r.spearman_rho, r.n_pairs, effect="Spearman rho",
                         statistic=r.r2_linear, claim="attention captures co-expression")
            for r in records(table) if r.head in ("mean", "max")]
