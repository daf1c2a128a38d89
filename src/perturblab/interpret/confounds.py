"""Confounds of edge scores and null models (Kendiukhov 2026, section 7).

* :func:`confound_r2` - how much of an edge score is explained by the gene-level features
  (mean, variance, detection) of its source and target: cross-validated R2 of OLS and GBDT.
* :func:`residualise` - cross-fitted residualisation: the part of the score the features do not
  predict (out-of-fold), to test whether reference recovery survives.
* :func:`degree_preserving_null` - curveball randomisation (Strona et al. 2014) of the reference
  inside the candidate universe, keeping every source's and target's degree: is recovery more
  than "hub genes score high"?
* :func:`label_shuffle_null` - the same genes with permuted labels.
Both nulls give the observed AUROC, null mean/sd, z-score and an empirical p ``(1 + #null >= obs) / (1 + n)``.
Propensity-score matching of edges on gene covariates (also in the anchor) is in :mod:`.matching`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..exceptions import InputError
from .edges import EdgeScores
from .metrics import auroc, auroc_ranks
from .references import Reference, candidate_edges, candidate_scores

__all__ = ["confound_r2", "curveball", "degree_preserving_null", "edge_feature_design", "label_shuffle_null",
           "residualise"]


def edge_feature_design(features: pd.DataFrame, genes, rows, cols) -> np.ndarray:
    """``(n_edges, 2 * n_features)`` design: source features then target features of each edge."""
    F = features.loc[np.asarray(genes).astype(str)].to_numpy(float)
    return np.hstack([F[rows], F[cols]])


def _offdiag(g: int):
    r, c = np.nonzero(~np.eye(g, dtype=bool))
    return r, c


def _cv_predict(kind: str, X: np.ndarray, y: np.ndarray, n_splits: int, random_state: int) -> np.ndarray:
    """Out-of-fold predictions (shuffled KFold); one BLAS/OpenMP thread (small fits, shared CPUs)."""
    from sklearn.model_selection import KFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return cross_val_predict(_regressor(kind, random_state), X, y,
                                 cv=KFold(n_splits, shuffle=True, random_state=random_state))


def _regressor(kind: str, random_state: int):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    if kind == "ols":
        return LinearRegression()
    if kind == "gbdt":
        return HistGradientBoostingRegressor(max_iter=100, random_state=random_state)
    raise InputError(f"model must be 'ols' or 'gbdt', got {kind!r}")


def confound_r2(scores: EdgeScores, features: pd.DataFrame, n_splits: int = 5, random_state: int = 0) -> pd.DataFrame:
    """Cross-validated R2 of the edge score (all ordered off-diagonal pairs) on source/target gene features.

    Parameters
    ----------
    scores
        Edge scores; ``features`` (from :func:`~perturblab.interpret.baselines.gene_features`) must cover its genes.

    Returns
    -------
    Two rows (``ols``, ``gbdt``): ``score, kind, layer, head, model, r2, n_edges``. Cross-validated
    (shuffled KFold) rather than in-sample, so a flexible model cannot inflate it.
    """
    r, c = _offdiag(scores.genes.size)
    X = edge_feature_design(features, scores.genes, r, c)
    y = scores.matrix[r, c]
    rows = []
    for kind in ("ols", "gbdt"):
        pred = _cv_predict(kind, X, y, n_splits, random_state)
        ss_tot = ((y - y.mean()) ** 2).sum()
        r2 = 1.0 - ((y - pred) ** 2).sum() / ss_tot if ss_tot > 0 else np.nan
        rows.append({**scores.describe(), "model": kind, "r2": float(r2), "n_edges": int(y.size)})
    return pd.DataFrame(rows)


def residualise(scores: EdgeScores, features: pd.DataFrame, model: str = "gbdt", n_splits: int = 5,
                random_state: int = 0) -> EdgeScores:
    """Cross-fitted residual edge scores: ``S[i, j] - f(features_i, features_j)`` with ``f`` fit out-of-fold.

    Returns
    -------
    EdgeScores named ``"<name> | residualised"`` (diagonal 0).
    """
    g = scores.genes.size
    r, c = _offdiag(g)
    X = edge_feature_design(features, scores.genes, r, c)
    y = scores.matrix[r, c]
    pred = _cv_predict(model, X, y, n_splits, random_state)
    M = np.zeros((g, g))
    M[r, c] = y - pred
    return EdgeScores(f"{scores.name} | residualised", M, scores.genes, scores.kind, scores.layer, scores.head)


def curveball(rows: np.ndarray, cols: np.ndarray, labels: np.ndarray, n_trades: int | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """Degree-preserving randomisation of the positive edges among the candidates (curveball algorithm).

    Parameters
    ----------
    rows, cols, labels
        Candidate edges (source index, target index) and their positive labels; the candidate set is
        "every source row x every target except itself", as built by :func:`candidate_edges`.
    n_trades
        Pairwise trades (default ``5 * number of sources``).

    Returns
    -------
    New labels with every source's and every target's number of positives unchanged and no self-loop.
    """
    rng = rng or np.random.default_rng()
    sources = np.unique(rows)
    sets = {s: set(cols[(rows == s) & labels].tolist()) for s in sources}
    active = [s for s in sources if sets[s]]
    if len(active) >= 2:
        for _ in range(n_trades or 5 * len(sources)):
            a, b = rng.choice(active, 2, replace=False)
            sa, sb = sets[a], sets[b]
            a_only, b_only = sa - sb, sb - sa
            if not a_only and not b_only:
                continue
            pool = a_only | b_only
            to_a = {b} & pool  # b's own gene cannot be b's target
            to_b = {a} & pool
            free = np.array(sorted(pool - to_a - to_b), dtype=int)
            rng.shuffle(free)
            n_a = len(a_only) - len(to_a)
            common = sa & sb
            sets[a] = common | to_a | set(free[:n_a].tolist())
            sets[b] = common | to_b | set(free[n_a:].tolist())
    n = int(max(rows.max(initial=0), cols.max(initial=0))) + 1
    pos = np.array([s * n + t for s, ts in sets.items() for t in ts], dtype=np.int64)
    return np.isin(rows.astype(np.int64) * n + cols.astype(np.int64), pos)


def _null_summary(name: str, scores: EdgeScores, reference: Reference, observed: float, null: np.ndarray) -> dict:
    null = null[np.isfinite(null)]
    sd = float(null.std(ddof=1)) if null.size > 1 else np.nan
    return {**scores.describe(), "reference": reference.name, "null": name, "observed_auroc": observed,
            "null_mean": float(null.mean()), "null_sd": sd,
            "z": (observed - null.mean()) / sd if sd and sd > 0 else np.nan,
            "p_empirical": float((1 + (null >= observed).sum()) / (1 + null.size)), "n_null": int(null.size)}


def degree_preserving_null(scores: EdgeScores, reference: Reference, tfs: Iterable[str] | None = None,
                           n_null: int = 200, random_state: int = 0) -> dict:
    """Reference AUROC vs curveball-randomised references (directed references; see module docstring).

    Raises
    ------
    ValueError
        For an undirected reference or a reference with no edge among the candidates.
    """
    if not reference.directed:
        raise InputError(f"the curveball null needs a directed (TF -> target) reference; {reference.name!r} is "
                         "undirected")
    rows, cols, lab = candidate_edges(scores.genes, reference, tfs)
    if not lab.any():
        raise InputError(f"reference {reference.name!r} has no edge among the candidates")
    v = candidate_scores(scores.matrix, rows, cols, True)
    rng = np.random.default_rng(random_state)
    ranks = rankdata(v)
    n1 = float(lab.sum())
    n0 = lab.size - n1
    null = np.empty(n_null)
    for i in range(n_null):  # one label vector at a time: memory of the candidates, not n_null x candidates
        null[i] = (ranks[curveball(rows, cols, lab, rng=rng)].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    return _null_summary("degree-preserving (curveball)", scores, reference, auroc(v, lab), null)


def label_shuffle_null(scores: EdgeScores, reference: Reference, tfs: Iterable[str] | None = None,
                       n_null: int = 1000, random_state: int = 0, chunk: int = 100,
                       max_chunk_bytes: float = 2e8) -> dict:
    """Reference AUROC vs the same score matrix with gene labels permuted (rows and columns together).

    Permutations are scored ``chunk`` at a time, fewer when ``chunk x candidates`` float64 values would exceed
    ``max_chunk_bytes`` (about three such arrays are alive at once); the numbers do not depend on the chunk.
    """
    rows, cols, lab = candidate_edges(scores.genes, reference, tfs)
    if not lab.any():
        raise InputError(f"reference {reference.name!r} has no edge among the candidates")
    v = candidate_scores(scores.matrix, rows, cols, reference.directed)
    rng = np.random.default_rng(random_state)
    g = scores.genes.size
    chunk = int(max(1, min(chunk, max_chunk_bytes // (8 * max(rows.size, 1)))))
    null = []
    for start in range(0, n_null, chunk):
        perms = np.stack([rng.permutation(g) for _ in range(min(chunk, n_null - start))])
        if reference.directed:
            vals = scores.matrix[perms[:, rows], perms[:, cols]]
        else:
            vals = np.maximum(scores.matrix[perms[:, rows], perms[:, cols]],
                              scores.matrix[perms[:, cols], perms[:, rows]])
        null.append(np.atleast_1d(auroc_ranks(vals, lab)))
    return _null_summary("label shuffle", scores, reference, auroc(v, lab), np.concatenate(null))
