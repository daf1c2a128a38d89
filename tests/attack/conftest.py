"""Fixtures of the attack tests: adverSCarial's loom fixture and the PBMC3k test half."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest


@pytest.fixture(scope="session")
def loom_short():
    """adverSCarial's unit-test fixture: 200 PBMC3k cells x 200 genes, raw counts, obs cell_type."""
    import perturblab as plab

    a = ad.io.read_loom(plab.datasets.fetch("fixtures/adverSCarial_pbmc_short.loom")).T
    a.var_names = a.var["colnames"].astype(str).to_numpy()
    X = np.asarray(a.X.toarray(), dtype=np.float32)
    return X, a.obs["cell_type"].astype(str).to_numpy(), np.asarray(a.var_names)


@pytest.fixture(scope="session")
def pbmc_split():
    """adverSCarial's measurement split of PBMC3k (train, test), raw counts."""
    import perturblab as plab

    return plab.datasets.pbmc3k_split(random_state=0)


@pytest.fixture(scope="session")
def sctype_test(pbmc_split):
    """scType fitted on the train half; (classifier, scaled test matrix, test clusters)."""
    import warnings

    from perturblab.classifiers.sctype import ScTypeClassifier

    train, test = pbmc_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = ScTypeClassifier().fit(train, "cell_type")
    return clf, clf.preprocess(test), test.obs["cell_type"].astype(str).to_numpy()


@pytest.fixture(scope="session")
def pbmc_hvg(pbmc_split):
    """The split restricted to 1,000 highly variable genes of the train half (fast model fits)."""
    import scanpy as sc

    train, test = pbmc_split
    log = train.copy()
    sc.pp.normalize_total(log, target_sum=1e4)
    sc.pp.log1p(log)
    sc.pp.highly_variable_genes(log, n_top_genes=1000)
    genes = log.var_names[np.asarray(log.var["highly_variable"])]
    return train[:, genes].copy(), test[:, genes].copy()


@pytest.fixture(scope="session")
def mlp_hvg(pbmc_hvg):
    """A small MLP (5 epochs, 1 torch thread) fitted on the 1,000-HVG train half; (clf, test)."""
    import torch

    from perturblab.classifiers import MLPClassifier

    train, test = pbmc_hvg
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    clf = MLPClassifier(epochs=5, random_state=0, device="cpu").fit(train, "cell_type")
    torch.set_num_threads(n)
    return clf, test


@pytest.fixture
def one_torch_thread():
    """The test machine's 2 cores are shared: one torch thread avoids oversubscription (10-100x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
