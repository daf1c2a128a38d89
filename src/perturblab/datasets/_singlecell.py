"""Single-cell datasets as AnnData (cells x genes)."""

from __future__ import annotations

import anndata as ad

from ._fetch import fetch


def pbmc3k() -> ad.AnnData:
    """10x Genomics PBMC3k (healthy human PBMC) with adverSCarial's cell-type labels.

    The main dataset of the adverSCarial paper (Fievet et al. 2024).

    Returns
    -------
    anndata.AnnData
        2,700 cells x 32,738 genes, ``X`` raw UMI counts (sparse CSR, float32). ``obs["cell_type"]``: 10 values
        (Naive CD4 T 711, CD14+ Mono 480, Memory CD4 T 472, B 344, CD8 T 279, FCGR3A+ Mono 162, NK 144, DC 32,
        Platelet 14, UNDETERMINED 62 = cells failing QC, to drop); ``obs["seurat_tutorial_label"]`` (2,638 QC
        cells); ``obsm["X_umap_seurat"]``; ``var["gene_ids"]`` (Ensembl).

    Notes
    -----
    Licence: CC BY 4.0 (10x Genomics); labels MIT. Source: counts from hmumme/scToolbox@ae12ae7c
    ``data/pbmc3k.rda``, labels from GhislainFievet/adverSCarial@27b1194d ``inst/extdata/pbmc3k_cell_types.tsv``
    and rnabioco/clustifyr@0097813c. The h5ad is a perturblab repackaging (no public file has its bytes): it
    is read from the data directory (``PERTURBLAB_DATA_DIR``, file ``pbmc3k_raw_labeled.h5ad``) or the cache;
    if absent it is rebuilt from the 10x matrix (sha256-checked), the adverSCarial labels and clustifyr's
    ``pbmc_meta`` and checked against the content checksum of the maintainers' file.

    Examples
    --------
    >>> import perturblab as plab
    >>> adata = plab.datasets.pbmc3k()
    >>> adata.shape, adata.obs["cell_type"].value_counts().head(2).to_dict()
    ((2700, 32738), {'Naive CD4 T': 711, 'CD14+ Mono': 480})
    """
    return ad.read_h5ad(fetch("pbmc3k_raw_labeled.h5ad"))


def kang2018() -> ad.AnnData:
    """Kang et al. 2018 human PBMC, control vs IFN-beta stimulated (GEO GSE96583): an ~11% subset.

    Kang H.M. et al., "Multiplexed droplet single-cell RNA-sequencing using natural genetic variation",
    Nat Biotechnol 36, 89-94 (2018).

    Returns
    -------
    anndata.AnnData
        2,710 cells x 13,215 genes, ``X`` raw UMI counts (sparse CSR). ``obs["condition"]`` (control 1,330 /
        stimulated 1,380), ``obs["stim"]``, ``obs["cell_type"]`` (13 Seurat ifnb types, e.g. CD14 Mono 907),
        ``obs["subset"]`` (which source object).

    Notes
    -----
    Licence: GPL-3 / MIT (the R packages it comes from). Source: union of pwwang/scplotter@95b91101
    ``data/ifnb_sub.rda`` and hjames1/seuratTools@43d0893c ``data/ifnb1k.rda``, 122 duplicate cells removed.
    A perturblab repackaging, read from the data directory (file ``kang2018_ifnb_2710_counts.h5ad``) or the
    cache; if absent it is rebuilt from the two Seurat objects (counts of ``ifnb_sub`` recovered from its
    log-normalised layer) and checked against the maintainers' content checksum. The full data (24,673 cells,
    the authors' 8 cell types) downloads with :func:`kang2018_full`.

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.kang2018().shape
    (2710, 13215)
    """
    return ad.read_h5ad(fetch("kang2018_ifnb_2710_counts.h5ad"))


