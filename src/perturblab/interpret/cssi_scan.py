"""CSSI, honestly: the scaling failure that motivates it, a scan over the number of strata, three nulls, per-edge FDR.

* :func:`scaling_curve` / :func:`scaling_test` - pooled edge scores on growing numbers of cells (200 -> 1,000,
  nested subsamples): the paper's motivation for CSSI is that top-K F1 does not improve with more cells while
  AUROC does. Each repeat draws one random order of the cells and takes its first ``n``; the sign test counts
  the repeats whose metric rose from the smallest to the largest ``n`` (two-sided binomial, ties dropped).
* :func:`strata_scan` - CSSI-max / CSSI-mean recovery for ``K`` strata (k-means on the cell embeddings, the
  standard way to fix the number of clusters; Leiden fixes a resolution instead) beside three nulls at the
  same ``K``: shuffled strata (labels permuted over cells), random strata (uniform labels) and the
  gene-permuted null (the CSSI score matrix with gene labels permuted, rows and columns together: is recovery
  more than chance for that matrix?, :func:`~perturblab.interpret.confounds.label_shuffle_null`).
* :func:`cssi_edge_fdr` - a p-value per edge for "the edge exists in at least one stratum": each stratum's
  Spearman p (t approximation, ``n_k - 2`` df) combined by Tippett's minimum-p rule ``1 - (1 - min p)^K``,
  then Benjamini-Hochberg over the candidate edges. The paper reports no per-edge error control; this is the
  standard combination for a max-type statistic.

Every table carries ``evidence`` (``"correlation"`` or ``"attention"``) and ``data`` (``"simulated"`` or
``"real"``): public self-reviews of related work found large CSSI gains only on synthetic data, so the report
shows real-attention results apart from simulated and correlation results.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError, PerturblabWarning
from ._types import Labels, records
from .confounds import label_shuffle_null
from .cssi import cssi_aggregate
from .edges import EdgeScores, spearman_matrix
from .metrics import ranking_metrics
from .references import Reference, candidate_edges, candidate_scores
from .registry_rows import registry_row

__all__ = ["cssi_edge_fdr", "cssi_edge_fdr_rows", "kmeans_strata", "scaling_curve", "scaling_test",
           "scaling_test_rows", "strata_scan", "strata_scan_rows"]

ScoreFn = Callable[[np.ndarray], np.ndarray]


def _abs_spearman_of(X) -> ScoreFn:
    return lambda rows: np.abs(spearman_matrix(X[rows]))


def _tag(df: pd.DataFrame, evidence: str, data: str) -> pd.DataFrame:
    df.insert(0, "data", data)
    df.insert(0, "evidence", evidence)
    return df


def scaling_curve(X, genes, reference: Reference, tfs: Iterable[str] | None = None,
                  n_cells: Sequence[int] = (200, 400, 600, 800, 1000), n_repeats: int = 10,
                  score_fn: ScoreFn | None = None, evidence: str = "correlation", data: str = "simulated",
                  random_state: int = 0) -> pd.DataFrame:
    """Reference recovery of a pooled edge score on nested cell subsamples of growing size.

    Parameters
    ----------
    X
        Cells x genes log1p-normalised expression (used by the default score, ``|Spearman|``).
    genes, reference, tfs
        Genes of the score matrix, the reference network and the TF list of its candidates.
    n_cells
        Subsample sizes; sizes above the number of cells are left out with a warning.
    n_repeats
        Random cell orders (nested subsamples within each).
    score_fn
        ``rows -> (G, G)`` edge scores of the cells ``rows`` (e.g. attention re-extracted on those cells);
        default ``|Spearman|`` of ``X[rows]``.
    evidence, data
        Labels of the rows (module docstring).
    random_state
        Seed of the cell orders.

    Returns
    -------
    One row per (n_cells, repeat): ``evidence, data, reference, n_cells, repeat, n_candidates, n_positive, auroc,
    auprc, epr, topk_f1``.

    Examples
    --------
    >>> curve = scaling_curve(X, genes, Reference("global", sim.reference("global")), tfs=sim.tfs)  # doctest: +SKIP
    >>> scaling_test(curve)  # doctest: +SKIP
    """
    n_total = X.shape[0]
    sizes = sorted({int(n) for n in n_cells})
    dropped = [n for n in sizes if n > n_total]
    if dropped:
        warnings.warn(f"scaling_curve: sizes {dropped} exceed the {n_total} cells and are left out", PerturblabWarning,
                      stacklevel=2)
    sizes = [n for n in sizes if n <= n_total]
    if len(sizes) < 2:
        raise InputError(f"scaling_curve needs at least 2 subsample sizes <= {n_total} cells, got {list(n_cells)}")
    fn = score_fn or _abs_spearman_of(X)
    genes = np.asarray(genes).astype(str)
    r, c, lab = candidate_edges(genes, reference, tfs)
    rng = np.random.default_rng(random_state)
    rows = []
    for rep in range(n_repeats):
        order = rng.permutation(n_total)
        for n in sizes:
            m = fn(np.sort(order[:n]))
            rows.append({"reference": reference.name, "n_cells": n, "repeat": rep,
                         **ranking_metrics(candidate_scores(m, r, c, reference.directed), lab)})
    return _tag(pd.DataFrame(rows), evidence, data)


def scaling_test(curve: pd.DataFrame, metrics: Sequence[str] = ("auroc", "topk_f1")) -> pd.DataFrame:
    """Sign test and Spearman trend of each metric from the smallest to the largest subsample.

    Returns
    -------
    One row per (evidence, data, reference, metric): ``n_small, n_large, n_repeats, mean_small, mean_large,
    median_delta, n_increase, n_decrease, p`` (two-sided binomial sign test over repeats, ties dropped),
    ``spearman_rho`` (metric vs ``n_cells`` over all points) and ``improves`` (``p < 0.05`` and
    ``median_delta > 0``). ``scaling_failure`` is True on every row of a group whose AUROC improves while its
    top-K F1 does not.
    """
    rows = []
    for (ev, data, ref), g in curve.groupby(["evidence", "data", "reference"], sort=False):
        lo, hi = g["n_cells"].min(), g["n_cells"].max()
        a = g[g["n_cells"] == lo].set_index("repeat")
        b = g[g["n_cells"] == hi].set_index("repeat")
        for m in metrics:
            d = (b[m] - a[m]).dropna().to_numpy()
            up, down = int((d > 0).sum()), int((d < 0).sum())
            p = float(stats.binomtest(up, up + down, 0.5).pvalue) if up + down else 1.0
            rho = stats.spearmanr(g["n_cells"], g[m]).statistic if g[m].nunique() > 1 else np.nan
            rows.append({"evidence": ev, "data": data, "reference": ref, "metric": m, "n_small": int(lo),
                         "n_large": int(hi), "n_repeats": int(d.size), "mean_small": float(a[m].mean()),
                         "mean_large": float(b[m].mean()), "median_delta": float(np.median(d)) if d.size else np.nan,
                         "n_increase": up, "n_decrease": down, "p": p, "spearman_rho": float(rho),
                         "improves": bool(p < 0.05 and d.size and np.median(d) > 0)})
    out = pd.DataFrame(rows)
    if len(out):
        key = ["evidence", "data", "reference"]
        imp = out.pivot_table(index=key, columns="metric", values="improves", aggfunc="first")
        auroc_up = imp["auroc"].fillna(False).astype(bool) if "auroc" in imp else pd.Series(False, index=imp.index)
        topk_up = imp["topk_f1"].fillna(True).astype(bool) if "topk_f1" in imp else pd.Series(True, index=imp.index)
        fail = auroc_up & ~topk_up
        out["scaling_failure"] = [bool(fail.loc[tuple(x)]) if tuple(x) in fail.index else False
                                  for x in out[key].to_numpy()]
    return out


def scaling_test_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`scaling_test` (exploratory): one sign test per (evidence, data, reference, metric)."""
    return [registry_row("CSSI scaling", f"{r.metric} of pooled {r.evidence} on {r.reference} ({r.data} data) changes "
                         f"from {r.n_small} to {r.n_large} cells", "sign test (two-sided binomial)", r.p,
                         r.median_delta, r.n_repeats, effect=f"median delta {r.metric}", statistic=r.spearman_rho,
                         claim="more cells do not improve top-K edges" if r.metric == "topk_f1" else "")
            for r in records(table)]


