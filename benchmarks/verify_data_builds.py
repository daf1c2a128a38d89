"""Check that perturblab rebuilds its repackaged data files exactly.

For every registry entry with a builder:
1. real sources: fetch it into an empty cache (data directory unset), i.e. download its public sources and
   rebuild; reports "rebuilt, content checksum matches", or why not (e.g. the host is unreachable offline);
2. round trip: write the shared file back into its source formats and rebuild it (needs the data directory;
   the Papalexi, CHETAH and Kang round trips need R's ``Rscript`` with the Matrix, SingleCellExperiment and
   SeuratObject packages, to write dgCMatrix, SingleCellExperiment and Seurat objects).

Usage: PERTURBLAB_DATA_DIR=../shared/data python benchmarks/verify_data_builds.py [--out results/verify_builds.json]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp


def real_sources(relpath: str) -> str:
    """Fetch ``relpath`` with no data directory and an empty cache: downloads and rebuilds it."""
    from perturblab import datasets

    saved = os.environ.pop(datasets.DATA_DIR_ENV, None)
    with tempfile.TemporaryDirectory() as cache:
        os.environ[datasets.CACHE_DIR_ENV] = cache
        try:
            path = datasets.fetch(relpath)
            return f"rebuilt from public sources, content checksum matches ({path.stat().st_size:,} bytes)"
        except Exception as err:  # report, do not stop: offline hosts are expected here
            return f"not rebuilt: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
        finally:
            del os.environ[datasets.CACHE_DIR_ENV]
            if saved is not None:
                os.environ[datasets.DATA_DIR_ENV] = saved


def round_trip_dorothea(tmp: Path) -> bool:
    import rdata

    from perturblab import datasets
    from perturblab.datasets._build import build_dorothea

    table = pd.read_csv(datasets.fetch("references/dorothea_hs_ABCDE.csv.gz"))
    rdata.write_rda(tmp / "dorothea_hs.rda", {"dorothea_hs": table})
    build_dorothea({"rda": tmp / "dorothea_hs.rda"}, tmp / "out.csv.gz")
    return datasets.content_sha256(tmp / "out.csv.gz") == datasets.REGISTRY[
        "references/dorothea_hs_ABCDE.csv.gz"].content_sha256


def round_trip_papalexi(tmp: Path) -> bool | str:
    from perturblab import datasets
    from perturblab.datasets._build import build_papalexi2021

    if shutil.which("Rscript") is None:
        return "skipped: Rscript not found (needed to write dgCMatrix objects)"
    ref = datasets.papalexi2021()
    scipy.io.mmwrite(tmp / "resp.mtx", sp.csc_matrix(ref.X.T))
    scipy.io.mmwrite(tmp / "grna.mtx", sp.csc_matrix(ref.obsm["grna_counts"].T))
    pd.Series(ref.var_names).to_csv(tmp / "genes.csv", index=False)
    pd.Series(np.asarray(ref.uns["grna_ids"])).to_csv(tmp / "grnas.csv", index=False)
    ref.uns["grna_target"].to_csv(tmp / "targets.csv", index=False)
    pd.DataFrame({"bio_rep": ref.obs["bio_rep"].astype(str).to_numpy()}).to_csv(tmp / "cov.csv", index=False)
    script = f"""library(Matrix)
r <- as(readMM("{tmp}/resp.mtx"), "CsparseMatrix"); rownames(r) <- read.csv("{tmp}/genes.csv")[[1]]
g <- as(readMM("{tmp}/grna.mtx"), "CsparseMatrix"); rownames(g) <- read.csv("{tmp}/grnas.csv")[[1]]
lowmoi_example_data <- list(response_matrix = r, grna_matrix = g,
  grna_target_data_frame = read.csv("{tmp}/targets.csv"),
  extra_covariates = data.frame(bio_rep = factor(read.csv("{tmp}/cov.csv")[[1]])))
save(lowmoi_example_data, file = "{tmp}/lowmoi.rda", compress = "xz")
"""
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    build_papalexi2021({"rda": tmp / "lowmoi.rda"}, tmp / "out.h5ad")
    return datasets.content_sha256(tmp / "out.h5ad") == datasets.REGISTRY[
        "papalexi2021_thp1_crisprko_299genes.h5ad"].content_sha256


def round_trip_chetah(tmp: Path) -> bool | str:
    from perturblab import datasets
    from perturblab.datasets._build import build_chetah_headneck_ref

    if shutil.which("Rscript") is None:
        return "skipped: Rscript not found (needed to write a SingleCellExperiment)"
    ref = datasets.chetah_headneck_ref()
    pd.DataFrame(ref.X.T.astype(np.float64), index=ref.var_names, columns=ref.obs_names).to_csv(
        tmp / "x.csv", float_format="%.9g")  # 9 significant digits round-trip float32 exactly
    ref.obs["celltypes"].astype(str).to_csv(tmp / "obs.csv")
    script = f"""suppressMessages(library(SingleCellExperiment))
