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
