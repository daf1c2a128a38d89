"""Which attack needs the fewest genes, and the attack wing's plots."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from perturblab.attack import (
    budget_curve,
    fewest_genes,
    flip_taxonomy,
    pl,
    signature_genes,
)
from perturblab.attack.abstention import abstention_table

from ._toy import Lin

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy():
    # cluster t (A: x0 = 2 > x1 = 1); others set the observed ranges: g0 in [0, 3], g1 in [0, 2.5]
    X = np.array([[2, 1, 5]] * 3 + [[0, 0, 0], [3, 2.5, 9]], dtype=np.float32)
    return X, np.array(["t"] * 3 + ["o"] * 2)


def test_fewest_genes_on_a_known_classifier():
    X, cl = toy()
    tab = fewest_genes(Lin(), X, cl, ["t"], name="lin", cgd_genes=["g2", "g1", "g0"], cgd_step=1.0,
                       ks=(1, 2), amplitudes=(0.25, 1.0))
    by = tab.set_index("attack")
    # single gene: perc99 of g1 (2.44) > 2 flips t to B; perc1 of g0 (0.04) < 1 too
    assert by.loc["single_gene", "flipped"] and by.loc["single_gene", "min_genes"] == 1
    # CGD, alpha = eps = 1: g2 no effect; g1 -> 2*1 + 1 = 3 > 2: one gene
    assert by.loc["cgd", "flipped"] and by.loc["cgd", "min_genes"] == 1
    # PGD: one gene at amplitude 1 (g0 -> 0 or g1 -> 2.5)
    assert by.loc["pgd", "flipped"] and by.loc["pgd", "min_genes"] == 1 and by.loc["pgd", "new_label"] == "B"
    assert tab["fewest"].all() and (tab["classifier"] == "lin").all()


def test_fewest_genes_on_pbmc3k_mlp_and_forest(mlp_hvg, pbmc_hvg):
    from perturblab.classifiers import RandomForestClassifier

    clf, test = mlp_hvg
    X = clf.preprocess(test)
    cl = test.obs["cell_type"].astype(str).to_numpy()
    sig = signature_genes(X, cl, clf.genes_)["gene"].to_numpy()[:60]
    bt = budget_curve(clf, X, cl, ["NK"], ks=(1, 5, 20), amplitudes=(1.0,), methods=("pgd",), name="mlp")
    tab = fewest_genes(clf, X, cl, ["NK"], name="mlp", cgd_genes=sig, budget_table=bt, modifications=("perc99",))
    pgd = tab[tab["attack"] == "pgd"].iloc[0]
    hit = bt[bt["flipped"]].sort_values("k")
    # 20 genes flip NK (test_whitebox)
    assert len(hit) and pgd["flipped"] and pgd["min_genes"] == hit["n_genes"].iloc[0]
    best = tab["min_genes"].min()
    assert tab.loc[tab["fewest"], "min_genes"].eq(best).all() and tab["fewest"].sum() >= 1
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(pbmc_hvg[0], "cell_type")
    rt = fewest_genes(rf, rf.preprocess(test), cl, ["NK"], name="rf", cgd_genes=sig, modifications=("perc99",))
    assert not rt.set_index("attack").loc["pgd", "applicable"]
    assert rt.set_index("attack").loc["pgd", "detail"] == "not differentiable"
    both = pd.concat([tab, rt], ignore_index=True)
    ax = pl.fewest_genes(both)
    assert len(ax.get_yticklabels()) == 2 and ax.get_xscale() == "log"


def test_plots_return_axes():
    X, cl = toy()
    bt = budget_curve(Lin(), X, cl, ["t"], ks=(1, 2), amplitudes=(0.25, 1.0), methods=("fgsm", "pgd"), name="lin")
    ax = pl.budget_curve(bt)
    assert len(ax.get_lines()) == 4 and "genes changed" in ax.get_xlabel()
    ax = pl.budget_curve(bt, metric="flipped", by="cluster")
    assert "clusters flipped" in ax.get_ylabel()
    strength = pd.DataFrame({"classifier": ["a", "a", "b", "b"], "cluster": "t", "strength": [-1.0, 10.0, -1.0, 10.0],
                             "n_flipping_genes": [0, 5, 1, 2], "modification": ["decile-1", "perc99"] * 2})
    ax = pl.strength_response(strength)
    assert len(ax.get_lines()) == 3  # 2 classifiers + the zero line
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "perc99"]
    t = pd.DataFrame({"classifier": ["x", "x", "y"], "cluster": ["B", "B", "NK"],
                      "original_label": ["B", "B", "NK"], "new_label": ["NK", "B", "Unknown"]})
    ax = pl.flip_taxonomy(flip_taxonomy(t))
    assert len(ax.patches) == 2 * 5  # 2 classifiers x 5 flip categories
    noise = pd.DataFrame({"classifier": "rf", "mode": ["uniform", "uniform", "similar", "similar"],
                          "rate": [0, 0.1, 0, 0.1], "accuracy": [0.9, 0.8, 0.9, 0.7]})
    assert len(pl.label_noise(noise).get_lines()) == 2
    Xa = X.copy()
    Xa[:3, 1] = 3
    ax = pl.abstention(abstention_table(Lin(threshold=0.6), X, Xa, cl))
    assert len(ax.patches) == 2
    with pytest.raises(KeyError, match="lacks column"):
        pl.budget_curve(noise)
