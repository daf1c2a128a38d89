"""Overviews over clusters x modifications (adverSCarial's ``singleGeneOverview`` /
``maxChangeOverview``): how many single genes flip each cluster, and how many genes
can be modified together without changing its label."""

from __future__ import annotations

import pandas as pd

from .max_change import max_change_attack
from .single_gene import single_gene_attack

__all__ = ["max_change_overview", "single_gene_overview"]


def _clusters(clusters, targets):
    import numpy as np

    return list(dict.fromkeys(np.asarray(clusters).astype(str).tolist())) if targets is None else list(targets)


def single_gene_overview(classifier, X, clusters, modifications=("perc1", "perc99"), *, targets=None,
                         **kwargs) -> pd.DataFrame:
    """Tidy table: one row per cluster x modification with n_hits (exhaustive single-gene flips,
    or ``mode=`` passed through ``kwargs``), the hit genes, n_classifier_calls and wall time."""
    rows = []
    for t in _clusters(clusters, targets):
        for m in modifications:
            r = single_gene_attack(classifier, X, clusters, t, m, **kwargs)
            s = r.summary()
            s["genes"] = ";".join(r.genes)
            rows.append(s)
    return pd.DataFrame(rows)


def max_change_overview(classifier, X, clusters, modifications=("perc1", "perc99"), *, targets=None,
                        max_split_size: int = 100, **kwargs) -> pd.DataFrame:
    """Tidy table: one row per cluster x modification with the number of genes that can be
    modified together (``max_split_size`` 100 as adverSCarial's overview), calls and wall time."""
    rows = []
    for t in _clusters(clusters, targets):
        for m in modifications:
            rows.append(max_change_attack(classifier, X, clusters, t, m, max_split_size=max_split_size,
                                          **kwargs).summary())
    return pd.DataFrame(rows)
