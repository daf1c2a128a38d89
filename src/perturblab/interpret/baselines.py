"""Trivial gene-level baselines (Kendiukhov 2026, section 5).

A baseline scores a candidate target ``t`` by a property of ``t`` alone, the same for every
regulator: mean expression, variance, ``1 - dropout`` (fraction of cells expressing it) on the
same control cells, and - as a negative control - the gene's TF out-degree in a reference
network. If such scores find a knock-out's DE targets as well as attention, attention adds
nothing edge-specific (highly expressed, variable genes are simply easier to call DE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import to_dense
from ..exceptions import InputError
from ._types import Genes
from .edges import EdgeScores

__all__ = ["gene_features", "baseline_scores", "tf_out_degree"]


def gene_features(X, genes: Genes) -> pd.DataFrame:
    """Per-gene features on control cells.

    Parameters
    ----------
    X
        Cells x genes **log1p-normalised** expression of the control cells.
    genes
        ``(G,)`` gene names.

    Returns
    -------
    DataFrame indexed by gene with ``mean``, ``variance`` (ddof 1) and ``detection`` (= 1 - dropout,
    the fraction of cells with a non-zero value).
    """
    X = to_dense(X, np.float64)
    if X.shape[1] != len(genes):
        raise InputError(f"X has {X.shape[1]} genes but {len(genes)} gene names were given")
    if X.shape[0] < 2:
        raise InputError("gene features need at least 2 cells")
    return pd.DataFrame(
        {"mean": X.mean(axis=0), "variance": X.var(axis=0, ddof=1), "detection": (X > 0).mean(axis=0)},
        index=pd.Index(np.asarray(genes).astype(str), name="gene"),
    )


def tf_out_degree(genes: Genes, reference_edges: pd.DataFrame) -> np.ndarray:
    """Number of reference targets of each gene as a source (0 for non-TFs), over all reference genes."""
    deg = reference_edges.drop_duplicates(["source", "target"])["source"].value_counts()
    return np.array([float(deg.get(g, 0)) for g in np.asarray(genes).astype(str)])


def baseline_scores(features: pd.DataFrame, reference_edges: pd.DataFrame | None = None) -> list[EdgeScores]:
    """Gene-level baselines as edge scores: ``S[g, t] = feature(t)`` for every regulator ``g``.

    Parameters
    ----------
    features
        Output of :func:`gene_features`.
    reference_edges
        Optional reference (``source``, ``target``) for the TF out-degree negative control.

    Returns
    -------
    EdgeScores named ``baseline mean``, ``baseline variance``, ``baseline 1-dropout`` and
    (with a reference) ``baseline TF out-degree``.
    """
    genes = features.index.to_numpy()
    g = genes.size
    cols: dict[str, np.ndarray] = {"mean": features["mean"].to_numpy(), "variance": features["variance"].to_numpy(),
                                   "1-dropout": features["detection"].to_numpy()}
    if reference_edges is not None:
        cols["TF out-degree"] = tf_out_degree(genes, reference_edges)
    return [
        EdgeScores(
            f"baseline {name}", np.broadcast_to(np.asarray(v, dtype=float)[None, :], (g, g)).copy(), genes, "baseline"
        )
        for name, v in cols.items()
    ]
