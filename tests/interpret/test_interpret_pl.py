"""interpret.pl: every figure function draws the analysis' table and returns its Axes."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from perturblab.interpret import pl

matplotlib.use("Agg")


def _rec():
    rows = []
    for ref in ("string >= 700", "trrust"):
        for layer in range(3):
            for head in ("mean", "0", "1"):
                rows.append({"kind": "attention", "layer": layer, "head": head, "reference": ref,
                             "auroc": 0.5 + layer / 20})
        rows.append({"kind": "correlation", "layer": None, "head": None, "reference": ref, "auroc": 0.6})
    return pd.DataFrame(rows)


def test_every_plot_returns_axes():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    pp = pd.DataFrame({"score": np.repeat(["att", "spearman", "baseline mean"], 4),
                       "kind": np.repeat(["attention", "correlation", "baseline"], 4),
                       "perturbation": list("abcd") * 3, "auroc": rng.uniform(0.4, 0.9, 12)})
    scan = pd.DataFrame([{"lfc_threshold": lfc, "n_cells_used": nc, "n_genes_used": 100, "score": "att", "tested": True,
                          "delta_vs_best_baseline": rng.normal(), "beats_all_baselines": bool(lfc > 0.5)}
                         for lfc in (0.25, 0.5, 1.0) for nc in (500, 1000)])
    strata = pd.DataFrame([{"evidence": "correlation", "data": "simulated", "k": k, "strata": s, "score": sc,
                            "auroc": rng.uniform(0.5, 0.9)} for k in (2, 3) for s in ("real", "shuffled", "random")
                           for sc in ("pooled", "CSSI-max", "CSSI-mean")])
    curve = pd.DataFrame({"n_cells": np.repeat([200, 400], 3), "auroc": rng.random(6), "topk_f1": rng.random(6)})
    bal = pd.DataFrame({"covariate": ["a", "b"], "smd_before": [0.5, -0.3], "smd_after": [0.05, 0.01]})
    dec = pd.DataFrame({"score": ["s"] * 4, "part": ["total", "degree", "expression", "residual"],
                        "contribution": [0.3, 0.1, -0.02, 0.22]})
    per_tf = pd.DataFrame({"score": "s", "tf": ["A", "B"], "auroc": [0.6, 0.7], "ci_low": [0.5, 0.6],
                           "ci_high": [0.7, 0.8]})
    split = pd.DataFrame({"model": "logistic", "split": ["joint", "joint"], "features": ["gene", "gene + attention"],
                          "delta_auroc": [0, 0.01], "delta_auroc_ci_low": [0, -0.02], "delta_auroc_ci_high": [0, 0.03]})
    co = pd.DataFrame({"layer": [0, 0, 1, 1, 0], "head": ["0", "1", "0", "1", "mean"], "spearman_rho": rng.random(5)})
    calls = [pl.layer_profiles(_rec()), pl.baseline_vs_edge(pp), pl.sensitivity_heatmap(scan), pl.cssi_scan(strata),
             pl.scaling(curve), pl.balance(bal), pl.decomposition(dec), pl.per_tf_forest(per_tf),
             pl.split_designs(split), pl.coexpression_map(co), pl.in_silico(pp)]
    for ax in calls:
        assert isinstance(ax, matplotlib.axes.Axes) and ax.get_title()
    # drawing on a given Axes
    _, ax = plt.subplots()
    assert pl.layer_profiles(_rec(), ax=ax) is ax
    assert len(ax.get_lines()) >= 2
    # the heatmap writes one cell per configuration, stars where every baseline is beaten
    texts = [t.get_text() for t in calls[2].texts]
    assert len(texts) == 6 and sum(t.endswith("*") for t in texts) == 2
    plt.close("all")


def test_plots_refuse_bad_tables():
    with pytest.raises(KeyError, match="lacks column"):
        pl.layer_profiles(pd.DataFrame({"layer": [0]}))
    with pytest.raises(ValueError, match="empty"):
        pl.balance(pd.DataFrame(columns=["covariate", "smd_before", "smd_after"]))


def test_ablation_and_cssi_figures_draw_the_report_tables():
    import matplotlib.pyplot as plt

    abl = pd.DataFrame({"intervention": ["top", "top", "random", "random", "layer"], "k": [5, 10, 5, 10, 4],
                        "degradation": [0.02, 0.05, 0.0, 0.01, 0.5]})
    ax = pl.ablation(abl)
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert labels == ["random", "top"]  # whole-layer rows are not on the dose-response axis
    cs = pd.DataFrame({"reference": ["trrust", "trrust", "string"], "score": ["pooled", "CSSI-max", "pooled"],
                       "auroc": [0.55, 0.6, 0.52]})
    ax = pl.cssi(cs)
    heights = sorted(round(p.get_height(), 2) for p in ax.patches if not np.isnan(p.get_height()))
    assert heights == [0.52, 0.55, 0.6]
    with pytest.raises(ValueError, match="empty"):
        pl.ablation(abl[abl["intervention"] == "layer"])
    plt.close("all")
