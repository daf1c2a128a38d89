"""Dataset variants of a benchmark: how the training cells of a leave-one-cell-type-out split are
altered before a model is trained on them.

A variant only ever changes the **training** cells (``loco_split(...).train``); the held-out
cell type's control cells (the input of ``predict``) and its real stimulated cells (the truth)
are the same in every variant, so the metrics of the variants are directly comparable and show
how each model degrades.
"""

from __future__ import annotations

import zlib

import anndata as ad
import numpy as np

from ..._validation import check_fraction, check_obs_key
from ...exceptions import UnknownNameError

__all__ = ["VARIANTS", "make_variant", "variant_keep_fractions"]

#: The dataset variants of :func:`make_variant`, in the order the report shows them.
VARIANTS = ("balanced", "unbalanced", "proportion_shift")


def _rng(variant: str, random_state: int) -> np.random.Generator:
    # A stable per-variant stream: same seed + same variant -> same cells, whatever else runs.
    return np.random.default_rng([int(random_state), zlib.crc32(variant.encode())])


def variant_keep_fractions(cell_types, variant: str, fraction: float = 0.2, min_fraction: float = 0.1,
                           random_state: int = 0) -> dict[str, float]:
    """Share of each cell type's stimulated training cells that a variant keeps.

    Parameters
    ----------
    cell_types
        Cell-type labels (any order; duplicates ignored).
    variant
        One of :data:`VARIANTS`.
    fraction
        ``"unbalanced"``: the share kept for every cell type (the ECCB 2025 tutorial kept 20%).
    min_fraction
        ``"proportion_shift"``: each cell type keeps a share drawn uniformly from
        ``[min_fraction, 1]`` (seeded), so the stimulated condition's cell-type composition
        differs from the control condition's.
    random_state
        Seed of the ``"proportion_shift"`` draws.

    Returns
    -------
    dict
        ``{cell type: share kept}`` (1.0 everywhere for ``"balanced"``).

    Raises
    ------
    UnknownNameError, InputError
        For an unknown variant or a share outside (0, 1].
    """
    if variant not in VARIANTS:
        raise UnknownNameError("dataset variant", variant, VARIANTS)
    for name, value in (("fraction", fraction), ("min_fraction", min_fraction)):
        check_fraction(value, name)
    types = sorted(set(map(str, cell_types)))
    if variant == "balanced":
        return dict.fromkeys(types, 1.0)
    if variant == "unbalanced":
        return dict.fromkeys(types, float(fraction))
    draws = _rng(variant, random_state).uniform(min_fraction, 1.0, size=len(types))
    return {t: float(f) for t, f in zip(types, draws)}


def make_variant(train: ad.AnnData, variant: str, *, condition_key: str = "condition",
                 cell_type_key: str = "cell_type", stimulated: str = "stimulated", fraction: float = 0.2,
                 min_fraction: float = 0.1, random_state: int = 0) -> ad.AnnData:
    """Return the training cells of a dataset variant (a copy; ``train`` is not modified).

    Only stimulated cells are removed; control cells are all kept. Of a cell type with ``n``
    stimulated cells, ``max(1, round(share * n))`` are kept (drawn without replacement with a
    seeded generator), so no cell type loses its stimulated cells entirely.

    - ``"balanced"``: the cells as given.
    - ``"unbalanced"``: keep ``fraction`` (default 20%) of each cell type's stimulated cells, as
      the ECCB 2025 tutorial's unbalanced experiment did.
    - ``"proportion_shift"``: keep a seeded share drawn from ``[min_fraction, 1]`` per cell type:
      the cell-type proportions of the stimulated condition no longer match the control's.

    Parameters
    ----------
    train
        Training cells (cells x genes, any representation), e.g. ``loco_split(...).train``.
    variant
        One of :data:`VARIANTS`.
    condition_key, cell_type_key, stimulated
        obs columns and the stimulated condition's value.
    fraction, min_fraction, random_state
        See :func:`variant_keep_fractions`.

    Returns
    -------
    anndata.AnnData
        The kept cells in their original order; ``uns["perturblab_variant"]`` records the variant,
        the shares and the numbers of stimulated cells before and after.

    Raises
    ------
    KeyError
        If ``condition_key`` or ``cell_type_key`` is missing from ``train.obs``.
    UnknownNameError, InputError
        For an unknown variant or a share outside (0, 1].
    """
    check_obs_key(train, condition_key, "condition")
    check_obs_key(train, cell_type_key, "cell type")
    cell_type = train.obs[cell_type_key].astype(str).to_numpy()
    is_stim = train.obs[condition_key].astype(str).to_numpy() == str(stimulated)
    shares = variant_keep_fractions(cell_type[is_stim], variant, fraction, min_fraction, random_state)
    keep = ~is_stim
    rng = _rng(variant + ":cells", random_state)
    n_before, n_after = {}, {}
    for ct, share in shares.items():
        idx = np.flatnonzero(is_stim & (cell_type == ct))
        n_keep = len(idx) if share >= 1 else max(1, int(round(share * len(idx))))
        keep[rng.choice(idx, size=n_keep, replace=False)] = True
        n_before[ct], n_after[ct] = int(len(idx)), int(n_keep)
    out = train[keep].copy()
    out.uns["perturblab_variant"] = {"variant": variant, "shares": shares, "n_stimulated_before": n_before,
                                     "n_stimulated_after": n_after, "random_state": int(random_state)}
    return out
