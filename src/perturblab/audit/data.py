"""The audit's data: a labelled raw-count dataset and its seeded stratified train/test halves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validation import check_counts, check_obs_key

__all__ = ["load_dataset", "stratified_split"]


def load_dataset(dataset: str):
    """Raw-count AnnData of ``dataset``: ``"pbmc3k"``, ``"kang2018"`` or a path to an ``.h5ad`` file.

    Raises
    ------
    ValueError
        For an unknown name that is not an existing ``.h5ad`` file.
    """
    from .. import datasets

    loaders = {"pbmc3k": datasets.pbmc3k, "kang2018": datasets.kang2018}
    if dataset in loaders:
        return loaders[dataset]()
    path = Path(dataset)
    if path.suffix == ".h5ad" and path.is_file():
        import anndata as ad

        return ad.read_h5ad(path)
    raise ValueError(f"unknown dataset {dataset!r}: use one of {sorted(loaders)} or the path of an existing .h5ad file")


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
    KeyError
        If ``label_key`` is not in ``adata.obs``.
    ValueError
        Negative / non-finite counts, missing labels, or a cell type with fewer than 2 cells.
    """
    from sklearn.model_selection import train_test_split

    check_obs_key(adata, label_key, "label")
    check_counts(adata.X, "adata.X")
    labels = adata.obs[label_key]
    if labels.isna().any():
        raise ValueError(f"adata.obs[{label_key!r}] has {int(labels.isna().sum())} missing labels; drop those cells first")
    keep = ~labels.astype(str).isin([str(d) for d in drop_labels]).to_numpy()
    adata = adata[keep]
    y = adata.obs[label_key].astype(str).to_numpy()
    values, counts = np.unique(y, return_counts=True)
    if (counts < 2).any():
        raise ValueError(f"cell types with fewer than 2 cells cannot be split in a stratified way: {list(values[counts < 2])}")
    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    adata = adata[:, detected >= min_cells]
    train_idx, test_idx = train_test_split(np.arange(adata.n_obs), test_size=test_size, stratify=y,
                                           random_state=random_state)
    return adata[np.sort(train_idx)].copy(), adata[np.sort(test_idx)].copy()