x <- as.matrix(read.csv("{tmp}/x.csv", row.names = 1, check.names = FALSE))
o <- read.csv("{tmp}/obs.csv", row.names = 1)
headneck_ref <- SingleCellExperiment(assays = list(counts = x),
                                     colData = DataFrame(celltypes = o$celltypes, row.names = rownames(o)))
save(headneck_ref, file = "{tmp}/headneck_ref.rda", compress = "xz")
"""
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    build_chetah_headneck_ref({"rda": tmp / "headneck_ref.rda"}, tmp / "out.h5ad")
    return datasets.content_sha256(tmp / "out.h5ad") == datasets.REGISTRY[
        "fixtures/chetah_headneck_ref.h5ad"].content_sha256


def round_trip_kang(tmp: Path) -> bool | str:
    """The shared Kang subset written back as two SeuratObject-4 objects: ifnb_sub with log-normalised data only
    (its 2,000 cells), ifnb1k with counts (the other 710 cells plus the 122 it shares with ifnb_sub)."""
    from perturblab import datasets
    from perturblab.datasets._build import build_kang2018

    if shutil.which("Rscript") is None:
        return "skipped: Rscript not found (needed to write Seurat objects)"
    ref = datasets.kang2018()
    sub = (ref.obs["subset"] == "scplotter_ifnb_sub").to_numpy()
    shared = np.flatnonzero(sub)[:: max(1, sub.sum() // 122)][:122]
    k1 = np.concatenate([np.flatnonzero(~sub), shared])
    for name, rows in (("sub", np.flatnonzero(sub)), ("k1", k1)):
        scipy.io.mmwrite(tmp / f"{name}.mtx", sp.coo_matrix(ref.X[rows].T.astype(np.float64)))
        meta = ref.obs.iloc[rows][["orig.ident", "nCount_RNA", "nFeature_RNA", "stim", "cell_type"]]
        meta.rename(columns={"cell_type": "seurat_annotations"}).to_csv(tmp / f"{name}_meta.csv")
    pd.Series(ref.var_names).to_csv(tmp / "genes.csv", index=False)
    script = f"""suppressMessages(library(SeuratObject)); suppressMessages(library(Matrix))
genes <- read.csv("{tmp}/genes.csv")[[1]]
make <- function(name) {{
  m <- as(readMM(paste0("{tmp}/", name, ".mtx")), "CsparseMatrix")
  meta <- read.csv(paste0("{tmp}/", name, "_meta.csv"), row.names = 1, check.names = FALSE)
  dimnames(m) <- list(genes, rownames(meta)); list(m = m, meta = meta)
}}
s <- make("sub")
lognorm <- s$m; lognorm@x <- log1p(lognorm@x / rep(s$meta$nCount_RNA, diff(lognorm@p)) * 1e4)
ifnb_sub <- CreateSeuratObject(CreateAssayObject(data = lognorm))
ifnb_sub@meta.data <- s$meta
save(ifnb_sub, file = "{tmp}/ifnb_sub.rda")
k <- make("k1")
ifnb1k <- CreateSeuratObject(counts = k$m)
ifnb1k@meta.data <- k$meta
save(ifnb1k, file = "{tmp}/ifnb1k.rda")
"""
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    build_kang2018({"ifnb_sub": tmp / "ifnb_sub.rda", "ifnb1k": tmp / "ifnb1k.rda"}, tmp / "out.h5ad")
    return datasets.content_sha256(tmp / "out.h5ad") == datasets.REGISTRY[
        "kang2018_ifnb_2710_counts.h5ad"].content_sha256


def round_trip_string(tmp: Path) -> bool | str:
    """The shared STRING table written back as an undirected igraph object. Vertices are ordered so that every
    edge's ``entrez_a`` comes before its ``entrez_b`` (a topological order, as in the source graph)."""
    from graphlib import TopologicalSorter

    from perturblab import datasets
    from perturblab.datasets._build import STRING_GRAPH, build_string

    if shutil.which("Rscript") is None:
        return "skipped: Rscript not found (needed to write an igraph object)"
    table = pd.read_csv(datasets.fetch("references/string_v12_human_ntm700_400k3_dmfind.csv.gz"))
    graph = TopologicalSorter()
    for a, b in zip(table["entrez_a"], table["entrez_b"]):
        graph.add(b, a)
    order = list(graph.static_order())
    symbol = dict(zip(table["entrez_a"], table["symbol_a"])) | dict(zip(table["entrez_b"], table["symbol_b"]))
    pd.DataFrame({"name": order, "symbol": [symbol[v] for v in order]}).to_csv(tmp / "vertices.csv", index=False)
    table.drop(columns=["symbol_a", "symbol_b"]).to_csv(tmp / "edges.csv", index=False)
    script = f"""suppressMessages(library(igraph))
v <- read.csv("{tmp}/vertices.csv", colClasses = "character")
e <- read.csv("{tmp}/edges.csv", colClasses = c(entrez_a = "character", entrez_b = "character"))
`{STRING_GRAPH}` <- graph_from_data_frame(e, directed = FALSE, vertices = v)
save(`{STRING_GRAPH}`, file = "{tmp}/string.rda")
"""
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    build_string({"rda": tmp / "string.rda"}, tmp / "out.csv.gz")
    return datasets.content_sha256(tmp / "out.csv.gz") == datasets.REGISTRY[
        "references/string_v12_human_ntm700_400k3_dmfind.csv.gz"].content_sha256


