"""adverSCarial's MClassifier: rule order, overrides, outputs, and its PBMC3k answers."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.attack import MClassifier
from perturblab.attack.mclassifier import MCLASSIFIER_RULES

GENES = [r[0] for r in MCLASSIFIER_RULES] + ["OTHER"]


def cluster_with(**means):
    """Two cells of cluster 'c' whose column means are ``means`` (others 0), plus one cell of 'd'."""
    X = np.zeros((3, len(GENES)), dtype=np.float32)
    for g, m in means.items():
        X[:2, GENES.index(g)] = [m - 1, m + 1]
        X[2, GENES.index(g)] = 1000  # another cluster: must not matter
    return X, np.array(["c", "c", "d"])


@pytest.mark.parametrize(
    "means, label",
    [
        ({}, "UNDETERMINED"),
        ({"LTB": 7.0}, "UNDETERMINED"),  # strict >
        ({"LTB": 8}, "Memory CD4 T"),
        ({"LTB": 8, "CD79A": 3}, "B"),  # a later rule overrides
        ({"GZMB": 6, "GZMK": 3}, "CD8 T"),
        ({"LDHB": 3.1}, "Naive CD4 T"),
        ({"LDHB": 3.3}, "UNDETERMINED"),  # strictly between 3 and 3.3
        ({"GZMB": 6, "PF4": 11}, "Platelet"),
        ({"CD74": 51, "LST1": 11}, "DC"),
    ],
)
def test_rules_in_order_later_overrides(means, label):
    X, cl = cluster_with(**means)
    res = MClassifier(GENES)(X, cl, "c")
    assert res.prediction == label and res.label == label
    assert res.odd == 1 and res.score == 1


def test_outputs_type_predictions_one_hot():
    X, cl = cluster_with(GZMB=6)
    res = MClassifier(GENES)(X, cl, "c")
    tp = res.type_predictions
    assert list(tp.index) == ["c", "d", "NK"] and tp.shape == (3, 3)  # label not a cluster name: row added
    assert (tp.loc["NK"] == 1).all() and tp.drop(index="NK").to_numpy().sum() == 0
    assert list(res.cell_types) == ["NK", "NK"]


def test_missing_marker_and_empty_cluster():
    with pytest.raises(ValueError, match="marker genes"):
        MClassifier(["LTB", "CD79A"])
    X, cl = cluster_with()
    with pytest.raises(ValueError, match="unknown cluster"):
        MClassifier(GENES)(X, cl, "zzz")


def test_pbmc3k_test_half_clusters_are_recognised(pbmc_split):
    _, test = pbmc_split
    X = test.X.toarray().astype(np.float32)
    cl = test.obs["cell_type"].astype(str).to_numpy()
    clf = MClassifier(test.var_names)
    for c in np.unique(cl):
        assert clf(X, cl, c).prediction == c
