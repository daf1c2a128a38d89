"""Bad input gets clear errors, on every classifier."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab.classifiers import BUILTIN_CLASSIFIERS, NotFittedError, get_classifier

FAST_KW = {"random_forest": {"n_estimators": 5}, "mlp": {"epochs": 1, "device": "cpu"},
           "celltypist": {"max_iter": 5}, "chetah": {"n_genes": 10}, "svm": {}, "sctype": {}}
GENES = ["CD79A", "MS4A1", "LYZ", "S100A9", "NKG7", "GNLY", "CD3E", "IL7R"] + [f"X{i}" for i in range(12)]


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(60, len(GENES))).astype(np.float32)
    labels = np.repeat(["B", "Mono", "NK"], 20)
    X[:20, :2] += 20
    X[20:40, 2:4] += 20
    X[40:, 4:6] += 20
    a = ad.AnnData(X, obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(60)]))
    a.var_names = GENES
    return a


def _fit(name, adata):
    clf = get_classifier(name, **FAST_KW[name])
    return clf.fit(adata, None if name == "sctype" else "cell_type")


@pytest.mark.filterwarnings("ignore:.*marker genes are absent")
@pytest.mark.parametrize("name", BUILTIN_CLASSIFIERS)  # plugins (e.g. the transformer bridge) test themselves
def test_bad_input(name, toy):
    clf = get_classifier(name, **FAST_KW[name])
    with pytest.raises(NotFittedError):
        clf.predict_proba(np.zeros((2, len(GENES)), np.float32))
    with pytest.raises(NotFittedError):
        clf.preprocess(toy)
    if name != "sctype":
        with pytest.raises(KeyError, match="label column 'nope' not found"):
            clf.fit(toy, "nope")
    neg = toy.copy()
    neg.X[0, 0] = -1
    with pytest.raises(ValueError, match="negative values"):
        _fit(name, neg)
    clf = _fit(name, toy)
    X = clf.preprocess(toy)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(bad)
    with pytest.raises(ValueError, match="columns in genes_ order"):
        clf.predict_proba(X[:, :-1])
    with pytest.raises(ValueError, match="lacks 1 of the classifier's"):
        clf.preprocess(toy[:, GENES[1:]])
    with pytest.raises(ValueError, match="unknown cluster 'Platelet'"):
        clf.predict_cluster(X, toy.obs["cell_type"], "Platelet")
    nan_counts = toy.copy()
    nan_counts.X[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        clf.preprocess(nan_counts)


def test_missing_labels_rejected(toy):
    a = toy.copy()
    a.obs["cell_type"] = a.obs["cell_type"].astype(object)
    a.obs.iloc[0, 0] = None
    with pytest.raises(ValueError, match="1 cells without a label"):
        get_classifier("random_forest", n_estimators=3).fit(a, "cell_type")
