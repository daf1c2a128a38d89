"""Biological budgets of white-box attacks: which genes, how far, within which bounds.

A budget says what an adversary may change in the cells of one cluster:

- **L0**: at most ``k`` genes, the same genes in every cell of the cluster (like the other attacks'
  gene-wise modifications), chosen by :func:`rank_genes`;
- **bounds**: each value stays within the gene's observed range over all cells of the dataset
  (``bounds="range"``: [min, max]) or within its 1st-99th percentiles (``"percentile"``: adverSCarial's
  perc1 / perc99 values); in raw-count and log1p spaces these bounds are non-negative by construction
  (observed values are), and a negative lower bound is raised to 0 (``nonnegative``);
- **amplitude**: each value moves at most ``amplitude x (hi - lo)`` away from its original value
  (an L-infinity ball measured in units of the gene's allowed range; 1 = the whole range);
- **library size** (raw-count space): the cell's total count stays fixed (``"preserve"``): the other
  genes absorb the change of the attacked ones proportionally (compositional closure: sequencing depth
  is fixed, so raising a gene's share lowers every other gene's share by the same factor, their ratios
  unchanged); ``"free"`` lets the total change (normalisation then rescales every gene).

The projection onto the budget is ours; the gradient steps are the adversarial-robustness-toolbox's
(:mod:`perturblab.attack.whitebox`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError

__all__ = ["Budget", "closure_gradient", "gene_bounds", "rank_genes"]

_BOUNDS = ("range", "percentile")
_LIBRARY = ("preserve", "free")


@dataclass(frozen=True)
class Budget:
    """What an attack on one cluster may change (see the module docstring).

    Attributes
    ----------
    k
        Maximum number of genes changed (L0), >= 1.
    amplitude
        Maximum change of a value, as a fraction of its gene's allowed range (``hi - lo``), in (0, 1].
    bounds
        ``"range"`` (observed [min, max] over all cells) or ``"percentile"`` ([perc1, perc99]).
    nonnegative
        Raise negative lower bounds to 0 (expression spaces: counts, log1p). Set False for scaled data.
    library_size
        Raw-count space only: ``"preserve"`` (default) or ``"free"``.
    round_counts
        Raw-count space only: round the attacked genes' counts to integers at the end (success is
        judged after rounding).
    """

    k: int = 10
    amplitude: float = 1.0
    bounds: str = "range"
    nonnegative: bool = True
    library_size: str = "preserve"
    round_counts: bool = True

    def __post_init__(self):
        if int(self.k) < 1:
            raise InputError(f"budget k (genes changed) must be >= 1, got {self.k}")
        if not 0 < float(self.amplitude) <= 1:
            raise InputError(
                f"budget amplitude must be in (0, 1] (a fraction of the gene's range), got {self.amplitude}")
        if self.bounds not in _BOUNDS:
            raise InputError(f"budget bounds must be one of {', '.join(_BOUNDS)}, got {self.bounds!r}")
        if self.library_size not in _LIBRARY:
            raise InputError(f"budget library_size must be one of {', '.join(_LIBRARY)}, got {self.library_size!r}")


def gene_bounds(X, bounds: str = "range", nonnegative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene bounds over all cells of ``X``.

    Parameters
    ----------
    X
        Cells x genes (the attack space: model input or raw counts), dense.
    bounds
        ``"range"``: column min and max; ``"percentile"``: column 1st and 99th percentiles (numpy's
        linear interpolation = R's type 7, adverSCarial's perc1 / perc99).
    nonnegative
        Raise negative lower bounds to 0 (and upper bounds with them).

    Returns
    -------
    (lo, hi)
        float32 vectors over genes (``lo <= hi``; equal for a gene that cannot move).
    """
    if bounds not in _BOUNDS:
        raise InputError(f"bounds must be one of {', '.join(_BOUNDS)}, got {bounds!r}")
    X = np.asarray(X, dtype=np.float32)
    if bounds == "range":
        lo, hi = X.min(axis=0), X.max(axis=0)
    else:
        lo, hi = np.quantile(X, [0.01, 0.99], axis=0, method="linear").astype(np.float32)
    if nonnegative:
        lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return lo.astype(np.float32), hi.astype(np.float32)


def closure_gradient(G: np.ndarray, C: np.ndarray, library: np.ndarray) -> np.ndarray:
    """Gradient with respect to each gene's count when the library size is preserved.

    Raising gene ``j`` by ``d`` scales every other gene by ``(L - c_j - d) / (L - c_j)``, so
    ``dloss/dd = G_j - sum_{g != j} G_g c_g / (L - c_j)`` with ``G`` the gradient at a fixed library
    size ``L``. Rows are cells; a gene holding the whole library keeps ``G_j``.

    Parameters
    ----------
    G
        Cells x genes gradient of the loss with the library size held at ``library``.
    C
        Cells x genes counts.
    library
        Library size per cell.
    """
    G = np.asarray(G, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    L = np.asarray(library, dtype=np.float64).reshape(-1, 1)
    total = (G * C).sum(axis=1, keepdims=True)
    rest = L - C
    with np.errstate(divide="ignore", invalid="ignore"):
        out = G - (total - G * C) / rest
    return np.where(rest > 0, out, G)


def rank_genes(grad, X, lo, hi, amplitude: float, how: str = "gain", candidates=None) -> tuple[np.ndarray, np.ndarray]:
    """Rank genes for an L0 budget from the loss gradient over the cells of a cluster.

    Parameters
    ----------
    grad
        Cells x genes gradient of the loss the attack *increases* (for a targeted attack, pass minus
        the gradient of the loss to the target).
    X
        Cells x genes values of those cells.
    lo, hi
        Per-gene bounds (:func:`gene_bounds`).
    amplitude
        Fraction of the range a value may move (:class:`Budget`).
    how
        ``"gain"`` (default): the first-order loss increase a gene allows within the budget, averaged
        over the cells: ``g * min(eps, hi - x)`` where the gradient ``g`` is positive, ``|g| * min(eps,
        x - lo)`` where negative, ``eps = amplitude * (hi - lo)``; a gene already at the bound the
        gradient points to gains nothing. ``"gradient"``: the mean ``|g|`` (gradient magnitude alone).
    candidates
        Optional boolean mask or indices of the genes allowed (default: all with ``hi > lo``).

    Returns
    -------
    (order, score)
        Gene indices by decreasing score (genes with score 0 or that cannot move are left out), and
        the score of every gene.
    """
    if how not in ("gain", "gradient"):
        raise InputError(f"gene ranking must be 'gain' or 'gradient', got {how!r}")
    g = np.asarray(grad, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if how == "gradient":
        score = np.abs(g).mean(axis=0)
    else:
        eps = amplitude * (hi - lo)
        up = np.minimum(eps, np.maximum(hi - X, 0))
        down = np.minimum(eps, np.maximum(X - lo, 0))
        score = np.where(g > 0, g * up, -g * down).mean(axis=0)
    allowed = hi > lo
    if candidates is not None:
        c = np.asarray(candidates)
        mask = np.zeros(len(score), dtype=bool)
        if c.dtype == bool:
            mask[:] = c
        else:
            mask[c.astype(np.intp)] = True
        allowed &= mask
    score = np.where(allowed, score, 0.0)
    order = np.argsort(-score, kind="stable")
    return order[score[order] > 0], score
