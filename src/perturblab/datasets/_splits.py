"""The adverSCarial measurement split of PBMC3k."""

from __future__ import annotations

import anndata as ad
import numpy as np

from ._singlecell import pbmc3k


def pbmc3k_split(random_state: int = 0) -> tuple[ad.AnnData, ad.AnnData]:
    """PBMC3k split into train and test halves as in perturblab's adverSCarial measurements.

    Steps (reference spec ``adverscarial.md``, "Measured on this machine"): drop the cells labelled
    ``UNDETERMINED`` (QC failures); keep genes detected (count > 0) in at least 3 of the remaining cells;
    permute the cells with ``numpy.random.default_rng(random_state).permutation``; the first
    ``n_cells // 2`` permuted cells are the train half, the rest the test half.

    Parameters
    ----------
    random_state : int, default 0
        Seed of the permutation; the same seed gives the same split.

    Returns
    -------
    (train, test) : tuple of anndata.AnnData
        Raw-count AnnData (cells x genes, copies). For ``random_state=0``: 2,638 labelled cells and 13,656
        genes, train 1,319 cells, test 1,319 cells.

    Examples
    --------
    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> train.n_obs, test.n_obs
    (1319, 1319)
    """
    adata = pbmc3k()
    adata = adata[adata.obs["cell_type"].astype(str) != "UNDETERMINED"]
    n_detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    adata = adata[:, n_detected >= 3]
    order = np.random.default_rng(random_state).permutation(adata.n_obs)
    n_train = adata.n_obs // 2
    return adata[order[:n_train]].copy(), adata[order[n_train:]].copy()
