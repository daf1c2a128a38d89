"""The audit's data: a labelled raw-count dataset and its seeded stratified train/test halves."""

from __future__ import annotations

import numpy as np

from .._validation import check_counts, check_labels
from ..exceptions import InputError

__all__ = ["anchor_split", "stratified_split"]


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
    if len(values) < 2:
        raise InputError(f"adata.obs[{label_key!r}] holds {len(values)} cell type(s) {list(values)}; a classifier "
                         "needs at least 2 labelled cell types")
    if (counts < 2).any():
        raise InputError(f"cell types with fewer than 2 cells cannot be split in a stratified way: "
                         f"{list(values[counts < 2])}; drop them or add them to drop_labels")
    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    adata = adata[:, detected >= min_cells]
    train_idx, test_idx = train_test_split(np.arange(adata.n_obs), test_size=test_size, stratify=y,
                                           random_state=random_state)
    return adata[np.sort(train_idx)].copy(), adata[np.sort(test_idx)].copy()


def anchor_split(adata, label_key: str = "cell_type", *, random_state: int = 0):
    """adverSCarial's published PBMC3k halves (:func:`perturblab.datasets.pbmc3k_split`), cells in dataset order.

    The anchor's split is an unstratified seeded permutation of the labelled PBMC3k cells (``UNDETERMINED``
    dropped, genes detected in >= 3 cells kept); its halves are returned here in the order of ``adata`` (the
    barcode order adverSCarial works in: CGD's signature-gene order depends on it).

    Parameters
    ----------
    adata
        PBMC3k (:func:`perturblab.datasets.pbmc3k`); checked to hold the split's cells.
    label_key
        Label column (checked for missing labels).
    random_state
        Seed of the permutation (adverSCarial's measurements: 0).

    Returns
    -------
    (train, test)
        Raw-count AnnData copies.

    Raises
    ------
    InputError
        If ``adata`` does not hold the PBMC3k cells of the split.
    """
    from ..datasets import pbmc3k_split

    check_labels(adata, label_key, "label")
    halves = []
    for half in pbmc3k_split(random_state=random_state):
        pos = adata.obs_names.get_indexer(half.obs_names)
        if (pos < 0).any():
            raise InputError("the anchor split is adverSCarial's PBMC3k split: the data do not hold its cells; use "
                             "--split stratified")
        halves.append(half[np.argsort(pos, kind="stable")].copy())
    return halves[0], halves[1]
