"""Datasets and reference resources, one loader function per dataset."""

from __future__ import annotations

import anndata as ad

from ._fetch import DATA_DIR_ENV, data_dir, fetch

__all__ = ["DATA_DIR_ENV", "data_dir", "fetch", "pbmc3k", "kang2018", "papalexi2021"]


def pbmc3k() -> ad.AnnData:
    """10x PBMC3k with adverSCarial's cell-type labels (raw counts, 2,700 cells x 32,738 genes)."""
    return ad.read_h5ad(fetch("pbmc3k_raw_labeled.h5ad"))


def kang2018() -> ad.AnnData:
    """Kang et al. 2018 IFN-beta PBMC subset (raw counts, 2,710 cells x 13,215 genes)."""
    return ad.read_h5ad(fetch("kang2018_ifnb_2710_counts.h5ad"))


def papalexi2021() -> ad.AnnData:
    """Papalexi et al. 2021 THP-1 CRISPR-KO subset (raw counts, 20,729 cells x 299 genes)."""
    return ad.read_h5ad(fetch("papalexi2021_thp1_crisprko_299genes.h5ad"))
