"""Other edge sources through the same evaluations as attention: one call, one tidy table, registry rows.

Value-weighted edges (:mod:`~perturblab.interpret.value_edges`), token-embedding and hidden-state similarity
(:mod:`~perturblab.interpret.embedding_edges`) and SAE feature similarity (:mod:`~perturblab.interpret.sae`)
are :class:`~perturblab.interpret.edges.EdgeScores` like attention. :func:`evaluate_edge_sources` runs on them
what the pipeline runs on attention: reference recovery per reference, and the perturbation-first AUROC of
knock-out targets compared (paired Wilcoxon, bootstrap CI over perturbations) with ``|Spearman|`` and with every
gene-level baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from ..exceptions import InputError
from ._types import records
from .edges import EdgeScores
from .perturbation import compare_scores, perturbation_auroc
from .references import Reference, reference_recovery
from .registry_rows import registry_row

__all__ = ["edge_source_rows", "evaluate_edge_sources"]


def evaluate_edge_sources(scores: Sequence[EdgeScores], references: Sequence[Reference], de: pd.DataFrame | None,
                          comparators: Sequence[EdgeScores], tfs: Iterable[str] | None = None, n_boot: int = 1000,
                          random_state: int = 0) -> pd.DataFrame:
    """Reference recovery and perturbation-first comparisons of new edge sources.

    Parameters
    ----------
    scores
        The new edge sources (same genes as the comparators).
    references
        Reference networks (TRRUST, DoRothEA, CollecTRI, STRING, gene-set co-membership...).
    de
        :func:`~perturblab.interpret.perturbation.de_targets` table (None: no perturbation-first rows).
    comparators
        ``|Spearman|`` and the gene-level baselines (:func:`~perturblab.interpret.baselines.baseline_scores`).
    tfs, n_boot, random_state
        TF list of directed references; bootstrap size and seed of the comparisons.

    Returns
    -------
    Tidy rows with ``analysis`` = ``"reference recovery"`` (the :func:`reference_recovery` columns) or
    ``"perturbation-first"`` (``score, kind, layer, head, b`` (comparator), ``n, mean_a, mean_b, delta, ci_low,
    ci_high, statistic, p``).

    Examples
    --------
    >>> evaluate_edge_sources(value_edge_scores(items), refs, de, [corr, *base], tfs=tfs)  # doctest: +SKIP
    """
    if not scores:
        raise InputError("no edge scores given")
    rec = reference_recovery(list(scores), references, tfs=tfs).assign(analysis="reference recovery")
    parts = [rec]
    if de is not None and len(de):
        pp = perturbation_auroc([*scores, *comparators], de)
        if len(pp):
            kinds = {s.name: s.describe() for s in scores}
            rows = []
            for s in scores:
                for c in comparators:
                    cmp = compare_scores(pp, s.name, c.name, n_boot=n_boot, random_state=random_state)
                    rows.append({**kinds[s.name], "analysis": "perturbation-first", **{k: v for k, v in cmp.items()
                                                                                       if k != "a"}})
            parts.append(pd.DataFrame(rows))
    return pd.concat(parts, ignore_index=True)


def edge_source_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`evaluate_edge_sources` (exploratory): the Fisher enrichment per (score, reference)
    for layer summaries and layer-free scores, and every perturbation-first comparison."""
    rows = []
    for r in records(table):
        if r.analysis == "reference recovery":
            if str(r.head) not in ("mean", "max", "None", "nan"):
                continue
            rows.append(registry_row("edge sources", f"{r.score} enriches {r.reference} edges among its top "
                                     f"{r.fisher_top}", "Fisher exact (one-sided)", r.fisher_p, r.fisher_odds_ratio,
                                     r.n_candidates, effect="odds ratio", statistic=r.auroc))
        else:
            rows.append(registry_row("edge sources", f"{r.score} ranks knock-out targets differently from {r.b}",
                                     "Wilcoxon signed-rank", r.p, r.delta, r.n, effect="mean delta AUROC",
                                     statistic=r.statistic))
    return rows
