"""Full public perturbation datasets, downloaded on demand (hundreds of MB to GB; not in the shared data folder).

Each is one registered file (see :data:`perturblab.datasets.REGISTRY`, folder ``perturbation/``): found in the
data directory or the cache, else downloaded with pooch and checked against the publisher's checksum.
"""

from __future__ import annotations

import anndata as ad
import pandas as pd

from ..exceptions import InputError, MissingKeyError
from ._fetch import fetch

_ADAMSON = {
    "pilot": "perturbation/AdamsonWeissman2016_GSM2406675_10X001.h5ad",
    "epistasis": "perturbation/AdamsonWeissman2016_GSM2406677_10X005.h5ad",
    "upr": "perturbation/AdamsonWeissman2016_GSM2406681_10X010.h5ad",
}
_REPLOGLE = {
    "k562_essential": "perturbation/ReplogleWeissman2022_K562_essential.h5ad",
    "rpe1": "perturbation/ReplogleWeissman2022_rpe1.h5ad",
    "k562_gwps": "perturbation/ReplogleWeissman2022_K562_gwps.h5ad",
}
_KANG_CONDITION = {"ctrl": "control", "stim": "stimulated"}


def _choice(value: str, options: dict[str, str], what: str) -> str:
    if value not in options:
        raise InputError(f"unknown {what} {value!r}; choose one of {sorted(options)}")
    return options[value]


def add_kang_condition(adata: ad.AnnData) -> ad.AnnData:
    """Add ``obs["condition"]`` ("control" / "stimulated") from pertpy's ``obs["label"]`` ("ctrl" / "stim").

    The same names as :func:`kang2018`, so the full data drops into the same code. An existing ``condition``
    column is kept as it is (never overwritten).

    Raises
    ------
    KeyError
        If neither ``condition`` nor ``label`` is in ``obs``.
    ValueError
        If ``label`` holds values other than ctrl / stim (they are named).
    """
    if "condition" in adata.obs:
        return adata
    if "label" not in adata.obs:
        raise MissingKeyError(f"Kang 2018 data needs obs['label'] (ctrl/stim); obs has {list(adata.obs.columns)}")
    labels = adata.obs["label"].astype(str)
    unknown = sorted(set(labels) - set(_KANG_CONDITION))
    if unknown:
        raise InputError(f"obs['label'] has values other than ctrl/stim: {unknown}")
    adata.obs["condition"] = pd.Categorical(labels.map(_KANG_CONDITION), categories=["control", "stimulated"])
    return adata


def kang2018_full() -> ad.AnnData:
    """Kang et al. 2018 human PBMC, control vs IFN-beta stimulated, all 24,673 cells (pertpy's ``kang_2018``).

    Kang H.M. et al., Nat Biotechnol 36, 89-94 (2018); GEO GSE96583, 8 lupus patients' PBMC before and after
    IFN-beta stimulation.

    Returns
    -------
    anndata.AnnData
        24,673 cells, ``X`` raw UMI counts; ``obs["label"]`` (ctrl / stim), ``obs["condition"]``
        (control / stimulated, added, as in :func:`kang2018`), ``obs["cell_type"]`` (the authors' 8 types),
        ``obs["replicate"]`` (donor).

    Notes
    -----
    Source: scverse example data ``https://exampledata.scverse.org/pertpy/kang_2018.h5ad`` (pertpy 1.0.3
    downloads the same file from the scverse-exampledata S3 bucket), sha256-checked; about 400 MB.
    :func:`kang2018` is the 2,710-cell subset with Seurat's 13 cell types that the tests use.

    Examples
    --------
    >>> adata = plab.datasets.kang2018_full()  # downloads 24,673 cells  # doctest: +SKIP
    """
    return add_kang_condition(ad.read_h5ad(fetch("perturbation/kang_2018.h5ad")))


def norman2019() -> ad.AnnData:
    """Norman et al. 2019 K562 CRISPRa Perturb-seq: single and double gene activations (scPerturb).

    Norman T.M. et al., "Exploring genetic interaction manifolds constructed from rich single-cell
    phenotypes", Science 365, 786-793 (2019); GEO GSE133344.

    Returns
    -------
    anndata.AnnData
        ``X`` raw UMI counts; scPerturb's harmonised ``obs`` columns, among them ``obs["perturbation"]``
        ("control" for non-targeting guides; single genes and gene pairs otherwise).

    Notes
    -----
    Source: scPerturb (Peidli et al. 2024, Nat Methods), Zenodo record 10044268,
    ``NormanWeissman2019_filtered.h5ad`` (CC BY 4.0, about 700 MB), md5-checked.

    Examples
    --------
    >>> adata = plab.datasets.norman2019()  # a large download  # doctest: +SKIP
    """
    return ad.read_h5ad(fetch("perturbation/NormanWeissman2019_filtered.h5ad"))


def replogle2022(screen: str = "k562_essential") -> ad.AnnData:
    """Replogle et al. 2022 genome-scale CRISPRi Perturb-seq (scPerturb).

    Replogle J.M. et al., "Mapping information-rich genotype-phenotype landscapes with genome-scale
    Perturb-seq", Cell 185, 2559-2575 (2022).

    Parameters
    ----------
    screen : {"k562_essential", "rpe1", "k562_gwps"}, default "k562_essential"
        Which screen: essential genes in K562 or RPE1 cells, or the genome-wide K562 screen (very large: needs
        tens of GB of disk and memory).

    Returns
    -------
    anndata.AnnData
        ``X`` raw UMI counts; ``obs["perturbation"]`` ("control" for non-targeting guides).

    Raises
    ------
    ValueError
        If ``screen`` is not one of the three.

    Notes
    -----
    Source: scPerturb, Zenodo record 10044268 (CC BY 4.0), md5-checked. pertpy 1.0.3's
    ``replogle_2022_k562_essential`` downloads the Gasperini 2019 file by mistake; this loader does not.

    Examples
    --------
    >>> adata = plab.datasets.replogle2022("k562_essential")  # a large download  # doctest: +SKIP
    """
    return ad.read_h5ad(fetch(_choice(screen, _REPLOGLE, "Replogle 2022 screen")))


def adamson2016(experiment: str = "pilot") -> ad.AnnData:
    """Adamson et al. 2016 K562 CRISPRi Perturb-seq of the unfolded protein response (scPerturb).

    Adamson B. et al., "A multiplexed single-cell CRISPR screening platform enables systematic dissection of
    the unfolded protein response", Cell 167, 1867-1882 (2016); GEO GSE90546.

    Parameters
    ----------
    experiment : {"pilot", "epistasis", "upr"}, default "pilot"
        GSM2406675 (10X001, pilot), GSM2406677 (10X005, UPR epistasis) or GSM2406681 (10X010, UPR
        Perturb-seq).

    Returns
    -------
    anndata.AnnData
        ``X`` raw UMI counts; ``obs["perturbation"]`` ("control" for non-targeting guides).

    Raises
    ------
    ValueError
        If ``experiment`` is not one of the three.

    Notes
    -----
    Source: scPerturb, Zenodo record 10044268 (CC BY 4.0), md5-checked.

    Examples
    --------
    >>> adata = plab.datasets.adamson2016("pilot")  # a download  # doctest: +SKIP
    """
    return ad.read_h5ad(fetch(_choice(experiment, _ADAMSON, "Adamson 2016 experiment")))