def kmeans_strata(embeddings: np.ndarray, k: int, random_state: int = 0) -> np.ndarray:
    """``k`` strata from k-means (scikit-learn, 10 starts) on cell embeddings ``(n_cells, d)``; string labels."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    emb = np.asarray(embeddings, dtype=float)
    if emb.ndim != 2 or not 1 <= k <= emb.shape[0]:
        raise InputError(f"embeddings must be (n_cells, d) with n_cells >= k={k}, got {emb.shape}")
    with threadpool_limits(1):
        lab = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(emb)
    return lab.astype(str)


def _stack(fn: ScoreFn, labels: np.ndarray, min_cells: int):
    labs, counts = np.unique(labels, return_counts=True)
    keep = labs[counts >= min_cells]
    if keep.size == 0:
        return None, None
    return np.stack([fn(np.flatnonzero(labels == k)) for k in keep]), counts[counts >= min_cells]


def strata_scan(X, genes, reference: Reference, embeddings: np.ndarray, ks: Sequence[int] = (2, 3, 4, 6, 8),
                tfs: Iterable[str] | None = None, score_fn: ScoreFn | None = None, min_cells: int = 20,
                n_repeats: int = 2, n_gene_null: int = 200, evidence: str = "correlation", data: str = "simulated",
                random_state: int = 0) -> pd.DataFrame:
    """CSSI recovery over a range of strata numbers ``K``, with shuffled, random and gene-permuted nulls.

    Parameters
    ----------
    X, genes
        Cells x genes log1p-normalised expression and gene names.
    reference, tfs
        Reference network and TF list.
    embeddings
        ``(n_cells, d)`` cell embeddings (the model's, or a PCA) clustered by :func:`kmeans_strata`.
    ks
        Numbers of strata; strata with fewer than ``min_cells`` cells are left out (``n_strata`` counts those kept).
    score_fn
        ``rows -> (G, G)`` edge scores of a set of cells (default ``|Spearman|`` of ``X[rows]``).
    n_repeats
        Shuffled and random strata per ``K``.
    n_gene_null
        Gene-label permutations of the real CSSI-max / CSSI-mean matrices (0: skip).
    evidence, data, random_state
        Row labels and seed.

    Returns
    -------
    One row per (k, strata, repeat, score): ``evidence, data, reference, k, n_strata, strata`` (``real``,
    ``shuffled``, ``random``), ``repeat, score`` (``pooled``, ``CSSI-max``, ``CSSI-mean``), the ranking metrics,
    and for real strata ``gene_null_z``, ``gene_null_p`` (gene-permuted null).
    """
    genes = np.asarray(genes).astype(str)
    fn = score_fn or _abs_spearman_of(X)
    r, c, lab = candidate_edges(genes, reference, tfs)
    n = X.shape[0]
    pooled = ranking_metrics(candidate_scores(fn(np.arange(n)), r, c, reference.directed), lab)
    rng = np.random.default_rng(random_state)
    rows = []
    for k in sorted({int(k) for k in ks}):
        real = kmeans_strata(embeddings, k, random_state=random_state)
        designs = [("real", 0, real)]
        designs += [("shuffled", i, rng.permutation(real)) for i in range(n_repeats)]
        designs += [("random", i, rng.integers(k, size=n).astype(str)) for i in range(n_repeats)]
        for name, rep, labels in designs:
            stack, sizes = _stack(fn, labels, min_cells)
            base = {"reference": reference.name, "k": k, "n_strata": 0 if stack is None else len(sizes),
                    "strata": name, "repeat": rep}
            rows.append({**base, "score": "pooled", **pooled, "gene_null_z": np.nan, "gene_null_p": np.nan})
            if stack is None:
                continue
            for how in ("max", "mean"):
                M = cssi_aggregate(stack, sizes, how)
                row = {**base, "score": f"CSSI-{how}",
                       **ranking_metrics(candidate_scores(M, r, c, reference.directed), lab),
                       "gene_null_z": np.nan, "gene_null_p": np.nan}
                if name == "real" and n_gene_null and lab.any():
                    nul = label_shuffle_null(EdgeScores(f"CSSI-{how}", M, genes, evidence), reference, tfs,
                                             n_null=n_gene_null, random_state=random_state)
                    row["gene_null_z"], row["gene_null_p"] = nul["z"], nul["p_empirical"]
                rows.append(row)
    return _tag(pd.DataFrame(rows), evidence, data)


def strata_scan_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`strata_scan` (exploratory): per (K, aggregate) on real strata, the gain over
    pooled against the shuffled-strata null (empirical p), and the gene-permuted null."""
    rows = []
    for (ev, data, ref, k, score), g in table[table["score"] != "pooled"].groupby(
            ["evidence", "data", "reference", "k", "score"], sort=False):
        pooled = table[(table["evidence"] == ev) & (table["reference"] == ref) & (table["k"] == k)
                       & (table["score"] == "pooled")]["auroc"].iloc[0]
        real = g[g["strata"] == "real"]
        shuf = g[g["strata"] == "shuffled"]["auroc"].to_numpy() - pooled
        if real.empty:
            continue
        gain = float(real["auroc"].iloc[0] - pooled)
        p = (1 + np.sum(shuf >= gain)) / (1 + shuf.size) if shuf.size else np.nan
        rows.append(registry_row("CSSI scan", f"{score} {ev} on {k} real strata beats pooled on {ref} ({data} data)",
                                 "shuffled-strata null", p, gain, int(shuf.size), effect="delta AUROC vs pooled"))
        rows.append(registry_row("CSSI scan", f"{score} {ev} ({k} strata) recovers {ref} beyond gene-permuted scores "
                                 f"({data} data)", "gene-permuted null", real["gene_null_p"].iloc[0],
                                 real["gene_null_z"].iloc[0], int(real["n_candidates"].iloc[0]), effect="z"))
    return rows


def cssi_edge_fdr(X, genes, strata: Labels, tfs: Iterable[str] | None = None, reference: Reference | None = None,
                  min_cells: int = 20, alpha: float = 0.05, evidence: str = "correlation",
                  data: str = "simulated") -> pd.DataFrame:
    """Per-edge p-values and BH q-values of "the edge is present in at least one stratum" (``|Spearman|``).

    Parameters
    ----------
    X, genes
        Cells x genes log1p-normalised expression and gene names.
    strata
        ``(n_cells,)`` stratum labels; strata with fewer than ``min_cells`` cells are left out.
    tfs
        Candidate sources (TF x gene pairs); None: every unordered gene pair.
    reference
        Optional reference: adds ``in_reference``.
    alpha
        FDR level of ``called``.

    Returns
    -------
    One row per candidate edge: ``evidence, data, source, target, cssi_max`` (max over strata of ``|rho_k|``),
    ``best_stratum``, ``p_min``, ``p`` (Tippett), ``q`` (BH), ``called`` (``q < alpha``) and ``in_reference``.
    """
    from statsmodels.stats.multitest import multipletests

    genes = np.asarray(genes).astype(str)
    strata = np.asarray(strata).astype(str)
    if strata.shape[0] != X.shape[0]:
        raise InputError(f"{strata.shape[0]} stratum labels for {X.shape[0]} cells")
    labs, counts = np.unique(strata, return_counts=True)
    keep = labs[counts >= min_cells]
    if keep.size == 0:
        raise InputError(f"no stratum has at least min_cells={min_cells} cells")
    g = genes.size
    if tfs is not None:
        src = np.isin(genes, list(map(str, tfs)))
        rows, cols = np.nonzero(src[:, None] & ~np.eye(g, dtype=bool))
    else:
        rows, cols = np.triu_indices(g, k=1)
    P = np.ones((keep.size, rows.size))
    R = np.zeros((keep.size, rows.size))
    for i, k in enumerate(keep):
        cells = strata == k
        nk = int(cells.sum())
        rho = spearman_matrix(X[cells])[rows, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = rho * np.sqrt((nk - 2) / np.clip(1 - rho**2, 1e-12, None))
        P[i] = 2 * stats.t.sf(np.abs(t), nk - 2)
        R[i] = np.abs(rho)
    p_min = P.min(axis=0)
    p = 1 - (1 - p_min) ** keep.size
    q = multipletests(p, method="fdr_bh")[1]
    out = pd.DataFrame({"source": genes[rows], "target": genes[cols], "cssi_max": R.max(axis=0),
                        "best_stratum": keep[R.argmax(axis=0)], "p_min": p_min, "p": p, "q": q, "called": q < alpha})
    if reference is not None:
        pairs = set(zip(reference.edges["source"], reference.edges["target"]))
        if not reference.directed or tfs is None:
            pairs |= {(b, a) for a, b in pairs}
        out["in_reference"] = [(s, t) in pairs for s, t in zip(out["source"], out["target"])]
    return _tag(out, evidence, data)


def cssi_edge_fdr_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`cssi_edge_fdr` (exploratory): with ``in_reference``, Fisher's test that called
    edges are enriched for reference edges."""
    if "in_reference" not in table.columns or table.empty:
        return []
    called, ref = table["called"].to_numpy(bool), table["in_reference"].to_numpy(bool)
    tab = [[int((called & ref).sum()), int((called & ~ref).sum())],
           [int((~called & ref).sum()), int((~called & ~ref).sum())]]
    odds, p = stats.fisher_exact(tab, alternative="greater")
    ev, data = table["evidence"].iloc[0], table["data"].iloc[0]
    return [registry_row("CSSI edge FDR", f"edges called by per-stratum {ev} (BH q < 0.05) are enriched for the "
                         f"reference ({data} data)", "Fisher exact (one-sided)", p, odds, len(table),
                         effect="odds ratio", statistic=float(called.sum()))]