def papalexi2021() -> ad.AnnData:
    """Papalexi et al. 2021 ECCITE-seq THP-1 CRISPR knock-out screen (GEO GSE153056), 299-gene subset.

    Papalexi E. et al., "Characterizing the molecular regulation of inhibitory immune checkpoints with
    multimodal single-cell screens", Nat Genet 53, 322-331 (2021).

    Returns
    -------
    anndata.AnnData
        20,729 cells x 299 genes (randomly subsampled by sceptredata), ``X`` raw UMI counts (sparse CSR).
        ``obs["guide_id"]``, ``obs["target_gene"]``, ``obs["perturbation"]`` (2,386 non-targeting controls),
        ``obs["grna_frac_top"]``, ``obs["bio_rep"]``; ``obsm["grna_counts"]``.

    Notes
    -----
    Licence: MIT (sceptredata). Source: Katsevich-Lab/sceptredata@ec722d5d ``data/lowmoi_example_data.rda``.
    A perturblab repackaging, read from the data directory (file ``papalexi2021_thp1_crisprko_299genes.h5ad``)
    or the cache; if absent it is rebuilt from the rda (guide assignment: the gRNA with most UMIs, low MOI)
    and checked against the content checksum of the maintainers' file.

    Examples
    --------
    >>> import perturblab as plab
    >>> cells = plab.datasets.papalexi2021()
    >>> cells.shape, cells.obs["perturbation"].nunique()
    ((20729, 299), 26)
    """
    return ad.read_h5ad(fetch("papalexi2021_thp1_crisprko_299genes.h5ad"))


def pbmc68k_reduced() -> ad.AnnData:
    """Scanpy's ``pbmc68k_reduced``: 700 PBMC from 10x's 68k PBMC data (Zheng et al. 2017), shipped with scanpy.

    Returns
    -------
    anndata.AnnData
        700 cells x 765 genes, ``X`` scaled (z-scored, not counts); ``.raw`` log-normalised expression;
        ``obs["bulk_labels"]`` 10 cell types. Needs no data directory.

    Notes
    -----
    Licence: CC BY 4.0 (10x Genomics). Source: :func:`scanpy.datasets.pbmc68k_reduced`.

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.pbmc68k_reduced().shape
    (700, 765)
    """
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


def adverscarial_pbmc_short() -> ad.AnnData:
    """adverSCarial's unit-test fixture: 200 PBMC3k cells x 200 genes of integer counts.

    Returns
    -------
    anndata.AnnData
        200 cells x 200 genes, ``X`` raw counts (sparse CSR); ``obs["cell_type"]`` (PBMC3k labels incl.
        UNDETERMINED); ``var_names`` gene symbols as written in the fixture (R ``make.names`` style, e.g.
        ``KRTAP4.12`` for KRTAP4-12).

    Notes
    -----
    Licence: MIT. Source: GhislainFievet/adverSCarial@27b1194d ``inst/extdata/pbmc_short.loom`` (downloaded
    with a sha256 check when absent). The loom stores cells as rows (R convention, row attribute
    ``cell_type``) whereas :func:`anndata.read_loom` reads rows as genes, so the result is transposed.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's loom reader warns about non-unique default names
        loom = ad.read_loom(fetch("fixtures/adverSCarial_pbmc_short.loom"))
    adata = loom.T.copy()
    adata.var_names = [str(g) for g in adata.var.pop("colnames")]
    adata.var = adata.var.drop(columns=["colnames_factor"], errors="ignore")
    adata.obs_names = [str(c) for c in adata.obs.pop("rownames")]
    return adata


def chetah_headneck_ref() -> ad.AnnData:
    """CHETAH's reference: Puram et al. 2017 head and neck tumour cells, 20 cells per type.

    Puram S.V. et al., Cell 171, 1611-1624 (2017); de Kanter J.K. et al., "CHETAH: a selective, hierarchical
    cell type identification method for single-cell RNA sequencing", Nucleic Acids Res 47, e95 (2019).

    Returns
    -------
    anndata.AnnData
        180 cells x 7,943 genes, ``X`` log-normalised (CHETAH reference format, dense);
        ``obs["celltypes"]`` 9 types x 20 cells.

    Notes
    -----
    Licence: AGPL-3. Source: jdekanter/CHETAH@c19cba29 ``data/headneck_ref.rda``. A perturblab repackaging,
    read from the data directory (file ``fixtures/chetah_headneck_ref.h5ad``) or the cache; if absent it is
    rebuilt from the rda (a SingleCellExperiment) and checked against the maintainers' content checksum.
    """
    return ad.read_h5ad(fetch("fixtures/chetah_headneck_ref.h5ad"))
