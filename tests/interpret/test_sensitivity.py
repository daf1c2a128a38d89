"""HVG-protocol confound and the sensitivity scan (issue 14) on the planted-GRN simulator."""

import numpy as np
import pytest

from perturblab.interpret.edges import correlation_scores, log_normalise
from perturblab.interpret.pipeline import select_genes
from perturblab.interpret.registry_rows import add_rows
from perturblab.interpret.sensitivity import (
    default_scan_levels,
    hvg_protocol,
    hvg_protocol_rows,
    sensitivity_scan,
    sensitivity_scan_rows,
)
from perturblab.interpret.stats import Registry


@pytest.fixture(scope="module")
def ctrl(sim):
    return sim.adata[sim.adata.obs["perturbation"] == "control"].copy()


def corr_fn(c, genes):
    lib = np.asarray(c.X.sum(axis=1)).ravel()
    return [correlation_scores(log_normalise(c[:, list(genes)].X, library_size=lib), genes)]


def _registry_accepts(rows):
    reg = Registry()
    add_rows(reg, rows)
    assert len(reg.table()) == len(rows)


def test_hvg_protocol_forced_vs_pure(sim, ctrl):
    tab = hvg_protocol(sim.adata, ctrl, 20, corr_fn)
    pure_genes = set(select_genes(ctrl, 20))
    f = tab[(tab["protocol"] == "forced") & (tab["score"] == "spearman")].iloc[0]
    p = tab[(tab["protocol"] == "pure") & (tab["score"] == "spearman")].iloc[0]
    assert f["n_perturbed_in_genes"] == len(sim.knockouts)
    assert p["n_perturbed_in_genes"] == len(set(sim.knockouts) & pure_genes) < len(sim.knockouts)
    assert set(filter(None, p["perturbations"].split(", "))) <= set(sim.knockouts) & pure_genes
    assert f["n_rankable"] > p["n_rankable"]
    assert {"baseline mean", "baseline variance", "baseline 1-dropout"} <= set(tab["score"])
    # with every gene selected the two protocols are the same
    same = hvg_protocol(sim.adata, ctrl, 100, corr_fn)
    d = same[same["protocol"] == "forced - pure"].set_index("score")
    assert (d["mean_auroc"] == 0).all() and (d["p"] == 1).all() and d.loc["spearman", "n_rankable"] == 4
    _registry_accepts(hvg_protocol_rows(tab))


def test_sensitivity_scan_grid(sim, ctrl):
    tab = sensitivity_scan(sim.adata, ctrl, corr_fn, lfc_thresholds=(0.25, 1.0), n_cells=(200, 5000),
                           n_genes=(30, 65), n_boot=100)
    assert len(tab) == 2 * 2 * 2 * 4  # configurations x (spearman + 3 baselines)
    assert set(tab["n_cells_used"]) == {200, ctrl.n_obs}
    assert (tab.loc[tab["tested"], "score"] == "spearman").all()
    t = tab[tab["tested"]].set_index(["n_cells", "n_genes", "lfc_threshold"])
    for nc in (200, ctrl.n_obs):
        for ng in (30, 65):
            assert t.loc[(nc, ng, 1.0), "mean_n_targets"] < t.loc[(nc, ng, 0.25), "mean_n_targets"]
    r = tab[(tab["n_cells"] == ctrl.n_obs) & (tab["n_genes"] == 65) & (tab["lfc_threshold"] == 0.25)].set_index("score")
    best = r.loc["spearman", "best_baseline"]
    assert r.loc[best, "mean_auroc"] == r.loc[r["kind"] == "baseline", "mean_auroc"].max()
    assert r.loc["spearman", "delta_vs_best_baseline"] == pytest.approx(r.loc["spearman", "mean_auroc"]
                                                                       - r.loc[best, "mean_auroc"])
    assert r.loc["spearman", "mean_auroc"] > t.loc[(200, 65, 0.25), "mean_auroc"] - 0.1  # more cells do not hurt
    rows = sensitivity_scan_rows(tab)
    assert len(rows) == 8
    _registry_accepts(rows)
    lv = default_scan_levels(2000, 299)
    assert lv["n_cells"] == (500, 1000, 2000) and lv["n_genes"] == (74, 149, 299) and len(lv["lfc_thresholds"]) == 3
