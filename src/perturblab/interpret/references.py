"""Reference-network recovery: how well edge scores rank known edges (Kendiukhov 2026, section 3).

Candidate edge universe (defined explicitly, as everything depends on it):

* directed (TF -> target) references (TRRUST, DoRothEA A-C, CollecTRI): every ordered pair
  ``(s, t)`` of genes present in the score matrix with ``s != t`` and ``s`` a transcription
  factor - from the Lambert et al. 2018 list when ``tfs`` is given, else the reference's own
  sources. The score of ``(s, t)`` is ``S[s, t]`` (the TF as query). Positives: reference edges
  inside this universe.
* undirected references (STRING physical/functional association, combined score >= 700): every
  unordered pair ``{i, j}`` of genes present, scored ``max(S[i, j], S[j, i])``; positive when the
  pair is in the reference in either orientation.

Reference edges whose genes are absent from the score matrix are outside the universe (counted
in ``n_reference_edges`` vs ``n_positive``), never silently merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from ..exceptions import InputError, UnknownNameError
from ._types import Genes
from .edges import EdgeScores
from .metrics import ranking_metrics

__all__ = [
    "Reference",
    "load_reference",
    "load_tf_list",
    "candidate_edges",
    "candidate_scores",
    "reference_recovery",
    "REFERENCE_NAMES",
]

REFERENCE_NAMES = ("trrust", "dorothea", "collectri", "string")


@dataclass
class Reference:
    """A reference network: tidy ``edges`` (``source``, ``target``) and whether direction matters."""

    name: str
    edges: pd.DataFrame
    directed: bool = True

    def __post_init__(self):
        missing = {"source", "target"} - set(self.edges.columns)
        if missing:
            raise InputError(f"reference {self.name!r} lacks column(s) {sorted(missing)}; need 'source' and 'target'")
        self.edges = self.edges[["source", "target"]].astype(str).drop_duplicates().reset_index(drop=True)


def load_reference(name: str, dorothea_levels: str = "ABC", string_min_score: int = 700) -> Reference:
    """Load a reference network through :mod:`perturblab.datasets`.

    Parameters
    ----------
    name
        ``"trrust"`` (TRRUST v2), ``"dorothea"`` (confidence ``dorothea_levels``), ``"collectri"``
        or ``"string"`` (STRING v12, combined score >= ``string_min_score``; undirected).
    """
    from ..datasets import collectri, dorothea, string_ppi, trrust

    if name == "trrust":
        return Reference(name, trrust())
    if name == "dorothea":
        return Reference(f"dorothea {dorothea_levels}", dorothea(levels=tuple(dorothea_levels)))
    if name == "collectri":
        return Reference(name, collectri())
    if name == "string":
        return Reference(f"string >= {string_min_score}", string_ppi(min_score=string_min_score), directed=False)
    raise UnknownNameError("reference network", name, REFERENCE_NAMES)


def load_tf_list() -> list[str]:
    """The 1,639 human transcription factors of Lambert et al. 2018 (via :mod:`perturblab.datasets`)."""
    from ..datasets import lambert_tfs

    return list(lambert_tfs())


def candidate_edges(genes: Genes, reference: Reference, tfs: Iterable[str] | None = None):
    """The candidate universe of ``reference`` over ``genes`` (see the module docstring).

    Returns
    -------
    (rows, cols, labels)
        Integer index arrays into ``genes`` (source / target; for undirected references ``rows < cols``)
        and the boolean positive label of each candidate.
    """
    genes = np.asarray(genes).astype(str)
    index = {g: i for i, g in enumerate(genes)}
    e = reference.edges
    keep = e["source"].isin(index) & e["target"].isin(index) & (e["source"] != e["target"])
    si = e.loc[keep, "source"].map(index).to_numpy()
    ti = e.loc[keep, "target"].map(index).to_numpy()
    g = genes.size
    pos = np.zeros((g, g), dtype=bool)
    pos[si, ti] = True
    if reference.directed:
        src_names = set(map(str, tfs)) if tfs is not None else set(e["source"])
        src = np.array([gn in src_names for gn in genes])
        cand = src[:, None] & ~np.eye(g, dtype=bool)
    else:
        pos = pos | pos.T
        cand = np.triu(np.ones((g, g), dtype=bool), k=1)
    rows, cols = np.nonzero(cand)
    return rows, cols, pos[rows, cols]


def candidate_scores(matrix: np.ndarray, rows, cols, directed: bool) -> np.ndarray:
    """Scores of the candidates from :func:`candidate_edges`: ``S[s, t]``, or ``max`` of both orientations."""
    if directed:
        return matrix[rows, cols]
    return np.maximum(matrix[rows, cols], matrix[cols, rows])


def reference_recovery(
    scores: Sequence[EdgeScores],
    references: Mapping[str, Reference] | Sequence[Reference],
    tfs: Iterable[str] | None = None,
    fisher_top: int = 1000,
) -> pd.DataFrame:
    """Recovery of each reference by each edge-score matrix.

    Parameters
    ----------
    scores
        Edge scores over the same genes (attention per layer/head, correlation, ...).
    references
        Reference networks.
    tfs
        Transcription-factor list restricting directed sources (Lambert 2018); ``None`` = the reference's sources.
    fisher_top
        Fisher's exact test (one-sided, enrichment) of reference edges among the top ``min(fisher_top,
        n_candidates // 2)`` candidates vs the rest.

    Returns
    -------
    One row per (score, reference): ``score, kind, layer, head, reference, n_reference_edges,
    n_candidates, n_positive, auroc, auprc, epr, topk_f1, fisher_top, fisher_odds_ratio, fisher_p``.
    Rows with fewer than one positive have NaN metrics.
    """
    refs = list(references.values()) if isinstance(references, Mapping) else list(references)
    if not scores:
        raise InputError("no edge scores given")
    genes = scores[0].genes
    tf_list = None if tfs is None else list(tfs)
    rows_out = []
    for ref in refs:
        r, c, lab = candidate_edges(genes, ref, tf_list)
        n_top = max(1, min(fisher_top, lab.size // 2))
        for s in scores:
            if not np.array_equal(s.genes, genes):
                raise InputError(f"edge scores {s.name!r} are over different genes than {scores[0].name!r}")
            v = candidate_scores(s.matrix, r, c, ref.directed)
            row = {**s.describe(), "reference": ref.name, "n_reference_edges": len(ref.edges)}
            if lab.size == 0:
                row.update(n_candidates=0, n_positive=0)
                rows_out.append(row)
                continue
            row.update(ranking_metrics(v, lab))
            top = np.zeros(lab.size, dtype=bool)
            top[np.argsort(-v, kind="stable")[:n_top]] = True
            table = [
                [int((top & lab).sum()), int((top & ~lab).sum())],
                [int((~top & lab).sum()), int((~top & ~lab).sum())],
            ]
            odds, p = fisher_exact(table, alternative="greater") if lab.any() else (np.nan, np.nan)
            row.update(fisher_top=n_top, fisher_odds_ratio=float(odds), fisher_p=float(p))
            rows_out.append(row)
    columns = [
        "score",
        "kind",
        "layer",
        "head",
        "reference",
        "n_reference_edges",
        "n_candidates",
        "n_positive",
        "auroc",
        "auprc",
        "epr",
        "topk_f1",
        "fisher_top",
        "fisher_odds_ratio",
        "fisher_p",
    ]
    out = pd.DataFrame(rows_out)
    return out.reindex(columns=[*columns, *[c for c in out.columns if c not in columns]])  # metrics NaN, not absent
