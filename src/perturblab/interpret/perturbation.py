"""Perturbation-first evaluation (Kendiukhov 2026, section 4).

For each knocked-out gene ``g`` its DE targets are called against the control cells
(Welch t-test on log1p-normalised expression, ``|log2FC| > 0.5``, BH FDR 0.05 over genes; genes detected in
fewer than 10% of both groups are not tested, see :func:`de_targets`).
Each edge score then ranks the candidate targets of ``g`` by ``S[g, :]`` (all genes except
``g``); the per-perturbation AUROC measures how well it finds the real targets. Scores are
compared with a paired Wilcoxon signed-rank test and a bootstrap CI over perturbations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.stats import rankdata

from .._validation import check_counts, check_obs_key, check_values_present
from ..exceptions import InputError, MissingKeyError
from ._types import Genes
from .edges import EdgeScores

__all__ = [
    "DEFAULT_MIN_DETECTION",
    "TargetLabels",
    "bootstrap_mean_ci",
    "compare_scores",
    "de_targets",
    "perturbation_auroc",
]

#: Default of :func:`de_targets`' minimum-detection filter (fraction of cells, perturbed or control).
DEFAULT_MIN_DETECTION = 0.1


def de_targets(
    adata,
    perturbation_key: str = "perturbation",
    control: str = "control",
    perturbations: Sequence[str] | None = None,
    genes: Genes | None = None,
    lfc_threshold: float = 0.5,
    alpha: float = 0.05,
    min_cells: int = 10,
    min_detection: float = DEFAULT_MIN_DETECTION,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Differential expression of every perturbation against the control cells, one perturbation at a time.

    Parameters
    ----------
    adata
        Cells x genes **raw counts**, dense or sparse (CSR/CSC); normalised here to 1e4 per cell and ``log1p``.
    perturbation_key
        ``obs`` column naming each cell's perturbation (the knocked-out gene) or ``control``.
    control
        The value of ``perturbation_key`` for control cells.
    perturbations
        Perturbations to test (default: every non-control value with >= ``min_cells`` cells).
    genes
        Genes to test (default: all); library sizes always use all genes of ``adata``.
    lfc_threshold, alpha
        A gene is a DE target when ``|log2FC| > lfc_threshold`` and BH-adjusted p < ``alpha``
        (Kendiukhov 2026: 0.5 and 0.05). ``log2FC = log2((mean_pert + 1e-9) / (mean_ctrl + 1e-9))`` on
        normalised (not log) expression.
    min_cells
        Minimum cells per group.
    min_detection
        Minimum-detection filter (Seurat's ``min.pct`` convention): a gene is tested for a perturbation only
        when it has a non-zero count in at least this fraction of the perturbed cells or of the control cells;
        other genes get ``tested = False``, ``p = padj = 1``, are never targets and are left out of the BH
        family. Default 0.1. ``0`` tests every gene, as Kendiukhov 2026 does (see Notes for why that is wrong).
    n_jobs
        Worker processes for the perturbations (:func:`perturblab.runs.execute`; ``-1``: all cores). The
        result does not depend on it.

    Returns
    -------
    Tidy table ``perturbation, gene, log2fc, t, p, padj, is_target, n_cells, n_control, detection,
    detection_control, tested``; ``detection`` is the fraction of the perturbation's cells with a non-zero
    count. The knocked-out gene itself is left out of its own test (it is the perturbed gene, not a target).
    Welch's t-test on the log1p-normalised values (scipy's ``ttest_ind(equal_var=False)``); a gene constant in
    both groups gets ``t = 0, p = 1``; BH over the tested genes of each perturbation.

    Raises
    ------
    KeyError
        If ``perturbation_key`` is missing.
    ValueError
        For unknown perturbations or genes, negative / non-finite counts, too few cells or ``min_detection``
        outside [0, 1] (``InputError``).

    Notes
    -----
    Why a detection filter: Welch's t-test divides by the variance of each group. A gene with no count in any
    of a perturbation's cells has zero variance there, so its t statistic is ``mean_ctrl / SE_ctrl``, which
    grows with the number of control cells whatever the perturbation did: with 10,000 control cells a gene
    detected in 2% of them and absent from 70 perturbed cells (probability 0.24 under no effect) is called a
    target with ``log2FC`` about -25. On a simulated Replogle-scale screen (``benchmarks/interpret_scale.py``)
    such genes were 91% of the calls of the unfiltered test. With ``min_detection = 0.1`` a gene must be seen
    in >= 10% of one group: its absence from n perturbed cells then has probability <= 0.9^n under no
    effect (7e-4 at n = 70), and genes silenced by the perturbation (well detected in controls) are still
    tested. The filter changes the candidate universe of nothing else: untested genes stay in the table as
    non-targets.

    Memory: the control cells' per-gene mean and variance are computed once, on the sparse matrix (two passes
    over its non-zeros, no dense copy); each perturbation's cells are then densified alone (``n_p x G``). A
    screen of 150,000 cells x 4,000 genes (CSR) peaks at the matrix plus the result table
    (``benchmarks/interpret_scale.py``). With ``min_detection = 0`` the results equal the former dense
    implementation to floating-point rounding.

    Examples
    --------
    >>> de = de_targets(adata, "perturbation", "control", lfc_threshold=0.5, alpha=0.05)  # doctest: +SKIP
    >>> de[de.is_target].groupby("perturbation").size()  # doctest: +SKIP
    """
    from .._validation import check_fraction
    from ..runs import execute

    check_obs_key(adata, perturbation_key, "perturbation")
    check_fraction(min_detection, "min_detection", closed_low=True)
    X = adata.X
    check_counts(X, "adata.X")
    labels = adata.obs[perturbation_key].astype(str).to_numpy()
    check_values_present([control], labels, "control label")
    counts = pd.Series(labels).value_counts()
    if perturbations is None:
        perturbations = sorted(str(p) for p, n in counts.items() if p != control and n >= min_cells)
    else:
        check_values_present(list(perturbations), labels, "perturbation")
    ctrl = np.flatnonzero(labels == control)
    if ctrl.size < min_cells:
        raise InputError(f"only {ctrl.size} control cells (< min_cells={min_cells}); lower min_cells or add controls")
    var = np.asarray(adata.var_names).astype(str)
    if genes is not None:
        check_values_present(list(genes), var, "gene")
    names = var if genes is None else np.asarray(genes).astype(str)
    col = pd.Index(var).get_indexer(names)
    if sp.issparse(X):
        X = X.tocsr()
    library = np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
    library = np.where(library == 0, 1.0, library)
    rows_of = pd.Series(np.arange(labels.size)).groupby(labels).indices
    for p in perturbations:
        if len(rows_of[p]) < min_cells:
            raise InputError(f"perturbation {p!r} has {len(rows_of[p])} cells (< min_cells={min_cells}); lower "
                             "min_cells or leave it out of perturbations")
    if not len(perturbations):
        raise InputError(f"no perturbation with at least {min_cells} cells in {perturbation_key!r}; lower min_cells")
    mean_c, var_c, norm_c, det_c = _group_stats(X, ctrl, col, library)
    ctx = _DEContext(X, library, col, names, mean_c, var_c, norm_c, det_c, int(ctrl.size), float(lfc_threshold),
                     float(alpha), float(min_detection))
    tasks = [(str(p), np.asarray(rows_of[p])) for p in perturbations]
    order = {p: i for i, p in enumerate(perturbations)}
    done = [(order[task[0]], df) for task, df in
            execute(_de_one, tasks, shared={"de": ctx}, n_jobs=n_jobs, batch_size=max(1, len(tasks) // 64))]
    return pd.concat([df for _, df in sorted(done, key=lambda x: x[0])], ignore_index=True)


class _DEContext:
    """What every perturbation's test shares (sent once to each worker process)."""

    def __init__(self, X, library, col, names, mean_c, var_c, norm_c, det_c, n_c, lfc, alpha, min_detection):
        self.X, self.library, self.col, self.names = X, library, col, names
        self.mean_c, self.var_c, self.norm_c, self.det_c, self.n_c = mean_c, var_c, norm_c, det_c, n_c
        self.lfc, self.alpha, self.min_detection = lfc, alpha, min_detection


def _de_one(ctx: _DEContext, task) -> pd.DataFrame:
    """Welch t-test of one perturbation's cells against the control statistics."""
    from statsmodels.stats.multitest import multipletests

    p, rows = task
    names = ctx.names
    block = ctx.X[rows][:, ctx.col]
    dense = block.toarray() if sp.issparse(block) else np.asarray(block)
    norm = dense.astype(np.float64) / ctx.library[rows, None] * 1e4
    del dense
    logx = np.log1p(norm)
    keep = names != p
    with np.errstate(invalid="ignore", divide="ignore"):
        t, pv = stats.ttest_ind_from_stats(
            logx.mean(axis=0)[keep], np.sqrt(logx.var(axis=0, ddof=1))[keep], rows.size,
            ctx.mean_c[keep], np.sqrt(ctx.var_c)[keep], ctx.n_c, equal_var=False,
        )
    pv = np.where(np.isnan(pv), 1.0, pv)
    t = np.where(np.isnan(t), 0.0, t)
    lfc = np.log2((norm.mean(axis=0)[keep] + 1e-9) / (ctx.norm_c[keep] + 1e-9))
    det = (norm > 0).mean(axis=0)[keep]
    det_c = ctx.det_c[keep]
    tested = np.maximum(det, det_c) >= ctx.min_detection if ctx.min_detection > 0 else np.ones(det.size, dtype=bool)
    pv = np.where(tested, pv, 1.0)
    padj = np.ones(pv.size)
    if tested.any():
        padj[tested] = multipletests(pv[tested], method="fdr_bh")[1]
    return pd.DataFrame({
        "perturbation": p, "gene": np.asarray(names, dtype=object)[keep], "log2fc": lfc, "t": t, "p": pv,
        "padj": padj, "is_target": tested & (padj < ctx.alpha) & (np.abs(lfc) > ctx.lfc),
        "n_cells": int(rows.size), "n_control": ctx.n_c, "detection": det, "detection_control": det_c,
        "tested": tested,
    })


def _group_stats(X, rows: np.ndarray, col: np.ndarray, library: np.ndarray):
    """Per-gene mean and variance (ddof 1) of log1p-normalised expression, mean of normalised expression and
    detection (fraction of cells with a non-zero count) over the cells ``rows``, for the genes ``col``:
    ``(mean_log (G,), var_log (G,), mean_norm (G,), detection (G,))``.

    A sparse ``X`` stays sparse: the statistics are accumulated over the stored values (zeros contribute
    ``(0 - mean)^2`` to the variance in closed form), in chunks of cells, so memory is one chunk's non-zeros.
    """
    n, G = rows.size, col.size
    if not sp.issparse(X):
        norm = np.asarray(X[rows][:, col], dtype=np.float64) / library[rows, None] * 1e4
        logx = np.log1p(norm)
        return logx.mean(axis=0), logx.var(axis=0, ddof=1), norm.mean(axis=0), (norm > 0).mean(axis=0)
    chunks = [rows[i : i + 20_000] for i in range(0, n, 20_000)]

    def blocks():
        for r in chunks:
            block = X[r][:, col].tocsr()
            block.sum_duplicates()
            block.eliminate_zeros()
            data = block.data.astype(np.float64) / np.repeat(library[r], np.diff(block.indptr)) * 1e4
            yield block.indices, data

    sum_log, sum_norm = np.zeros(G), np.zeros(G)
    for idx, data in blocks():
        sum_log += np.bincount(idx, weights=np.log1p(data), minlength=G)
        sum_norm += np.bincount(idx, weights=data, minlength=G)
    mean_log = sum_log / n
    nnz = np.zeros(G)
    ss = np.zeros(G)
    for idx, data in blocks():
        ss += np.bincount(idx, weights=(np.log1p(data) - mean_log[idx]) ** 2, minlength=G)
        nnz += np.bincount(idx, minlength=G)
    ss += (n - nnz) * mean_log**2  # the zeros
    return mean_log, ss / (n - 1), sum_norm / n, nnz / n


class TargetLabels:
    """DE targets of the rankable perturbations as a boolean matrix over a gene list (built once, reused).

    Parameters
    ----------
    de
        Output of :func:`de_targets`.
    genes
        ``(G,)`` genes of the edge scores (row and column order).

    Attributes
    ----------
    perturbations
        ``(P,)`` perturbations whose gene is among ``genes`` (sorted), the rankable ones.
    rows
        ``(P,)`` index of each perturbed gene in ``genes``.
    labels
        ``(P, G)`` bool: gene ``j`` is a DE target of perturbation ``p`` (the perturbed gene itself False).
    """

    def __init__(self, de: pd.DataFrame, genes):
        self.genes = np.asarray(genes).astype(str)
        index = pd.Index(self.genes)
        perts = np.array(sorted(set(de["perturbation"].astype(str)) & set(self.genes)), dtype=str)
        self.perturbations = perts
        self.rows = index.get_indexer(perts)
        self.labels = np.zeros((perts.size, self.genes.size), dtype=bool)
        if perts.size:
            tg = de[de["is_target"].to_numpy(bool)]
            r = pd.Index(perts).get_indexer(tg["perturbation"].astype(str))
            c = index.get_indexer(tg["gene"].astype(str))
            ok = (r >= 0) & (c >= 0)
            self.labels[r[ok], c[ok]] = True
            self.labels[np.arange(perts.size), self.rows] = False

    def __len__(self) -> int:
        return int(self.perturbations.size)

    def rank(self, matrix: np.ndarray, metrics: Sequence[str] = ("auroc", "auprc")) -> dict[str, np.ndarray]:
        """Per-perturbation AUROC (and AUPRC) of ranking each perturbation's candidates by its row of ``matrix``.

        Candidates are all genes except the perturbed one. Equal to :func:`~perturblab.interpret.metrics.auroc`
        and :func:`~perturblab.interpret.metrics.auprc` (scikit-learn; ties count one half / share a threshold)
        row by row, vectorised. NaN where a perturbation has no DE target (or only targets).
        """
        P = len(self)
        out = {"n_candidates": np.full(P, self.genes.size - 1), "n_targets": self.labels.sum(axis=1)}
        if P == 0:
            return {**out, **{m: np.zeros(0) for m in metrics}}
        M = np.array(matrix[self.rows], dtype=np.float64)
        if not np.isfinite(M).all():
            raise InputError("edge scores contain NaN or infinite values; edge scores must be finite")
        M[np.arange(P), self.rows] = -np.inf  # the perturbed gene: below every candidate, then left out
        n1 = out["n_targets"].astype(np.float64)
        n0 = self.genes.size - 1 - n1
        ok = (n1 > 0) & (n0 > 0)
        if "auroc" in metrics:
            ranks = rankdata(M, axis=1)
            u = (ranks * self.labels).sum(axis=1) - n1 * (n1 + 1) / 2.0 - n1  # each target ranks above the excluded
            with np.errstate(invalid="ignore", divide="ignore"):
                out["auroc"] = np.where(ok, u / (n1 * n0), np.nan)
        if "auprc" in metrics:
            out["auprc"] = _average_precision_rows(M, self.labels, n1)
        return out


def _average_precision_rows(M: np.ndarray, labels: np.ndarray, n1: np.ndarray) -> np.ndarray:
    """Row-wise average precision as scikit-learn computes it (tied scores share one threshold)."""
    P, m = M.shape
    order = np.argsort(-M, axis=1, kind="stable")
    v = np.take_along_axis(M, order, axis=1)
    lab = np.take_along_axis(labels, order, axis=1)
    tp = np.cumsum(lab, axis=1)
    is_end = np.ones((P, m), dtype=bool)
    is_end[:, :-1] = v[:, :-1] != v[:, 1:]
    idx = np.where(is_end, np.arange(m)[None, :], m)
    end = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]  # last index of each element's tie group
    precision = np.take_along_axis(tp, end, axis=1) / (end + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n1 > 0, (precision * lab).sum(axis=1) / n1, np.nan)


def perturbation_auroc(scores: Sequence[EdgeScores], de: pd.DataFrame | None, auprc: bool = True,
                       targets: TargetLabels | None = None) -> pd.DataFrame:
    """Per-perturbation AUROC/AUPRC of each edge score at ranking the DE targets.

    Parameters
    ----------
    scores
        Edge scores over the same genes; perturbation ``g`` is ranked by row ``S[g, :]``.
    de
        Output of :func:`de_targets`; may be None when ``targets`` covers the scores' genes.
    auprc
        Also compute the AUPRC (False: NaN; for per-head ranking, where only the AUROC is used).
    targets
        :class:`TargetLabels` of ``de`` over the scores' genes, to reuse across calls (built when None).

    Raises
    ------
    InputError
        No scores, scores over different genes, or neither ``de`` nor ``targets`` over the scores' genes.

    Returns
    -------
    One row per (score, perturbation): ``score, kind, layer, head, perturbation, n_candidates,
    n_targets, auroc, auprc``. Only perturbations whose gene is among the score genes can be
    ranked; the others have no row (their DE results stay in ``de``). AUROC is NaN when a
    perturbation has no DE target among the candidates. Vectorised over perturbations (ranks), equal to
    scikit-learn's ``roc_auc_score`` / ``average_precision_score`` per perturbation.
    """
    if not scores:
        raise InputError("no edge scores given")
    genes = scores[0].genes
    if targets is None or not np.array_equal(targets.genes, genes):
        if de is None:
            raise InputError("perturbation_auroc needs the DE table (de=) or target labels over the scores' genes")
        targets = TargetLabels(de, genes)
    frames = []
    for s in scores:
        if not np.array_equal(s.genes, genes):
            raise InputError(f"edge scores {s.name!r} are over different genes than {scores[0].name!r}")
        r = targets.rank(s.matrix, ("auroc", "auprc") if auprc else ("auroc",))
        frames.append(pd.DataFrame({**s.describe(), "perturbation": targets.perturbations,
                                    "n_candidates": r["n_candidates"], "n_targets": r["n_targets"],
                                    "auroc": r["auroc"], "auprc": r.get("auprc", np.full(len(targets), np.nan))}))
    cols = ["score", "kind", "layer", "head", "perturbation", "n_candidates", "n_targets", "auroc", "auprc"]
    if not len(targets):
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)[cols]
    return out.sort_values(["perturbation"], kind="stable").reset_index(drop=True) if len(scores) > 1 else out


def bootstrap_mean_ci(values, n_boot: int = 2000, confidence: float = 0.95,
                      random_state: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (NaN for fewer than 2 finite values)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan"), float("nan")
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])
    res = stats.bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=confidence, method="percentile",
                          random_state=np.random.default_rng(random_state))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_scores(per_pert: pd.DataFrame, a: str, b: str, metric: str = "auroc", n_boot: int = 2000,
                   random_state: int = 0) -> dict:
    """Paired comparison of scores ``a`` and ``b`` over perturbations (both with a finite metric).

    Returns
    -------
    dict with ``a, b, n, mean_a, mean_b, delta`` (mean of a - b), ``ci_low, ci_high`` (bootstrap over
    perturbations), ``statistic, p`` (two-sided Wilcoxon signed-rank; p = 1 when all differences are 0).
    """
    wide = per_pert.pivot_table(index="perturbation", columns="score", values=metric, dropna=False)
    for s in (a, b):
        if s not in wide.columns:
            raise MissingKeyError(f"score {s!r} not in the per-perturbation table (have: "
                                  f"{', '.join(map(str, wide.columns))})")
    pair = wide[[a, b]].dropna()
    d = (pair[a] - pair[b]).to_numpy()
    out = {"a": a, "b": b, "n": int(d.size), "mean_a": float(pair[a].mean()), "mean_b": float(pair[b].mean()),
           "delta": float(d.mean()) if d.size else float("nan")}
    out["ci_low"], out["ci_high"] = bootstrap_mean_ci(d, n_boot=n_boot, random_state=random_state)
    if d.size == 0:
        out.update(statistic=float("nan"), p=float("nan"))
    elif np.all(d == 0):
        out.update(statistic=0.0, p=1.0)
    else:
        w = stats.wilcoxon(d)
        out.update(statistic=float(w.statistic), p=float(w.pvalue))
    return out