def round_trip_pbmc3k(tmp: Path) -> bool:
    """The shared PBMC3k written back into its three source formats (10x v1 tar.gz, adverSCarial's label tsv,
    clustifyr's pbmc_meta data.frame) and rebuilt (also run by the test suite)."""
    import rdata

    from perturblab import datasets
    from perturblab.datasets._build import build_pbmc3k

    ref = datasets.pbmc3k()
    folder = tmp / "filtered_gene_bc_matrices" / "hg19"
    folder.mkdir(parents=True)
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(ref.X.T.astype(np.int64)), field="integer")
    pd.DataFrame({"id": ref.var["gene_ids"], "symbol": ref.var["gene_symbol_original"]}).to_csv(
        folder / "genes.tsv", sep="\t", header=False, index=False)
    pd.Series(ref.obs_names).to_csv(folder / "barcodes.tsv", header=False, index=False)
    with tarfile.open(tmp / "matrix.tar.gz", "w:gz") as tar:
        tar.add(tmp / "filtered_gene_bc_matrices", arcname="filtered_gene_bc_matrices")
    labels = io.StringIO()
    labels.write("bc\tcell_type\n")
    labels.writelines(f"{b}\t{b}\t{c}\n" for b, c in zip(ref.obs_names, ref.obs["cell_type"].astype(str)))
    (tmp / "labels.tsv").write_text(labels.getvalue())
    qc = ref.obs["in_seurat_tutorial_qc"].to_numpy()
    umap = ref.obsm["X_umap_seurat"][qc].astype(np.float64)
    meta = pd.DataFrame({"classified": pd.Categorical(ref.obs["seurat_tutorial_label"][qc].astype(str)),
                         "UMAP_1": umap[:, 0], "UMAP_2": umap[:, 1]}, index=ref.obs_names[qc])
    rdata.write_rda(tmp / "pbmc_meta.rda", {"pbmc_meta": meta})
    build_pbmc3k({"matrix": tmp / "matrix.tar.gz", "labels": tmp / "labels.tsv", "meta": tmp / "pbmc_meta.rda"},
                 tmp / "out.h5ad")
    return datasets.content_sha256(tmp / "out.h5ad") == datasets.REGISTRY["pbmc3k_raw_labeled.h5ad"].content_sha256


ROUND_TRIPS = {
    "references/dorothea_hs_ABCDE.csv.gz": round_trip_dorothea,
    "papalexi2021_thp1_crisprko_299genes.h5ad": round_trip_papalexi,
    "pbmc3k_raw_labeled.h5ad": round_trip_pbmc3k,
    "fixtures/chetah_headneck_ref.h5ad": round_trip_chetah,
    "kang2018_ifnb_2710_counts.h5ad": round_trip_kang,
    "references/string_v12_human_ntm700_400k3_dmfind.csv.gz": round_trip_string,
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    from perturblab import datasets
    from perturblab.io import write_json

    results = []
    for relpath, entry in datasets.REGISTRY.items():
        if entry.builder is None:
            continue
        t0 = time.perf_counter()
        row = {"file": relpath, "sources": [s.url for s in entry.sources], "real_sources": real_sources(relpath)}
        row["real_sources_seconds"] = round(time.perf_counter() - t0, 1)
        if relpath in ROUND_TRIPS:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                row["round_trip"] = ROUND_TRIPS[relpath](Path(tmp))
            row["round_trip_seconds"] = round(time.perf_counter() - t0, 1)
        results.append(row)
        print(f"{relpath}\n  real sources: {row['real_sources']} ({row['real_sources_seconds']} s)"
              + (f"\n  round trip: {row['round_trip']} ({row['round_trip_seconds']} s)" if "round_trip" in row else ""),
              flush=True)
    if args.out:
        write_json(args.out, {"python": sys.version.split()[0], "results": results})


if __name__ == "__main__":
    main()
