"""Every analysis on simulated cells from a planted GRN: it must recover what was planted."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from perturblab.interpret.baselines import baseline_scores, gene_features, tf_out_degree
from perturblab.interpret.confounds import (
    confound_r2,
    curveball,
    degree_preserving_null,
    label_shuffle_null,
    residualise,
)
from perturblab.interpret.cssi import cssi_aggregate, cssi_null_stress, cssi_scores, leiden_strata, stratified_matrices
from perturblab.interpret.edges import EdgeScores, correlation_scores, edge_table, log_normalise, spearman_matrix
from perturblab.interpret.incremental import build_pairs, incremental_value
from perturblab.interpret.perturbation import compare_scores, de_targets, perturbation_auroc
from perturblab.interpret.references import Reference, candidate_edges, reference_recovery
from perturblab.interpret.simulate import simulate_grn


@pytest.fixture(scope="module")
def ctrl(sim_control):
    return sim_control


@pytest.fixture(scope="module")
def corr(ctrl):
    X, genes, _ = ctrl
    return correlation_scores(X, genes)


@pytest.fixture(scope="module")
def de(sim):
    return de_targets(sim.adata)


def test_simulator_is_seeded_and_plants_what_it_says(sim):
    again = simulate_grn(random_state=0)
    assert (again.adata.X != sim.adata.X).nnz == 0
    assert (simulate_grn(random_state=1).adata.X != sim.adata.X).nnz > 0
    e = sim.edges
    assert set(e["source"]) <= set(sim.tfs)
    assert {"all", "S0", "S1", "S2"} == set(e["state"])
    # the knocked-out TF is strongly reduced
    X = log_normalise(sim.adata.X)
    g = sim.knockouts[0]
    j = list(sim.adata.var_names).index(g)
    obs = sim.adata.obs["perturbation"].to_numpy()
    assert X[obs == g, j].mean() < 0.5 * X[obs == "control", j].mean()
    with pytest.raises(ValueError, match="n_tfs"):
        simulate_grn(n_genes=5, n_tfs=5)


def test_spearman_matches_scipy(ctrl):
    X, _, _ = ctrl
    sub = X[:, :6]
    np.testing.assert_allclose(spearman_matrix(sub), stats.spearmanr(sub).statistic, atol=1e-10)


def test_reference_recovery_finds_planted_edges(sim, corr):
    refs = [Reference("global", sim.reference("global")), Reference("undirected", sim.reference("all"), directed=False)]
    rec = reference_recovery([corr], refs, tfs=sim.tfs).set_index("reference")
    assert rec.loc["global", "auroc"] > 0.8
    assert rec.loc["global", "epr"] > 3
    assert rec.loc["global", "fisher_p"] < 1e-4
    assert rec.loc["undirected", "auroc"] > 0.75
    # the universe: TF sources x all other genes
    rows, _cols, lab = candidate_edges(corr.genes, refs[0], sim.tfs)
    assert rows.size == len(sim.tfs) * (corr.genes.size - 1) and lab.sum() == len(sim.reference("global"))
    long = edge_table(corr)
    assert len(long) == corr.genes.size * (corr.genes.size - 1)


def test_de_targets_are_the_downstream_genes(sim, de):
    for g in sim.knockouts:
        called = set(de[(de["perturbation"] == g) & de["is_target"]]["gene"])
        truth = sim.downstream(g)
        assert len(called & truth) / len(truth) > 0.6  # recall (far indirect targets respond weakly)
        assert len(called & truth) / max(len(called), 1) > 0.7  # precision
    assert not ((de["perturbation"] == de["gene"]).any())
    with pytest.raises(KeyError, match="perturbation column"):
        de_targets(sim.adata, perturbation_key="guide")
    with pytest.raises(ValueError, match="unknown perturbation"):
        de_targets(sim.adata, perturbations=["TF99"])


def test_perturbation_auroc_and_baselines(sim, ctrl, corr, de):
    X, genes, _ = ctrl
    feats = gene_features(X, genes)
    base = baseline_scores(feats, sim.reference("all"))
    pp = perturbation_auroc([corr, *base], de)
    mean = pp.groupby("score")["auroc"].mean()
    assert mean["spearman"] > 0.7  # correlation carries the planted edges
    assert abs(mean["baseline TF out-degree"] - 0.5) < 0.15  # negative control ~ chance
    # a baseline scores every regulator's candidates by the target feature alone
    b = base[0]
    np.testing.assert_allclose(b.matrix[0], feats["mean"].to_numpy())
    np.testing.assert_allclose(b.matrix[3], feats["mean"].to_numpy())
    cmp = compare_scores(pp, "spearman", "baseline TF out-degree", n_boot=200)
    assert cmp["n"] == len(sim.knockouts) and cmp["delta"] > 0
    assert cmp["ci_low"] <= cmp["delta"] <= cmp["ci_high"]
    deg = tf_out_degree(["TF0", "G99"], pd.DataFrame({"source": ["TF0", "TF0"], "target": ["A", "B"]}))
    np.testing.assert_array_equal(deg, [2, 0])


def test_incremental_value_of_a_real_edge_score(ctrl, corr, de):
    X, genes, _ = ctrl
    feats = gene_features(X, genes)
    rng = np.random.default_rng(0)
    noise = EdgeScores("noise", rng.random(corr.matrix.shape), genes, "attention")
    pairs = build_pairs(de, feats, {"correlation": corr, "noise": noise})
    inc = incremental_value(pairs, edge_columns=("correlation", "noise"), models=("logistic",), n_boot=200)
    corr_rows = inc[inc["features"] == "gene + correlation"]
    assert (corr_rows["delta_auroc"] > 0.05).all() and (corr_rows["delta_auroc_ci_low"] > 0).all()
    noise_rows = inc[inc["features"] == "gene + noise"]
    assert (noise_rows["delta_auroc"].abs() < 0.06).all()
    assert (inc.loc[inc["features"] == "gene", "delta_auroc"] == 0).all()


def test_confounds_r2_and_residualisation(sim, ctrl, corr):
    X, genes, _ = ctrl
    feats = gene_features(X, genes)
    # a score made only of gene features, and a reference of the pairs it ranks first
    m = feats["mean"].to_numpy()
    noise = np.random.default_rng(0).normal(0, 0.01, size=(genes.size, genes.size))
    fs = EdgeScores("expression only", m[:, None] + m[None, :] + noise, genes, "attention")
    ref = Reference("top", edge_table(fs, mask=np.isin(genes, sim.tfs)[:, None] & ~np.eye(genes.size, dtype=bool))
                    .nlargest(30, "score"))
    r2 = confound_r2(fs, feats).set_index("model")["r2"]
    assert r2["ols"] > 0.99
    res = residualise(fs, feats, model="ols")
    rec = reference_recovery([fs, res], [ref], tfs=sim.tfs)["auroc"].to_numpy()
    assert rec[0] > 0.95 and abs(rec[1] - 0.5) < 0.15  # signal gone after residualisation
    # the planted network is not a gene-feature artefact: correlation keeps its recovery
    glob = Reference("global", sim.reference("global"))
    rc = reference_recovery([corr, residualise(corr, feats)], [glob], tfs=sim.tfs)["auroc"].to_numpy()
    assert (rc[1] - 0.5) / (rc[0] - 0.5) > 0.8


def test_nulls_detect_planted_signal(sim, corr):
    glob = Reference("global", sim.reference("global"))
    deg = degree_preserving_null(corr, glob, sim.tfs, n_null=100, random_state=0)
    lab = label_shuffle_null(corr, glob, sim.tfs, n_null=200, random_state=0)
    assert deg["z"] > 3 and deg["p_empirical"] < 0.05
    assert lab["z"] > 3 and lab["p_empirical"] < 0.05
    assert label_shuffle_null(corr, glob, sim.tfs, n_null=50, random_state=3) == label_shuffle_null(
        corr, glob, sim.tfs, n_null=50, random_state=3)


def test_curveball_preserves_degrees():
    genes = [f"g{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    edges = pd.DataFrame([(f"g{i}", f"g{j}") for i in range(4) for j in rng.choice(12, 5, replace=False) if i != j],
                         columns=["source", "target"])
    rows, cols, lab = candidate_edges(genes, Reference("r", edges), [f"g{i}" for i in range(4)])
    new = curveball(rows, cols, lab, rng=np.random.default_rng(1))
    assert not np.array_equal(new, lab)
    np.testing.assert_array_equal(np.bincount(rows[new], minlength=12), np.bincount(rows[lab], minlength=12))
    np.testing.assert_array_equal(np.bincount(cols[new], minlength=12), np.bincount(cols[lab], minlength=12))
    assert not (rows[new] == cols[new]).any()


def test_null_p_values_are_calibrated():
    """Random scores vs a random reference: label-shuffle and curveball p-values ~ Uniform(0, 1)."""
    rng = np.random.default_rng(0)
    genes = np.array([f"g{i}" for i in range(20)])
    tfs = list(genes[:5])
    p_lab, z_deg = [], []
    for rep in range(60):
        S = EdgeScores("random", rng.random((20, 20)), genes, "attention")
        edges = pd.DataFrame({"source": rng.choice(tfs, 25), "target": rng.choice(genes, 25)})
        ref = Reference("random", edges[edges["source"] != edges["target"]])
        p_lab.append(label_shuffle_null(S, ref, tfs, n_null=99, random_state=rep)["p_empirical"])
        if rep < 30:
            z_deg.append(degree_preserving_null(S, ref, tfs, n_null=40, random_state=rep)["z"])
    assert stats.kstest(p_lab, "uniform").pvalue > 0.01
    assert abs(np.mean(z_deg)) < 0.6 and 0.5 < np.std(z_deg) < 1.6


def test_cssi_beats_pooled_on_state_specific_edges(sim, ctrl, corr):
    X, genes, states = ctrl
    ss = Reference("state-specific", sim.reference("state_specific"))
    stack, sizes, labels, left_out = stratified_matrices(X, states)
    assert list(labels) == ["S0", "S1", "S2"] and not left_out
    scores = [corr, *cssi_scores(stack, sizes, genes, "spearman", "correlation")]
    rec = reference_recovery(scores, [ss], tfs=sim.tfs).set_index("score")
    assert rec.loc["CSSI-max spearman", "auroc"] > rec.loc["spearman", "auroc"] + 0.15
    assert rec.loc["CSSI-max spearman", "auprc"] > rec.loc["spearman", "auprc"]
    # null stress: shuffled and random strata do not inflate recovery
    stress = cssi_null_stress(X, genes, ss, states, tfs=sim.tfs, ks=(2, 5), n_repeats=2)
    stress = stress.groupby(["strata", "score"])["auroc"].mean()
    assert stress[("real", "CSSI-max")] > stress[("real", "pooled")] + 0.15
    for strata in ("shuffled", "random"):
        assert stress[(strata, "CSSI-max")] < stress[(strata, "pooled")] + 0.05
        assert stress[(strata, "CSSI-mean")] < stress[(strata, "pooled")] + 0.05


def test_cssi_aggregates_hand_computed():
    stack = np.array([[[0.0, -0.6], [0.2, 0.0]], [[0.0, 0.3], [0.4, 0.0]]])
    np.testing.assert_allclose(cssi_aggregate(stack, [1, 3], "max"), [[0, 0.6], [0.4, 0]])
    np.testing.assert_allclose(cssi_aggregate(stack, [1, 3], "mean"), [[0, 0.25 * -0.6 + 0.75 * 0.3], [0.35, 0]])
    np.testing.assert_allclose(cssi_aggregate(stack, [1, 3], "range"), [[0, 0.9], [0.2, 0]])
    with pytest.raises(ValueError, match="how must be"):
        cssi_aggregate(stack, [1, 3], "median")
    with pytest.raises(ValueError, match="no stratum"):
        stratified_matrices(np.zeros((5, 2)), ["a"] * 5, min_cells=20)


def test_leiden_strata_recover_separated_states():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(3, 8))
    truth = np.repeat([0, 1, 2], 80)
    emb = centres[truth] + rng.normal(0, 1, size=(240, 8))
    labels = leiden_strata(emb, resolution=0.2, random_state=0)
    assert adjusted_rand_score(truth, labels) > 0.9


def test_de_on_a_gene_subset_uses_full_library_sizes(sim, de):
    from perturblab.interpret.edges import log_normalise

    sub = de_targets(sim.adata, genes=["G20", "G30", "B0"])
    assert set(sub["gene"]) == {"G20", "G30", "B0"}
    full = de.set_index(["perturbation", "gene"]).loc[sub.set_index(["perturbation", "gene"]).index]
    np.testing.assert_allclose(sub["log2fc"].to_numpy(), full["log2fc"].to_numpy())
    np.testing.assert_allclose(
        log_normalise(np.array([[1.0, 3.0]]), target_sum=4, library_size=[8]), np.log1p([[0.5, 1.5]])
    )
    with pytest.raises(ValueError, match="unknown gene"):
        de_targets(sim.adata, genes=["nope"])
