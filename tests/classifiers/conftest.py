"""Fixtures of the classifier tests: the PBMC3k train/test split (adverSCarial's measurement split)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pbmc_split():
    import perturblab as plab

    return plab.datasets.pbmc3k_split(random_state=0)


@pytest.fixture(scope="session")
def pbmc_train(pbmc_split):
    return pbmc_split[0]


@pytest.fixture(scope="session")
def pbmc_test(pbmc_split):
    return pbmc_split[1]


@pytest.fixture(scope="session")
def pbmc_small(pbmc_split):
    """The split restricted to 1,000 highly variable genes of the train half (fast model fits)."""
    import numpy as np
    import scanpy as sc

    train, test = pbmc_split
    log = train.copy()
    sc.pp.normalize_total(log, target_sum=1e4)
    sc.pp.log1p(log)
    sc.pp.highly_variable_genes(log, n_top_genes=1000)
    genes = log.var_names[np.asarray(log.var["highly_variable"])]
    return train[:, genes].copy(), test[:, genes].copy()


#: PBMC3k labels collapsed to the major lineages (naive and memory CD4 T are one lineage).
MAJOR = {"Naive CD4 T": "CD4 T", "Memory CD4 T": "CD4 T", "CD8 T": "CD8 T", "B": "B", "NK": "NK",
         "CD14+ Mono": "CD14+ Mono", "FCGR3A+ Mono": "FCGR3A+ Mono"}


def major_type_accuracy(true, pred) -> float:
    """Accuracy over cells of the major lineages (MAJOR), with CD4 T subtypes merged."""
    import numpy as np

    true = np.asarray(true).astype(str)
    pred = np.asarray(pred).astype(str)
    keep = np.isin(true, list(MAJOR))
    merged_true = np.array([MAJOR[t] for t in true[keep]])
    merged_pred = np.array([MAJOR.get(p, p) for p in pred[keep]])
    return float(np.mean(merged_true == merged_pred))
