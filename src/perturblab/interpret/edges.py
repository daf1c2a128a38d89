"""Edge scores: gene x gene matrices from attention summaries and from co-expression.

An :class:`EdgeScores` holds one ``(G, G)`` matrix ``S`` over a list of genes with
``S[i, j]`` = evidence for an edge from gene ``i`` to gene ``j`` (higher = stronger).
Attention scores follow the extraction convention ``A[i, j]`` = attention from query gene
``i`` to key gene ``j``, so a regulator's row lists what it attends to. Spearman
correlation (the mandatory comparator of Kendiukhov 2026, section 2) is computed on the
same cells and used as ``|rho|`` for edge ranking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .._validation import check_finite, to_dense
from ..exceptions import InputError

__all__ = [
    "EdgeScores",
    "spearman_matrix",
    "correlation_scores",
    "attention_scores",
    "log_normalise",
    "edge_table",
    "select_genes",
]


@dataclass
class EdgeScores:
    """One gene x gene edge-score matrix and what it is.

    Attributes
    ----------
    name
        Unique label, e.g. ``"attention L3 mean"`` or ``"spearman"``.
    matrix
        ``(G, G)`` float array, higher = stronger edge evidence; row = source (query), column = target (key).
    genes
        ``(G,)`` gene names.
    kind
        ``"attention"``, ``"correlation"`` or ``"baseline"``.
    layer
        Transformer layer (attention only), else ``None``.
    head
        ``"mean"`` / ``"max"`` over heads or the head index as a string (attention only), else ``None``.
    """

    name: str
    matrix: np.ndarray
    genes: np.ndarray
    kind: str
    layer: int | None = None
    head: str | None = None

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, dtype=np.float64)
        self.genes = np.asarray(self.genes).astype(str)
        g = self.genes.size
        if self.matrix.shape != (g, g):
            raise InputError(
                f"{self.name}: score matrix has shape {self.matrix.shape}, expected ({g}, {g}) for {g} genes"
            )
        check_finite(self.matrix, f"edge scores {self.name!r}")

    def describe(self) -> dict:
        """The identifying columns of a results row."""
        return {"score": self.name, "kind": self.kind, "layer": self.layer, "head": self.head}


def log_normalise(X, target_sum: float = 1e4, library_size=None) -> np.ndarray:
    """Library-size normalise raw counts to ``target_sum`` and ``log1p`` (scanpy's default recipe).

    Parameters
    ----------
    X
        Cells x genes raw counts (dense or sparse).
    library_size
        ``(n_cells,)`` total counts per cell; default: the row sums of ``X``. Pass the totals over all genes
        when ``X`` holds a gene subset.

    Returns
    -------
    Dense ``float64`` cells x genes log1p-normalised matrix.
    """
    X = to_dense(X, np.float64)
    lib = X.sum(axis=1) if library_size is None else np.asarray(library_size, dtype=np.float64).ravel()
    if lib.shape[0] != X.shape[0]:
        raise InputError(f"library_size has {lib.shape[0]} values for {X.shape[0]} cells")
    lib = np.where(lib == 0, 1.0, lib)[:, None]
    return np.log1p(X / lib * target_sum)


def spearman_matrix(X) -> np.ndarray:
    """Spearman correlation between genes (columns) over cells (rows).

    Parameters
    ----------
    X
        Cells x genes, raw counts or log-normalised (rank-based, so any monotone per-gene
        transform gives the same answer for a gene; library-size normalisation does change it).

    Returns
    -------
    ``(G, G)`` correlation matrix; genes with no variance get correlation 0 (and 1 on the diagonal).
    """
    X = to_dense(X, np.float64)
    if X.shape[0] < 3:
        raise InputError(f"Spearman correlation needs at least 3 cells, got {X.shape[0]}")
    R = rankdata(X, axis=0)
    R -= R.mean(axis=0)
    sd = np.sqrt((R**2).sum(axis=0))
    const = sd == 0
    sd[const] = 1.0
    R /= sd
    C = R.T @ R
    C[const, :] = 0.0
    C[:, const] = 0.0
    np.fill_diagonal(C, 1.0)
    return np.clip(C, -1.0, 1.0)


def correlation_scores(X, genes, name: str = "spearman") -> EdgeScores:
    """``|Spearman rho|`` edge scores on log-normalised expression (cells x genes) of the same cells."""
    return EdgeScores(name, np.abs(spearman_matrix(X)), genes, kind="correlation")


def attention_scores(layer_attentions: Mapping[int, object] | Iterable, per_head: bool = True) -> list[EdgeScores]:
    """Edge scores from extracted attention, one layer at a time.

    Parameters
    ----------
    layer_attentions
        ``{layer: LayerAttention}`` (or an iterable of them) as produced by
        :func:`perturblab.interpret.extraction.extract_attention`; each has ``layer``, ``genes`` (G,),
        ``per_head`` (H, G, G), ``head_mean`` and ``head_max`` (G, G).
    per_head
        Also return every head's matrix (needed for head ranking and per-head recovery).

    Returns
    -------
    List of :class:`EdgeScores`: per layer the mean and max over heads, then (optionally) each head.
    """
    items = layer_attentions.values() if isinstance(layer_attentions, Mapping) else layer_attentions
    out: list[EdgeScores] = []
    for la in sorted(items, key=lambda a: a.layer):
        out.append(EdgeScores(f"attention L{la.layer} mean", la.head_mean, la.genes, "attention", la.layer, "mean"))
        out.append(EdgeScores(f"attention L{la.layer} max", la.head_max, la.genes, "attention", la.layer, "max"))
        if per_head:
            for h in range(la.per_head.shape[0]):
                out.append(
                    EdgeScores(f"attention L{la.layer} H{h}", la.per_head[h], la.genes, "attention", la.layer, str(h))
                )
    return out


def edge_table(scores: EdgeScores, mask: np.ndarray | None = None) -> pd.DataFrame:
    """Long table ``source, target, score`` of the edges where ``mask`` (default: off-diagonal) is True."""
    g = scores.genes.size
    if mask is None:
        mask = ~np.eye(g, dtype=bool)
    i, j = np.nonzero(mask)
    return pd.DataFrame({"source": scores.genes[i], "target": scores.genes[j], "score": scores.matrix[i, j]})


def select_genes(adata_ctrl, n_genes: int, forced=()) -> np.ndarray:
    """Genes for extraction: top ``n_genes`` highly variable genes (scanpy, Seurat flavour, on
    log1p-normalised control cells; raw counts expected) plus the ``forced`` (perturbed) genes present."""
    import anndata as ad
    import scanpy as sc

    var = np.asarray(adata_ctrl.var_names).astype(str)
    forced = [g for g in forced if g in set(var)]
    if var.size <= n_genes:
        return var
    a = ad.AnnData(log_normalise(adata_ctrl.X).astype(np.float32), var=pd.DataFrame(index=var))
    sc.pp.highly_variable_genes(a, n_top_genes=n_genes, flavor="seurat")
    chosen = set(var[a.var["highly_variable"].to_numpy()]) | set(forced)
    return np.array([g for g in var if g in chosen])
