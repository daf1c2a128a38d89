"""Can the predicted cells be told from the real stimulated cells? An E-distance permutation test, its power,
and the E-distance noise floor of the real cells.

Representation: cells x dimensions in a space fitted on real cells only (``evaluate`` uses 30 PCs of the real
stimulated + control cells of the target); :func:`edistance_check` builds that space from log-normalised cells.
Source: the energy test of Szekely & Rizzo (2004), as scPerturb's ``etest`` (Peidli et al. 2024: permutations of
the pooled cells' labels, p = (1 + #{perm >= observed}) / (1 + n_perm)), with pertpy's Euclidean E-distance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.distance import cdist

from .._validation import check_positive
from ..exceptions import InputError

__all__ = ["EdistanceCheck", "edistance_check", "edistance_permutation_test", "edistance_power", "noise_floor"]


def _edist_from_matrix(D: np.ndarray, a: np.ndarray) -> float:
    """E-distance between the rows labelled True and False of ``a`` from the pooled distance matrix (within-group
    means over i < j, as pertpy)."""
    w = a.astype(np.float64)
    Dw = D @ w
    nx, ny = w.sum(), len(w) - w.sum()
    sxx = w @ Dw
    sxy = (1.0 - w) @ Dw
    syy = D.sum() - sxx - 2 * sxy
    return float(2 * sxy / (nx * ny) - sxx / (nx * (nx - 1)) - syy / (ny * (ny - 1)))


def edistance_permutation_test(X, Y, n_permutations: int = 500, random_state: int = 0) -> tuple[float, float]:
    """E-distance of ``X`` and ``Y`` and its permutation p-value.

    Parameters
    ----------
    X, Y
        Cells x dimensions (at least 2 cells each, same dimensions).
    n_permutations
        Random relabellings of the pooled cells (group sizes kept).
    random_state
        Seed of the permutations.

    Returns
    -------
    tuple of float
        ``(edistance, p_value)`` with ``p = (1 + #{permuted >= observed}) / (1 + n_permutations)``.

    Raises
    ------
    InputError
        Fewer than 2 cells in a group, or different dimensions.
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise InputError("X and Y must be cells x dimensions with the same dimensions")
    if len(X) < 2 or len(Y) < 2:
        raise InputError(f"the E-distance test needs at least 2 cells per group, got {len(X)} and {len(Y)}")
    check_positive(n_permutations, "n_permutations")
    D = cdist(np.vstack([X, Y]), np.vstack([X, Y]))
    labels = np.r_[np.ones(len(X), bool), np.zeros(len(Y), bool)]
    observed = _edist_from_matrix(D, labels)
    rng = np.random.default_rng(random_state)
    exceed = sum(_edist_from_matrix(D, rng.permutation(labels)) >= observed - 1e-12
                 for _ in range(n_permutations))
    return observed, (1 + exceed) / (1 + n_permutations)


def noise_floor(S, n_splits: int = 20, random_state: int = 0) -> tuple[float, float]:
    """E-distance between two random halves of the real stimulated cells ``S`` (cells x dimensions): its mean
    and 95th percentile over ``n_splits`` seeded splits. A prediction's E-distance near this value is as close
    as two samples of the real cells; the halves hold half the cells, so the floor is a slight overestimate of
    the full-size noise (the estimator's spread shrinks with more cells)."""
    S = np.asarray(S, dtype=np.float64)
    if len(S) < 4:
        raise InputError(f"the noise floor needs at least 4 stimulated cells, got {len(S)}")
    rng = np.random.default_rng(random_state)
    D = cdist(S, S)
    vals = []
    for _ in range(n_splits):
        a = np.zeros(len(S), bool)
        a[rng.permutation(len(S))[: len(S) // 2]] = True
        vals.append(_edist_from_matrix(D, a))
    return float(np.mean(vals)), float(np.percentile(vals, 95))


def edistance_power(S, C, n_pred: int, shortfall: float = 0.2, n_repeats: int = 20, n_permutations: int = 200,
                    alpha: float = 0.05, random_state: int = 0) -> float:
    """Power of :func:`edistance_permutation_test` against a prediction that misses ``shortfall`` of the mean
    response, at these numbers of cells.

    In each repeat the real stimulated cells ``S`` are split at random into a "prediction" of
    ``min(n_pred, n/2)`` cells and a truth of the rest; the prediction is moved back towards the control by
    ``shortfall * (mean S - mean C)`` (a prediction that gets ``1 - shortfall`` of the response right, with real
    cells' spread). Power = share of repeats with p <= ``alpha``. Smaller groups than in the real test (the
    truth loses the prediction's cells), so the power is a lower bound.

    Returns
    -------
    float
        Rejection rate in [0, 1].
    """
    S, C = np.asarray(S, dtype=np.float64), np.asarray(C, dtype=np.float64)
    if len(S) < 4:
        raise InputError(f"the power needs at least 4 stimulated cells, got {len(S)}")
    shift = shortfall * (S.mean(0) - C.mean(0))
    rng = np.random.default_rng(random_state)
    k = max(2, min(int(n_pred), len(S) // 2))
    hits = 0
    for r in range(n_repeats):
        perm = rng.permutation(len(S))
        _, p = edistance_permutation_test(S[perm[:k]] - shift, S[perm[k:]], n_permutations,
                                          random_state=int(rng.integers(2**31)) + r)
        hits += p <= alpha
    return hits / n_repeats


@dataclass
class EdistanceCheck:
    """Result of :func:`edistance_check` (E-distances on the PCA space of the real cells, Euclidean)."""

    edistance: float
    p_value: float
    noise_floor: float
    noise_floor_95: float
    power: float
    shortfall: float
    n_pred: int
    n_stim: int
    n_permutations: int

    def as_dict(self) -> dict:
        return asdict(self)


def edistance_check(pred, real_stim, ctrl, n_pcs: int = 30, n_permutations: int = 500, shortfall: float = 0.2,
                    n_repeats: int = 20, random_state: int = 0) -> EdistanceCheck:
    """The E-distance of a prediction, whether a permutation test tells it from the real stimulated cells, the
    test's power and the noise floor, in the space :func:`perturblab.predict.evaluate` uses.

    Parameters
    ----------
    pred, real_stim, ctrl
        AnnData (or arrays) of predicted, real stimulated and real control cells; log-normalised, same genes.
    n_pcs
        Principal components, fitted on the real stimulated + control cells (seeded), as ``evaluate``.
    n_permutations, random_state
        Of the test (:func:`edistance_permutation_test`).
    shortfall, n_repeats
        Of the power (:func:`edistance_power`, with 200 permutations per repeat).

    Returns
    -------
    EdistanceCheck

    Examples
    --------
    >>> check = edistance_check(pred, split.target_stim, split.target_ctrl)  # doctest: +SKIP
    >>> check.p_value > 0.05  # the test cannot tell the prediction from the real cells  # doctest: +SKIP
    """
    from sklearn.decomposition import PCA

    from .._validation import to_dense

    P, S, C = (to_dense(getattr(a, "X", a), np.float64) for a in (pred, real_stim, ctrl))
    n = min(n_pcs, len(S) + len(C) - 1, S.shape[1])
    pca = PCA(n_components=n, random_state=random_state).fit(np.vstack([S, C]))
    Pp, Sp, Cp = pca.transform(P), pca.transform(S), pca.transform(C)
    e, p = edistance_permutation_test(Pp, Sp, n_permutations, random_state)
    floor, floor95 = noise_floor(Sp, random_state=random_state)
    power = edistance_power(Sp, Cp, len(Pp), shortfall, n_repeats, random_state=random_state)
    return EdistanceCheck(e, p, floor, floor95, power, shortfall, len(Pp), len(Sp), n_permutations)
