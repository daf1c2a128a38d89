"""Preprocessing and the leave-one-cell-type-out (LOCO) split.

``prepare`` turns raw counts into the representation the models expect
(log-normalised, 2,000 HVGs, as in the spec's measurement); ``loco_split`` holds
out the stimulated cells of one cell type.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np

from .._validation import (
    check_counts,
    check_finite,
    check_labels,
    check_positive,
    check_values_present,
    to_dense,
    warn_representation,
)
from ..exceptions import InputError

__all__ = ["prepare", "Preprocessing", "loco_split", "loco_targets", "LocoSplit", "check_conditions",
           "balanced_indices"]


def check_conditions(adata, condition_key: str, cell_type_key: str | None, control: str, stimulated: str) -> None:
    """Raise a clear error if the keys or the control/stimulated values are missing.

    Raises
    ------
    MissingKeyError
        If ``condition_key`` or ``cell_type_key`` is not a column of ``adata.obs``.
    InputError
        If some cells have no condition or cell type (NaN), or ``control`` / ``stimulated`` does not occur in
        ``adata.obs[condition_key]`` (with the closest value).
    """
    present = set(check_labels(adata, condition_key, "condition"))
    if cell_type_key is not None:
        check_labels(adata, cell_type_key, "cell type")
    for what, value in (("control", control), ("stimulated", stimulated)):
        check_values_present([value], present, f"{what} condition (in adata.obs[{condition_key!r}])")


def prepare(adata: ad.AnnData, n_top_genes: int | None = 2000, condition_key: str = "condition",
            cell_type_key: str = "cell_type", control: str = "control", stimulated: str = "stimulated",
            target_sum: float | None = None, flavor: str = "seurat",
            min_cells_per_type: int | None = None) -> ad.AnnData:
    """Log-normalise raw counts and keep the highly variable genes (returns a copy).

    Steps (scanpy): [drop small cell types] -> ``normalize_total(target_sum)`` -> ``log1p`` ->
    ``highly_variable_genes(n_top_genes, flavor)`` -> subset to those genes. The raw
    counts of the kept genes are stored in ``layers["counts"]``.

    Parameters
    ----------
    adata
        Raw UMI counts, cells x genes, with obs columns ``condition_key`` and ``cell_type_key``.
    n_top_genes
        Number of HVGs (``None``: keep all genes). HVGs are chosen on all cells, as scGen's
        and scPRAM's tutorials do.
    condition_key, cell_type_key, control, stimulated
        Names of the obs columns and of the two conditions (checked here).
    target_sum
        Counts per cell after normalisation (``None``: scanpy's median of totals).
    flavor
        scanpy HVG flavour.
    min_cells_per_type
        ``None`` (default, perturblab's protocol): every cell type is kept for normalisation, HVG selection
        and training. An integer: cell types with fewer cells than this in the control or the stimulated
        condition are dropped first (the scGen protocol, 30: its Kang data hold only the types with >= 30
        cells per condition); the dropped types and their cell numbers are logged and recorded in
        ``uns["perturblab_predict"]["dropped_cell_types"]``.

    Returns
    -------
    anndata.AnnData
        Log-normalised copy (float32 dense ``X``), ``uns["perturblab_predict"]`` records the settings and the
        library size used (``target_sum_used``: the median of the cells' totals when ``target_sum`` is None).

    Raises
    ------
    MissingKeyError, InputError
        Missing keys, an absent condition value, NaN labels, ``n_top_genes < 1``, NaN/inf or negative values
        in ``X``.
    """
    import scanpy as sc

    check_conditions(adata, condition_key, cell_type_key, control, stimulated)
    check_positive(n_top_genes, "n_top_genes", allow_none=True)
    check_positive(min_cells_per_type, "min_cells_per_type", allow_none=True)
    check_counts(adata.X, "adata.X")
    warn_representation(adata.X, "counts", "adata.X")
    dropped: dict[str, dict[str, int]] = {}
    if min_cells_per_type is not None:
        adata, dropped = _drop_small_types(adata, min_cells_per_type, condition_key, cell_type_key, control,
                                           stimulated)
    out = adata.copy()
    out.layers["counts"] = out.X.copy()
    totals = np.asarray(out.X.sum(axis=1)).ravel()
    target_sum_used = float(np.median(totals[totals > 0])) if target_sum is None else float(target_sum)
    sc.pp.normalize_total(out, target_sum=target_sum)
    sc.pp.log1p(out)
    if n_top_genes is not None and n_top_genes < out.n_vars:
        sc.pp.highly_variable_genes(out, n_top_genes=n_top_genes, flavor=flavor)
        out = out[:, out.var["highly_variable"].to_numpy()].copy()
    out.X = to_dense(out.X)
    out.uns.pop("log1p", None)
    out.uns["perturblab_predict"] = {"n_top_genes": n_top_genes, "target_sum": target_sum, "flavor": flavor,
                                     "representation": "log1p", "target_sum_used": target_sum_used,
                                     "min_cells_per_type": min_cells_per_type, "dropped_cell_types": dropped}
    return out


def _drop_small_types(adata, min_cells: int, condition_key, cell_type_key, control, stimulated):
    import logging

    ct = adata.obs[cell_type_key].astype(str).to_numpy()
    cond = adata.obs[condition_key].astype(str).to_numpy()
    dropped = {}
    for t in np.unique(ct):
        n = {c: int(((ct == t) & (cond == str(c))).sum()) for c in (control, stimulated)}
        if min(n.values()) < min_cells:
            dropped[str(t)] = n
    if len(dropped) == len(np.unique(ct)):
        raise InputError(f"no cell type has >= {min_cells} cells in both conditions; lower min_cells_per_type "
                         "or pass None to keep every cell type")
    if dropped:
        logging.getLogger(__name__).info("dropped %d cell types with < %d cells in a condition: %s", len(dropped),
                                         min_cells, dropped)
    return adata[~np.isin(ct, list(dropped))], dropped


@dataclass(frozen=True)
class Preprocessing:
    """How :func:`prepare` turns raw counts into the models' input; a setting of every predict run.

    Attributes
    ----------
    n_top_genes
        Highly variable genes kept (``None``: all genes).
    target_sum
        Counts per cell after ``normalize_total`` (``None``: the median of the cells' totals, scanpy's default).
    flavor
        scanpy HVG flavour.
    min_cells_per_type
        ``None`` (perturblab's protocol): all cell types are kept for HVG selection and training; an integer
        (the scGen protocol: 30): cell types with fewer cells in a condition are dropped first.

    The three choices that separate perturblab's protocol from the published scGen protocol (see
    :data:`perturblab.predict.PROTOCOLS`): ``min_cells_per_type`` (None vs 30), ``target_sum`` (the median
    library size vs 1e4) and the mean-delta baseline's ``control_cells`` ("all" vs "with_stimulated").

    Examples
    --------
    >>> import perturblab as plab
    >>> adata = plab.predict.Preprocessing(n_top_genes=500).apply(plab.datasets.kang2018())
    >>> adata.n_vars
    500
    """

    n_top_genes: int | None = 2000
    target_sum: float | None = None
    flavor: str = "seurat"
    min_cells_per_type: int | None = None

    def __post_init__(self) -> None:
        check_positive(self.n_top_genes, "n_top_genes", allow_none=True)
        check_positive(self.target_sum, "target_sum", minimum=1e-9, allow_none=True)
        check_positive(self.min_cells_per_type, "min_cells_per_type", allow_none=True)

    def apply(self, adata: ad.AnnData, condition_key: str = "condition", cell_type_key: str = "cell_type",
              control: str = "control", stimulated: str = "stimulated") -> ad.AnnData:
        """:func:`prepare` with these settings (raw counts in, log-normalised copy out)."""
        return prepare(adata, self.n_top_genes, condition_key, cell_type_key, control, stimulated,
                       target_sum=self.target_sum, flavor=self.flavor, min_cells_per_type=self.min_cells_per_type)


@dataclass
class LocoSplit:
    """The three parts of a leave-one-cell-type-out split (all AnnData views copied).

    Attributes
    ----------
    target
        The held-out cell type.
    train
        Every cell except the target's stimulated cells (the target's controls are kept,
        as in scGen and scPRAM).
    target_ctrl
        The target's control cells (the input of ``predict``).
    target_stim
        The target's real stimulated cells (the truth; never in ``train``).
    """

    target: str
    train: ad.AnnData
    target_ctrl: ad.AnnData
    target_stim: ad.AnnData


def loco_split(adata: ad.AnnData, target: str, condition_key: str = "condition", cell_type_key: str = "cell_type",
               control: str = "control", stimulated: str = "stimulated") -> LocoSplit:
    """Hold out the stimulated cells of ``target``.

    Parameters
    ----------
    adata
        Log-normalised cells x genes (see :func:`prepare`).
    target
        Cell type whose stimulated cells are held out.

    Returns
    -------
    LocoSplit

    Raises
    ------
    MissingKeyError, UnknownNameError, InputError
        Missing keys or conditions, an unknown target (with "did you mean"), a target with no control or no
        stimulated cells, NaN labels or NaN/inf values.
    """
    check_conditions(adata, condition_key, cell_type_key, control, stimulated)
    check_values_present([target], adata.obs[cell_type_key].astype(str).unique(), "cell type")
    check_finite(adata.X, "adata.X")
    ct = adata.obs[cell_type_key].astype(str).to_numpy()
    cond = adata.obs[condition_key].astype(str).to_numpy()
    is_t = ct == str(target)
    ctrl_mask = is_t & (cond == str(control))
    stim_mask = is_t & (cond == str(stimulated))
    if not ctrl_mask.any():
        raise InputError(f"cell type {target!r} has no control cells ({condition_key} == {control!r}); "
                         "nothing to predict from: choose another target")
    if not stim_mask.any():
        raise InputError(f"cell type {target!r} has no stimulated cells ({condition_key} == {stimulated!r}); "
                         "nothing to compare the prediction with: choose another target")
    return LocoSplit(str(target), adata[~stim_mask].copy(), adata[ctrl_mask].copy(), adata[stim_mask].copy())


def loco_targets(adata: ad.AnnData, min_cells: int = 30, condition_key: str = "condition",
                 cell_type_key: str = "cell_type", control: str = "control",
                 stimulated: str = "stimulated") -> list[str]:
    """Cell types with at least ``min_cells`` cells in each condition (the LOCO protocol's targets),
    largest first.

    Raises
    ------
    InputError
        When no cell type qualifies.
    """
    check_conditions(adata, condition_key, cell_type_key, control, stimulated)
    check_positive(min_cells, "min_cells")
    tab = adata.obs.groupby([adata.obs[cell_type_key].astype(str), adata.obs[condition_key].astype(str)],
                            observed=True).size().unstack(fill_value=0)
    ok = tab[(tab.get(str(control), 0) >= min_cells) & (tab.get(str(stimulated), 0) >= min_cells)]
    if ok.empty:
        raise InputError(f"no cell type has >= {min_cells} cells in both conditions ({control!r} and "
                         f"{stimulated!r}); lower --min-cells or name the targets")
    return list(ok.sum(axis=1).sort_values(ascending=False, kind="stable").index)


def balanced_indices(labels, rng: np.random.Generator) -> np.ndarray:
    """scGen's balancer: resample every label's cells with replacement up to the largest label's count."""
    labels = np.asarray(labels).astype(str)
    uniq, counts = np.unique(labels, return_counts=True)
    n_max = counts.max()
    return np.concatenate([rng.choice(np.flatnonzero(labels == u), size=n_max, replace=True) for u in uniq])
