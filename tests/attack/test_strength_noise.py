"""Strength response (per-cell single-gene answers) and label noise."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from perturblab.attack import (
    apply_modification,
    celltype_similarity,
    corrupt_labels,
    label_noise_sweep,
    single_gene_attack,
    single_gene_cell_labels,
    strength_response,
)
from perturblab.attack.strength import strength_order

from ._toy import Lin

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_strength_response_by_hand():
    # cluster t: x0 = 2, x1 = 0, 1, 1.5, 3 -> A, A, A, B (A on the 0-0 tie); others bound the deciles
    X = np.array([[2, 0, 0], [2, 1, 0], [2, 1.5, 0], [2, 3, 0], [0, 0, 0], [4, 0, 0]], dtype=np.float32)
    cl = np.array(["t"] * 4 + ["o"] * 2)
    tab = strength_response(Lin(), X, cl, ["t"], modifications=("fixed",), fixed_values=(0.0, 2.5)).set_index(
        "fixed_value")
    # fixed 0: g0 -> B B B + A (flip, 2 cells moved), g1 -> all A (1 moved), g2 nothing
    assert tab.loc[0.0, "n_flipping_genes"] == 1 and tab.loc[0.0, "frac_cells_changed_max"] == 0.5
    assert tab.loc[0.0, "frac_cells_changed_mean"] == pytest.approx((0.5 + 0.25) / 3)
    # fixed 2.5: g1 -> all B (flip, 3 moved); g0 keeps A A A B
    assert tab.loc[2.5, "n_flipping_genes"] == 1 and tab.loc[2.5, "frac_cells_changed_max"] == 0.75
    assert tab.loc[2.5, "baseline_label"] == "A" and tab.loc[2.5, "n_genes_evaluated"] == 3
    assert strength_order("decile-3") == -3 and strength_order("perc99") == 10 and np.isnan(strength_order("fixed"))


def test_cell_labels_equal_brute_force_on_fast_and_generic_paths(mlp_hvg):
    clf, test = mlp_hvg
    X = clf.preprocess(test)
    cl = test.obs["cell_type"].astype(str).to_numpy()
    genes = list(clf.genes_[:40])
    idx, labels, base = single_gene_cell_labels(clf, X, cl, "NK", "perc99", genes=genes)  # MLP fast path
    rows = cl == "NK"
    for j in (0, 7, 39):
        Xm = apply_modification(X, cl, "NK", [idx[j]], "perc99")
        np.testing.assert_array_equal(labels[j], clf.predict(Xm[rows]).astype(str))
    np.testing.assert_array_equal(base, clf.predict(X[rows]).astype(str))

    class Generic(type(clf)):  # overriding predict disables the fast path
        def predict(self, X):
            return super().predict(X)

    g = Generic.__new__(Generic)
    g.__dict__.update(clf.__dict__)
    _, labels2, _ = single_gene_cell_labels(g, X, cl, "NK", "perc99", genes=genes)
    np.testing.assert_array_equal(labels, labels2)
    tab = strength_response(clf, X, cl, ["NK"], modifications=("perc99", "decile+5"), genes=genes)
    hits = single_gene_attack(clf, X, cl, "NK", "perc99", genes=genes)
    assert tab.loc[tab["modification"] == "perc99", "n_flipping_genes"].item() == len(hits.table)


def test_corrupt_labels():
    y = np.array(["A"] * 50 + ["B"] * 30 + ["C"] * 20)
    noisy, changed = corrupt_labels(y, 0.2, random_state=1)
    assert changed.sum() == 20 and (noisy[changed] != y[changed]).all() and (noisy[~changed] == y[~changed]).all()
    n10, c10 = corrupt_labels(y, 0.1, random_state=1)
    assert (c10 <= changed).all() and (n10[c10] == noisy[c10]).all()  # nested levels, same draws
    again, _ = corrupt_labels(y, 0.2, random_state=1)
    np.testing.assert_array_equal(again, noisy)
    # A and B centroids close, C far: A <-> B, C -> whichever of A/B is closer
    X = np.zeros((100, 3))
    X[:50] = [5, 1, 0]
    X[50:80] = [5, 1.5, 0]
    X[80:] = [0, 1, 6]
    sim = celltype_similarity(X, y)
    assert sim.loc["A", "B"] > sim.loc["A", "C"]
    sn, sc = corrupt_labels(y, 0.3, mode="similar", X=X, random_state=1)
    assert set(sn[sc & (y == "A")]) == {"B"} and set(sn[sc & (y == "B")]) == {"A"}
    np.testing.assert_array_equal(sc, corrupt_labels(y, 0.3, random_state=1)[1])  # same cells in both modes
    with pytest.raises(ValueError, match="rate"):
        corrupt_labels(y, 1.0)
    with pytest.raises(ValueError, match="needs X"):
        corrupt_labels(y, 0.1, mode="similar")


def test_label_noise_sweep_on_pbmc3k(pbmc_hvg):
    from perturblab.classifiers import RandomForestClassifier

    train, test = pbmc_hvg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = label_noise_sweep(lambda: RandomForestClassifier(n_estimators=20, random_state=0), train, test,
                                rates=(0.0, 0.2), targets=["NK", "B"], modifications=("perc99",),
                                attack_genes=list(train.var_names[:200]), name="rf")
    s = res.summary
    assert s.shape[0] == 4 and set(s["mode"]) == {"uniform", "similar"}
    zero = s[s["rate"] == 0]
    assert zero["accuracy"].nunique() == 1 and zero["n_labels_changed"].tolist() == [0, 0]
    assert (s.loc[s["rate"] == 0.2, "n_labels_changed"] == round(0.2 * train.n_obs)).all()
    assert zero["accuracy"].iloc[0] > 0.8
    assert set(res.attacks.columns) >= {"classifier", "mode", "rate", "cluster", "modification", "n_real_flips",
                                        "n_to_abstention", "n_to_correct", "n_already_wrong", "n_within_label"}
    assert len(res.attacks) == 8 and (res.attacks["n_real_flips"] <= res.attacks["n_flipping_genes"]).all()
    assert isinstance(s["n_real_flips"].iloc[0], (int, np.integer)) and isinstance(res.attacks, pd.DataFrame)
