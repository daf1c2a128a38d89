"""Metrics over several targets at once: can the prediction for one target be told apart from the truth
of the others?

Inputs are matrices with one row per target (held-out cell type or perturbation) and one column per gene,
in the same target order on both sides: per-target mean expression (centroids) or changes from control
(deltas), log-normalised scale.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["centroid_accuracy", "discrimination_score", "perfect_discrimination_l2"]

_METRICS = {"l1": "cityblock", "manhattan": "cityblock", "cityblock": "cityblock", "l2": "euclidean",
            "euclidean": "euclidean", "cosine": "cosine"}


def _matrices(pred, real) -> tuple[np.ndarray, np.ndarray]:
    P, R = np.atleast_2d(np.asarray(pred, dtype=np.float64)), np.atleast_2d(np.asarray(real, dtype=np.float64))
    if P.shape != R.shape:
        raise ValueError(f"pred has shape {P.shape} and real {R.shape}; give one row per target and one column "
                         "per gene on both sides, in the same order")
    if P.shape[0] < 2:
        raise ValueError("a score over targets needs at least 2 targets")
    return P, R


def discrimination_score(pred_deltas, real_deltas, metric: str = "l1", exclude=None) -> np.ndarray:
    """cell-eval's ``discrimination_score_{l1,l2,cosine}``: how well each predicted delta picks out its own
    target's real delta among all targets' real deltas.

    For target ``p``: distances ``d_q = dist(pred_p, real_q)`` to every target ``q``; ``rank`` = position of
    ``q = p`` in ascending order (0 = closest); score ``1 - rank / T`` with ``T`` targets (1 best,
    ``1 / T`` worst). cell-eval 0.8.1 (``metrics/_anndata.py``) does the same on pseudobulk deltas
    (``pert mean - control mean``); its sort is numpy's default quicksort, so exact ties may order
    differently there; here ties keep target order (stable sort).

    Parameters
    ----------
    pred_deltas, real_deltas
        Targets x genes. For cell types, give each target's delta from ITS OWN control cells (a shared
        control would make the score measure cell identity, which the prediction inherits from its input,
        rather than the response). With one control shared by all targets (Perturb-seq) the l1 and l2 scores
        equal cell-eval's whether deltas or means are given. The predicted and the real delta hold the same
        control mean: a prediction that does not carry its control cells' sample mean (decoded cells) shares
        that mean's sampling noise with its real delta, one made by shifting the control cells does not, and
        the score favours the first beyond the quality of its response. On 8 Kang types (seed 0) PyPI scPRAM
        scores 1.0 and the OT shift .75; .81 and .71 when the two deltas take different halves of the control
        cells (``benchmarks/predict_peers.py``, ``discrimination_split_control``). What a perfect prediction of
        each kind is expected to score: :func:`perfect_discrimination_l2`.
    metric
        ``"l1"`` (cityblock), ``"l2"`` (Euclidean) or ``"cosine"`` (cosine distance).
    exclude
        Optional list (one entry per target) of gene indices left out of that target's distances: the
        target gene of a genetic perturbation (cell-eval's ``exclude_target_gene``); cell types have none.

    Returns
    -------
    numpy.ndarray
        One score per target.

    Examples
    --------
    >>> import numpy as np
    >>> real = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    >>> discrimination_score(real + 0.1, real).tolist()
    [1.0, 1.0, 1.0]
    """
    P, R = _matrices(pred_deltas, real_deltas)
    if metric not in _METRICS:
        raise ValueError(f"unknown distance {metric!r}; use 'l1', 'l2' or 'cosine'")
    T, G = P.shape
    scores = np.empty(T)
    for p in range(T):
        keep = np.ones(G, dtype=bool)
        if exclude is not None and len(exclude[p]):
            keep[np.asarray(exclude[p], dtype=int)] = False
        d = cdist(R[:, keep], P[p:p + 1, keep], _METRICS[metric]).ravel()
        rank = int(np.flatnonzero(np.argsort(d, kind="stable") == p)[0])
        scores[p] = 1.0 - rank / T
    return scores


def perfect_discrimination_l2(real_deltas, own_variance) -> np.ndarray:
    """The l2 discrimination score a perfect predictor is expected to reach: what :func:`discrimination_score`
    can give at best when the real deltas carry their sampling noise.

    A predictor equal to target ``a``'s expected delta ``mu_a`` lies at expected squared distance
    ``E||mu_a - R_a||^2 = v_a`` from its own real delta ``R_a`` (``v_a``: the sampling variance of the part of
    ``R_a`` the prediction does not share, summed over genes) and, with ``||R_a - R_b||^2 - v_a`` as the
    unbiased estimate of ``E||mu_a - R_b||^2``, at ``||R_a - R_b||^2 - v_a`` from target ``b``'s. Its expected
    rank is ``#{b != a : ||R_a - R_b||^2 < 2 v_a}``, its score ``1 - rank / T`` (as
    :func:`discrimination_score`; the rank of the expected distances, not the expected rank). Not a cell-eval
    metric: perturblab's reading of it.

    Which ``v_a``: a prediction made by shifting the target's control cells carries their sample mean, so it
    shares nothing with ``R_a = mean(stim_a) - mean(ctrl_a)``: ``v_a = sum_g (s2_ctrl / n_ctrl + s2_stim /
    n_stim)``. A prediction that does not carry the control cells' sample mean (decoded cells), scored with
    the same control mean in both deltas as cell-eval does, shares the control part: ``v_a = sum_g s2_stim /
    n_stim``. On 8 Kang types (seed 0) the first gives .95 (CD8 T and T activated, 69 and 48 control cells,
    are expected nearer the real delta of CD4 T cells than to their own), the second 1.0: a model that shifts
    real cells cannot be expected to match a decoded model's score there, however good its response.

    Parameters
    ----------
    real_deltas
        Targets x genes: each target's real delta from its own control cells (log-normalised).
    own_variance
        One ``v_a`` per target (sum over genes of the sampling variances, log-normalised units squared).

    Returns
    -------
    numpy.ndarray
        One expected score per target, in ``[1/T, 1]``.

    Raises
    ------
    ValueError
        Fewer than 2 targets, a variance count that differs from the targets, a NaN or a negative variance.

    Examples
    --------
    >>> import numpy as np
    >>> real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # squared distances 1, 9 and 10
    >>> perfect_discrimination_l2(real, [0.1, 0.1, 0.1]).tolist()
    [1.0, 1.0, 1.0]
    >>> perfect_discrimination_l2(real, [0.6, 0.1, 6.0]).tolist()  # a: 1 < 1.2; c: 9 and 10 < 12
    [0.6666666666666667, 1.0, 0.33333333333333337]
    """
    R = np.atleast_2d(np.asarray(real_deltas, dtype=np.float64))
    v = np.asarray(own_variance, dtype=np.float64).ravel()
    if R.shape[0] < 2 or v.shape != (R.shape[0],):
        raise ValueError(f"give one real delta (row) and one variance per target, at least 2 targets; got "
                         f"{R.shape[0]} rows and {v.size} variances")
    if not (np.isfinite(v).all() and (v >= 0).all() and np.isfinite(R).all()):
        raise ValueError("real deltas and variances must be finite and the variances >= 0 (sums of squared standard "
                         "errors); drop the genes or targets with NaN")
    D2 = cdist(R, R, "sqeuclidean")
    np.fill_diagonal(D2, np.inf)
    rank = (2.0 * v[:, None] > D2).sum(axis=1)
    return 1.0 - rank / R.shape[0]


def centroid_accuracy(pred_centroids, real_centroids) -> np.ndarray:
    """Systema's centroid accuracy: the share of the other targets whose real centroid lies farther from
    the predicted centroid than the target's own real centroid.

    ``acc_p = #{q != p : ||pred_p - real_q|| > ||pred_p - real_p||} / (T - 1)`` with Euclidean distances
    (mlbio-epfl/systema ``evaluation/centroid_accuracy.py``, ``calculate_centroid_accuracies``); 1 when the
    own centroid is the closest. Systema passes post-perturbation centroids (mean expression); deltas from
    one shared reference give the same value.
    """
    P, R = _matrices(pred_centroids, real_centroids)
    D = cdist(P, R, "euclidean")
    own = np.diag(D)
    T = P.shape[0]
    return ((own[:, None] < D).sum(axis=1)) / (T - 1)
