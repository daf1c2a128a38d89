"""Signature-gene ranking (adverSCarial's ``getSignGenes``, R/getSignGenes.R).

For every pair of clusters (ordered by ``getDistantCouples`` so that consecutive
pairs share no cluster), each gene gets a two-sample p-value between the two
clusters' cells (Wilcoxon rank-sum = Mann-Whitney U, or Welch's t-test, as R's
``wilcox.test`` / ``t.test`` defaults); genes are ranked per pair by p-value and
the final ranking interleaves the pairs round-robin: rank 1 of every pair, then
rank 2, ..., keeping each gene's first appearance. As in the anchor, a constant
group gets 0.01 added to its first value so that the test is defined.
Differs from adverSCarial: scipy's Mann-Whitney p-values (exact for small tie-free
samples, else normal approximation with continuity correction) can differ from R's
``wilcox.test`` in their last digits; the ranking ties are broken by column order.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

__all__ = ["distant_pairs", "signature_genes"]


def distant_pairs(cell_types) -> list[tuple[str, str]]:
    """adverSCarial's ``getDistantCouples``: all cluster pairs, ordered so that a pair
    shares no cluster with the previously selected one whenever possible."""
    combos = list(combinations([str(c) for c in cell_types], 2))
    sel: list[tuple[str, str]] = []
    prev: tuple = ()
    ind, kill, kill_loop = 0, 0, False
    while len(sel) < len(combos):
        if kill == 0 and kill_loop:
            sel += [c for c in combos if c not in sel]
            break
        kill += 1
        kill_loop = True
        c = combos[ind]
        if c[0] not in prev and c[1] not in prev and c not in sel:
            kill, kill_loop = 0, False
            sel.append(c)
            prev = c
        ind += 1
        if kill > len(combos) + 1:
            kill = 0
        if ind >= len(combos):
            ind = 0
    return sel


def signature_genes(X, clusters, gene_names, method: str = "wilcox") -> pd.DataFrame:
    """Rank genes by how well they separate pairs of clusters.

    Parameters
    ----------
    X
        Dense cells x genes matrix (any representation; adverSCarial uses the classifier input).
    clusters
        Cluster label per cell (in order of first appearance defines the pair order).
    gene_names
        Column names.
    method
        ``"wilcox"`` (default) or ``"ttest"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (1 = first), ``gene``, ``pval`` (the p-value of the pair that placed it),
        ``pair``; one row per gene.

    Raises
    ------
    ValueError
        Unknown method, fewer than two clusters, or mismatched shapes.
    """
    from scipy import stats

    if method not in ("wilcox", "ttest"):
        raise ValueError(f"method must be 'wilcox' or 'ttest', got {method!r}")
    X = np.asarray(X, dtype=np.float64)
    clusters = np.asarray(clusters).astype(str)
    names = np.asarray(gene_names).astype(str)
    if X.shape != (len(clusters), len(names)):
        raise ValueError(f"X has shape {X.shape} for {len(clusters)} cluster labels and {len(names)} gene names")
    types = list(dict.fromkeys(clusters.tolist()))
    if len(types) < 2:
        raise ValueError("signature genes need at least two clusters")
    pairs = distant_pairs(types)
    order = np.empty((len(pairs), len(names)), dtype=np.intp)
    pvals = np.empty((len(pairs), len(names)))
    for k, (a, b) in enumerate(pairs):
        c1, c2 = X[clusters == a].copy(), X[clusters == b].copy()
        for c in (c1, c2):
            const = (c == c[:1]).all(axis=0)
            c[0, const] += 0.01
        if method == "wilcox":
            p = stats.mannwhitneyu(c1, c2, alternative="two-sided", axis=0).pvalue
        else:
            p = stats.ttest_ind(c1, c2, equal_var=False, axis=0).pvalue
        p = np.nan_to_num(p, nan=1.0)
        order[k] = np.argsort(p, kind="stable")
        pvals[k] = p
    flat_genes = order.T.ravel()  # rank-major, then pair order: round-robin interleaving
    flat_pairs = np.tile(np.arange(len(pairs)), len(names))
    _, first = np.unique(flat_genes, return_index=True)
    first = np.sort(first)
    g, pr = flat_genes[first], flat_pairs[first]
    return pd.DataFrame({"rank": np.arange(1, len(g) + 1), "gene": names[g], "pval": pvals[pr, g],
                         "pair": [f"{pairs[i][0]}___{pairs[i][1]}" for i in pr]})
