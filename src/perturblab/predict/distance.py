"""Pairwise distances between groups of cells, in the style of ``pertpy.tl.Distance``.

:func:`distance` compares every pair of groups of an obs column (conditions, perturbations, control / real /
predicted cells of :func:`perturblab.predict.combine_cells`) with one metric and returns a groups x groups
DataFrame. The metrics are those of :mod:`perturblab.predict.metrics`, the code behind
:func:`perturblab.predict.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .._validation import check_labels, check_values_present, to_dense
from ..exceptions import InputError, MissingKeyError, UnknownNameError
from . import metrics as M

__all__ = ["DISTANCES", "distance"]


def _means(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    """A distance between the two groups' mean profiles."""
    return lambda X, Y: fn(X.mean(0), Y.mean(0))


def _pearson_distance(x: np.ndarray, y: np.ndarray) -> float:
    return float(1.0 - np.corrcoef(x, y)[0, 1])


def _spearman_distance(x: np.ndarray, y: np.ndarray) -> float:
    return float(1.0 - spearmanr(x, y).statistic)


def _cosine_distance(x: np.ndarray, y: np.ndarray) -> float:
    return float(1.0 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


#: ``{name: (function of two cells x features arrays, needs >= 2 cells per group)}``.
DISTANCES: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    "edistance": (lambda X, Y: M.edistance(X, Y), True),
    "sq_edistance": (lambda X, Y: M.edistance(X, Y, squared=True), True),
    "mmd": (lambda X, Y: M.mmd(X, Y, "linear"), False),
    "mmd_rbf": (lambda X, Y: M.mmd(X, Y, "rbf"), False),
    "wasserstein": (lambda X, Y: float(M.wasserstein_per_gene(X, Y).mean()), False),
    "mse": (_means(lambda x, y: M.mse(x, y)), False),
    "mae": (_means(lambda x, y: M.mae(x, y)), False),
    "euclidean": (_means(lambda x, y: float(np.linalg.norm(x - y))), False),
    "pearson_distance": (_means(_pearson_distance), False),
    "spearman_distance": (_means(_spearman_distance), False),
    "cosine_distance": (_means(_cosine_distance), False),
    "r2_distance": (_means(lambda x, y: 1.0 - M.r2_pearson(x, y)), False),
}


def distance(adata: ad.AnnData, groupby: str, metric: str = "edistance", *, obsm_key: str | None = None,
             layer: str | None = None, groups: Sequence[str] | None = None) -> pd.DataFrame:
    """Distance between every pair of groups of cells (pertpy's ``Distance(metric)(adata, groupby)`` shape).

    Parameters
    ----------
    adata
        Cells x genes (log-normalised expression as the models use, or counts if you choose), or any
        representation in ``obsm``.
    groupby
        obs column whose values are the groups (e.g. a condition, or ``"perturblab_source"`` of
        :func:`perturblab.predict.combine_cells`).
    metric
        One of :data:`DISTANCES`:

        - on the cells: ``"edistance"`` (energy distance on Euclidean distances, as pertpy), ``"sq_edistance"``
          (on squared distances, scPerturb), ``"mmd"`` (linear kernel), ``"mmd_rbf"``, ``"wasserstein"``
          (mean over features of the 1-D Wasserstein-1 distance);
        - on the groups' mean profiles: ``"mse"``, ``"mae"``, ``"euclidean"``, ``"pearson_distance"``
          (1 - Pearson r), ``"spearman_distance"``, ``"cosine_distance"``, ``"r2_distance"`` (1 - r squared).
    obsm_key
        Use ``adata.obsm[obsm_key]`` (e.g. ``"X_pca"``, pertpy's default representation) instead of ``X``.
        ``None`` (default): ``X`` (or ``layer``).
    layer
        Use ``adata.layers[layer]`` instead of ``X`` (ignored with ``obsm_key``).
    groups
        Groups to compare, in this order (default: every value of ``groupby``, in order of appearance).

    Returns
    -------
    pandas.DataFrame
        Groups x groups, symmetric, 0 on the diagonal; index and columns named ``groupby``. Units: those of the
        representation (Euclidean for ``edistance``), or unitless for the correlation distances.

    Raises
    ------
    MissingKeyError
        ``groupby``, ``obsm_key`` or ``layer`` is absent.
    UnknownNameError
        An unknown metric or group (with "did you mean").
    InputError
        Fewer than 2 groups, or a group with fewer than 2 cells for a metric on cells pairs.

    Examples
    --------
    >>> import perturblab as plab
    >>> adata = plab.predict.prepare(plab.datasets.kang2018(), n_top_genes=200)
    >>> d = plab.predict.distance(adata, groupby="condition", metric="mse")
    >>> d.shape, bool(d.loc["control", "stimulated"] == d.loc["stimulated", "control"] > 0)
    ((2, 2), True)
    """
    if metric not in DISTANCES:
        raise UnknownNameError("distance metric", metric, DISTANCES)
    check_labels(adata, groupby, "group")
    values = pd.Series(adata.obs[groupby].astype(str).to_numpy())
    present = list(dict.fromkeys(values))
    if groups is None:
        groups = present
    else:
        groups = [str(g) for g in groups]
        check_values_present(groups, present, f"group (in adata.obs[{groupby!r}])")
    if len(groups) < 2:
        raise InputError(f"adata.obs[{groupby!r}] holds {len(groups)} group(s); a distance needs at least 2")
    if obsm_key is not None:
        if obsm_key not in adata.obsm:
            raise MissingKeyError(f"adata.obsm has no {obsm_key!r}; compute it (e.g. sc.pp.pca) or pass obsm_key=None")
        X = np.asarray(adata.obsm[obsm_key], dtype=np.float64)
    elif layer is not None:
        if layer not in adata.layers:
            raise MissingKeyError(f"adata.layers has no {layer!r}; choose one of {list(adata.layers)} or None for X")
        X = to_dense(adata.layers[layer], np.float64)
    else:
        X = to_dense(adata.X, np.float64)
    fn, pairs = DISTANCES[metric]
    cells = {g: X[(values == g).to_numpy()] for g in groups}
    if pairs:
        small = {g: len(c) for g, c in cells.items() if len(c) < 2}
        if small:
            raise InputError(f"{metric} needs at least 2 cells per group, but {small} have fewer; drop those groups "
                             "with groups=[...]")
    out = pd.DataFrame(0.0, index=pd.Index(groups, name=groupby), columns=pd.Index(groups, name=groupby))
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            out.loc[a, b] = out.loc[b, a] = fn(cells[a], cells[b])
    return out
