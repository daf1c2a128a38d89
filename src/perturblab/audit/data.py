"""The audit's data: a labelled raw-count dataset and its seeded stratified train/test halves."""

from __future__ import annotations

import numpy as np

from .._validation import check_counts, check_labels
from ..exceptions import InputError

__all__ = ["stratified_split"]


def stratified_split(adata, label_key: str = "cell_type", *, test_size: float = 0.5,
                     drop_labels=("UNDETERMINED",), min_cells: int = 3, random_state: int = 0):
    """Seeded stratified split of a raw-count dataset into train and test halves.

    Steps: drop cells whose label is in ``drop_labels`` (PBMC3k: the 62 QC failures
    ``UNDETERMINED``); keep genes detected (count > 0) in at least ``min_cells`` of the remaining
    cells; split the cells with ``sklearn.model_selection.train_test_split(stratify=labels,
    random_state=random_state)`` so that every cell type keeps its proportion in both halves.
    Differs from :func:`perturblab.datasets.pbmc3k_split` (adverSCarial's measurement split, an
    unstratified permutation), as the audit asks for a stratified split.

    Parameters
    ----------
    adata
        AnnData of raw counts (cells x genes), labels in ``adata.obs[label_key]``.
    label_key
        Label column.
    test_size
        Fraction of the cells in the test half.
    drop_labels
        Labels to remove first.
    min_cells
        Gene filter (detected in >= ``min_cells`` cells).
    random_state
        Seed of the split.

    Returns
    -------
    (train, test)
        AnnData copies (raw counts, the same genes).

    Raises
    ------
    MissingKeyError
        If ``label_key`` is not in ``adata.obs``.
    InputError
        Negative / non-finite counts, missing labels, or a cell type with fewer than 2 cells.
    """
    from sklearn.model_selection import train_test_split

    labels = check_labels(adata, label_key, "label")
    check_counts(adata.X, "adata.X")
    keep = ~np.isin(labels, [str(d) for d in drop_labels])
    adata = adata[keep]
    y = adata.obs[label_key].astype(str).to_numpy()
    values, counts = np.unique(y, return_counts=True)
    if (counts < 2).any():
        raise InputError(f"cell types with fewer than 2 cells cannot be split in a stratified way: "
                         f"{list(values[counts < 2])}; drop them or add them to drop_labels")
    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    adata = adata[:, detected >= min_cells]
    train_idx, test_idx = train_test_split(np.arange(adata.n_obs), test_size=test_size, stratify=y,
                                           random_state=random_state)
    return adata[np.sort(train_idx)].copy(), adata[np.sort(test_idx)].copy()
