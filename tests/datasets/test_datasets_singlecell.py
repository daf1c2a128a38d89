"""Single-cell loaders on the real data directory (shapes and annotations from the data README)."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab import datasets


def _is_integer_counts(X) -> bool:
    values = X.data if hasattr(X, "data") else np.asarray(X)
    return bool(np.all(values >= 0) and np.all(values == np.round(values)))


def test_pbmc3k(pbmc3k):
    assert pbmc3k.shape == (2700, 32738)
    counts = pbmc3k.obs["cell_type"].value_counts()
    assert len(counts) == 10
    assert counts["Naive CD4 T"] == 711 and counts["UNDETERMINED"] == 62 and counts["Platelet"] == 14
    assert pbmc3k.obs["seurat_tutorial_label"].notna().sum() == 2638
    assert "X_umap_seurat" in pbmc3k.obsm and "gene_ids" in pbmc3k.var
    assert _is_integer_counts(pbmc3k.X)


def test_kang2018(kang):
    assert kang.shape == (2710, 13215)
    assert kang.obs["condition"].value_counts().to_dict() == {"stimulated": 1380, "control": 1330}
    types = kang.obs["cell_type"].value_counts()
    assert len(types) == 13 and types["CD14 Mono"] == 907 and types["Eryth"] == 5
    assert {"stim", "subset"} <= set(kang.obs.columns)
    assert _is_integer_counts(kang.X)


def test_papalexi2021(papalexi):
    assert papalexi.shape == (20729, 299)
    assert {"guide_id", "target_gene", "perturbation", "grna_frac_top", "bio_rep"} <= set(papalexi.obs.columns)
    assert "grna_counts" in papalexi.obsm
    targets = {"CMTM6", "IFNGR2", "JAK2", "NFKBIA", "STAT1", "STAT2", "STAT3", "TNFRSF14", "UBE2L6"}
    assert targets <= set(papalexi.var_names)
    assert _is_integer_counts(papalexi.X)


def test_pbmc68k_reduced_ships_with_scanpy(monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV)
    adata = datasets.pbmc68k_reduced()
    assert adata.shape == (700, 765)
    assert adata.obs["bulk_labels"].nunique() == 10
    assert adata.raw is not None


def test_adverscarial_pbmc_short_is_cells_by_genes(pbmc3k):
    adata = datasets.adverscarial_pbmc_short()
    assert adata.shape == (200, 200)
    assert list(adata.obs.columns) == ["cell_type"]
    assert set(adata.obs["cell_type"]) <= set(pbmc3k.obs["cell_type"])
    assert adata.var_names.is_unique
    assert {"MS4A1", "CD8A", "GNLY", "NKG7", "PPBP", "CST3"} <= set(adata.var_names)
    assert _is_integer_counts(adata.X)


def test_chetah_headneck_ref():
    adata = datasets.chetah_headneck_ref()
    assert adata.shape == (180, 7943)
    counts = adata.obs["celltypes"].value_counts()
    assert len(counts) == 9 and set(counts) == {20}


@pytest.mark.parametrize("seed", [0])
def test_pbmc3k_split_matches_spec(seed):
    train, test = datasets.pbmc3k_split(random_state=seed)
    assert test.shape == (1319, 13656)
    assert train.shape == (2638 - 1319, 13656)
    assert "UNDETERMINED" not in set(train.obs["cell_type"]) | set(test.obs["cell_type"])
    assert not set(train.obs_names) & set(test.obs_names)
    both = np.asarray((train.X > 0).sum(axis=0)).ravel() + np.asarray((test.X > 0).sum(axis=0)).ravel()
    assert both.min() >= 3
    assert _is_integer_counts(test.X)


def test_pbmc3k_split_follows_default_rng(pbmc3k):
    """The test half is exactly the second half of default_rng(seed).permutation of the labelled cells."""
    labelled = pbmc3k.obs_names[pbmc3k.obs["cell_type"] != "UNDETERMINED"]
    order = np.random.default_rng(7).permutation(len(labelled))
    train, test = datasets.pbmc3k_split(random_state=7)
    assert list(test.obs_names) == list(labelled[order[len(labelled) // 2:]])
    assert list(train.obs_names) == list(labelled[order[: len(labelled) // 2]])
    again_train, _ = datasets.pbmc3k_split(random_state=7)
    assert list(again_train.obs_names) == list(train.obs_names)
