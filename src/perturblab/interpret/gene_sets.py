"""Gene-set references beyond networks: Reactome, KEGG and GO biological-process co-membership.

A gene set becomes an undirected reference of gene pairs: ``{i, j}`` is an edge when both genes are members of
at least one set of the library, after restricting each set to the genes under study and keeping sets of
``min_size`` to ``max_size`` genes (GSEA's usual 15-500 is too strict for a few hundred genes; defaults 5-300).
The reference then goes through the same evaluations as STRING
(:func:`~perturblab.interpret.references.reference_recovery`: AUROC, AUPRC, early precision, top-K F1, Fisher).
Libraries come from :func:`perturblab.datasets.gene_sets` (registered files with sources and checksums).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError
from ._types import records
from .edges import EdgeScores
from .references import Reference, reference_recovery
from .registry_rows import registry_row

__all__ = [
    "GENE_SET_DEFAULTS",
    "GeneSetReference",
    "gene_set_recovery",
    "gene_set_recovery_rows",
    "gene_set_reference",
    "gene_set_references",
]

#: Defaults of the gene-set analysis (libraries of :func:`perturblab.datasets.gene_sets`, set-size filter).
GENE_SET_DEFAULTS: dict[str, Any] = {"libraries": ("reactome", "kegg", "go_bp"), "min_size": 5, "max_size": 300}


@dataclass
class GeneSetReference(Reference):
    """An undirected co-membership :class:`~perturblab.interpret.references.Reference` and its number of sets."""

    n_sets: int = 0


def gene_set_reference(sets: pd.DataFrame, genes: Iterable[str], name: str, min_size: int = 5,
                       max_size: int = 300) -> GeneSetReference:
    """Undirected co-membership reference of ``sets`` (``gene_set, gene``) over ``genes``.

    Raises
    ------
    MissingKeyError
        If ``sets`` lacks the ``gene_set`` or ``gene`` column.
    """
    if {"gene_set", "gene"} - set(sets.columns):
        raise MissingKeyError("gene-set table needs columns 'gene_set' and 'gene'")
    if not 2 <= min_size <= max_size:
        raise InputError(f"need 2 <= min_size <= max_size, got {min_size}, {max_size}")
    universe = set(map(str, genes))
    s = sets.astype(str).drop_duplicates()
    s = s[s["gene"].isin(universe)]
    size = s.groupby("gene_set")["gene"].transform("size")
    s = s[(size >= min_size) & (size <= max_size)]
    pairs: set[tuple[str, str]] = set()
    for _, members in s.groupby("gene_set")["gene"]:
        m = np.sort(members.to_numpy())
        i, j = np.triu_indices(m.size, k=1)
        pairs.update(zip(m[i].tolist(), m[j].tolist()))
    edges = pd.DataFrame(sorted(pairs), columns=["source", "target"])
    return GeneSetReference(name, edges, directed=False, n_sets=int(s["gene_set"].nunique()))


def gene_set_references(libraries: Mapping[str, pd.DataFrame] | Sequence[str] = GENE_SET_DEFAULTS["libraries"],
                        genes: Iterable[str] = (), min_size: int = 5,
                        max_size: int = 300) -> list[GeneSetReference]:
    """One co-membership reference per library (names or ``{name: gene_set table}``), over ``genes``.

    Library names are loaded with :func:`perturblab.datasets.gene_sets`.
    """
    from ..datasets import gene_sets as load_gene_sets

    genes = list(genes)
    if not genes:
        raise InputError("give the genes under study (genes=...)")
    tables = (dict(libraries) if isinstance(libraries, Mapping)
              else {name: load_gene_sets(name) for name in libraries})
    return [gene_set_reference(t, genes, name, min_size, max_size) for name, t in tables.items()]


def gene_set_recovery(scores: Sequence[EdgeScores], references: Sequence[Reference],
                      fisher_top: int = 1000) -> pd.DataFrame:
    """Recovery of gene-set co-membership by each edge score (:func:`reference_recovery` columns plus ``n_sets``).

    Examples
    --------
    >>> refs = gene_set_references(("kegg", "go_bp"), genes=genes)  # doctest: +SKIP
    >>> gene_set_recovery([*att_summary, corr], refs)  # doctest: +SKIP
    """
    rec = reference_recovery(scores, references, fisher_top=fisher_top)
    n_sets = {r.name: getattr(r, "n_sets", np.nan) for r in references}
    rec["n_sets"] = rec["reference"].map(n_sets)
    return rec


def gene_set_recovery_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`gene_set_recovery` (exploratory): the Fisher enrichment test per (score, library),
    layer summaries and non-attention scores only."""
    rows = []
    for r in records(table):
        if r.kind == "attention" and r.head not in ("mean", "max"):
            continue
        rows.append(registry_row("gene sets", f"{r.score} enriches {r.reference} co-membership among its top "
                                 f"{r.fisher_top}", "Fisher exact (one-sided)", r.fisher_p, r.fisher_odds_ratio,
                                 r.n_candidates, effect="odds ratio", statistic=r.auroc,
                                 claim="attention encodes pathways" if r.kind == "attention" else ""))
    return rows
