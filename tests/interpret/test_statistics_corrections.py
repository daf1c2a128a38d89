"""Issue 13's corrections: the layer is never chosen on its test perturbations; the ablation test pairs per
perturbation and reaches p < 0.05 on a planted causal head; whole-layer ablation scores downstream attention,
never the attention it zeroed; vectorised perturbation AUROC equals scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from perturblab.interpret.ablation import (
    ablation_effects,
    ablation_experiment,
    entropy_matched_heads,
    rank_heads,
    regulatory_layers,
)
from perturblab.interpret.edges import EdgeScores
from perturblab.interpret.models import OwnGeneTransformer
from perturblab.interpret.perturbation import TargetLabels, de_targets, perturbation_auroc
from perturblab.interpret.selection import (
    LayerSelection,
    candidate_names,
    nested_cv_selection,
    prespecified_score,
    selected_scores,
)
from perturblab.interpret.simulate import simulate_grn


# ---- layer selection -----------------------------------------------------------------------------------------
def _per_pert(values: dict[str, list[float]], perts: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"score": s, "perturbation": p, "auroc": v} for s, vs in values.items()
                         for p, v in zip(perts, vs)])


def test_nested_cv_never_chooses_a_layer_on_its_test_perturbations():
    rng = np.random.default_rng(0)
    perts = [f"P{i}" for i in range(10)]
    cands = candidate_names(3)
    values = {c: list(rng.uniform(0.4, 0.8, len(perts))) for c in cands}
    sel = nested_cv_selection(_per_pert(values, perts), cands, "attention L2 mean", n_folds=5, random_state=1)
    assert sel.method == "nested-cv" and sel.bonferroni_m == 6 and set(sel.assignment) == set(perts)
    assert sel.folds["fold"].nunique() == 5
    for p in perts:
        # make another candidate perfect on p alone: p's own choice must not move
        other = next(c for c in cands if c != sel.assignment[p])
        rigged = {c: list(v) for c, v in values.items()}
        rigged[other][perts.index(p)] = 1.0
        for c in cands:
            if c != other:
                rigged[c][perts.index(p)] = 0.0
        again = nested_cv_selection(_per_pert(rigged, perts), cands, "attention L2 mean", n_folds=5, random_state=1)
        assert again.assignment[p] == sel.assignment[p]
    # each fold's choice is the argmax over the other folds' perturbations (hand check)
    f = sel.folds
    for _, g in f.groupby("fold"):
        train = [p for p in perts if p not in set(g["perturbation"])]
        means = {c: np.mean([values[c][perts.index(p)] for p in train]) for c in cands}
        assert set(g["selected"]) == {max(means, key=means.get)}


def test_selected_scores_take_each_perturbed_row_from_its_out_of_fold_choice():
    genes = np.array(["A", "B", "C", "D"])
    mats = {c: EdgeScores(c, np.full((4, 4), float(i)), genes, "attention", int(c.split()[1][1:]), c.split()[2])
            for i, c in enumerate(candidate_names(2))}
    sel = LayerSelection("nested-cv", "attention L1 mean", list(mats),
                         {"A": "attention L0 max", "C": "attention L1 max"}, pd.DataFrame({"fold": [0, 1]}), 4)
    tested, final = selected_scores(sel, mats)
    assert final.name == "attention L1 mean" and tested.name == "attention (nested CV)"
    np.testing.assert_array_equal(tested.matrix[:, 0], [1.0, 2.0, 3.0, 2.0])  # rows A, C from their choice; B, D final
    pre = LayerSelection("prespecified", prespecified_score("last", "max", 2), [])
    assert selected_scores(pre, mats)[0].name == "attention L1 max"
    # fewer than 2 perturbations: falls back to the pre-specified layer and says so
    few = nested_cv_selection(_per_pert({c: [0.6] for c in mats}, ["A"]), list(mats), "attention L1 mean")
    assert few.method == "prespecified" and "fell back" in few.describe()
    with pytest.raises(ValueError, match="outside the model"):
        prespecified_score("7", "mean", 2)


# ---- vectorised perturbation AUROC ---------------------------------------------------------------------------
def test_vectorised_perturbation_auroc_equals_sklearn_with_ties():
    sim = simulate_grn(random_state=0)
    de = de_targets(sim.adata)
    genes = np.asarray(sim.adata.var_names)
    rng = np.random.default_rng(0)
    scores = [EdgeScores("ties", rng.integers(0, 3, (genes.size, genes.size)).astype(float), genes, "attention"),
              EdgeScores("cont", rng.normal(size=(genes.size, genes.size)), genes, "correlation")]
    pp = perturbation_auroc(scores, de)
    assert len(pp) == 2 * len(sim.knockouts)
    for r in pp.itertuples():
        i = list(genes).index(r.perturbation)
        cand = [j for j in range(genes.size) if j != i]
        tg = set(de[(de["perturbation"] == r.perturbation) & de["is_target"]]["gene"])
        lab = np.array([genes[j] in tg for j in cand])
        v = next(s for s in scores if s.name == r.score).matrix[i, cand]
        assert r.auroc == pytest.approx(roc_auc_score(lab, v), abs=1e-12)
        assert r.auprc == pytest.approx(average_precision_score(lab, v), abs=1e-12)
    assert TargetLabels(de, genes).labels.sum() == de["is_target"].sum()


# ---- head ranking and random heads ---------------------------------------------------------------------------
def test_composite_ranking_and_entropy_matched_heads():
    ref = pd.DataFrame({"layer": [0, 0, 1, 1, 0, 0, 1, 1], "head": [0, 1, 0, 1] * 2,
                        "auroc": [0.9, 0.5, 0.7, 0.6, 0.9, 0.5, 0.7, 0.6]})  # two references, same values
    pert = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "auroc": [0.55, 0.8, 0.75, 0.6]})
    t = rank_heads(ref, pert, "composite")
    # percentile ranks: reference (1, .25, .75, .5), perturbation (.25, 1, .75, .5) -> composite .625 .625 .75 .5
    assert list(zip(t["layer"], t["head"])) == [(1, 0), (0, 0), (0, 1), (1, 1)]
    assert t["composite"].tolist() == pytest.approx([0.75, 0.625, 0.625, 0.5])
    for method, best in (("reference", (0, 0)), ("perturbation", (0, 1))):
        r = rank_heads(ref, pert, method)
        assert (r.loc[0, "layer"], r.loc[0, "head"]) == best
    heads = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    ent = {(0, 0): 0.1, (0, 1): 3.0, (0, 2): 0.2, (1, 0): 2.9, (1, 1): 0.15, (1, 2): 5.0}
    for seed in range(5):
        pick = entropy_matched_heads([(0, 0), (0, 1)], heads, ent, np.random.default_rng(seed), pool=1)
        assert pick == [(1, 0), (1, 1)]  # nearest in entropy, outside the top set
        wide = entropy_matched_heads([(0, 0), (0, 1)], heads, ent, np.random.default_rng(seed), pool=3)
        assert len(set(wide)) == 2 and not set(wide) & {(0, 0), (0, 1)}
    assert regulatory_layers([(2, 0), (0, 1), (1, 1)], 2, 3) == [0]  # layer 2 is last: no downstream attention


# ---- a planted causal head -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted():
    """An own-architecture model built by hand on a simulated GRN: head L0H0 attends from each TF to its planted
    targets and writes their identity into the residual stream; head L1H0 reads it back and attends to the same
    targets. Every other head and every MLP is empty, layer 2 attends uniformly."""
    sim = simulate_grn(n_genes=40, n_tfs=8, n_states=1, n_cells_per_state=200, state_specific_per_state=0,
                       n_knockouts=8, n_cells_per_knockout=100, random_state=3)
    genes = np.asarray(sim.adata.var_names)
    G, d = genes.size, 2 * genes.size
    A = np.zeros((G, G))
    idx = {g: i for i, g in enumerate(genes)}
    for s, t in zip(sim.edges["source"], sim.edges["target"]):
        A[idx[s], idx[t]] = 1.0
    model = OwnGeneTransformer(genes, d_model=d, n_heads=2, n_layers=3, d_ff=4, dropout=0.0, include_zero_genes=True,
                               device="cpu")
    net = model.network
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for m in net.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.fill_(1.0)
        net.gene_embedding.weight[2 + np.arange(G), np.arange(G)] = 1.0
        a0, a1 = net.layers[0].self_attn, net.layers[1].self_attn
        eye = torch.eye(G)
        a0.in_proj_weight[:G, :G] = eye  # Q: identity of the query gene
        a0.in_proj_weight[d : d + G, :G] = torch.as_tensor(A, dtype=torch.float32)  # K: regulators of the key
        a0.in_proj_weight[2 * d : 2 * d + G, :G] = eye  # V: identity of the key gene
        a0.out_proj.weight[G:, :G] = 3.0 * eye  # head 0's context -> second half of the residual stream
        a1.in_proj_weight[:G, G:] = eye  # L1H0 Q: the targets L0H0 wrote
        a1.in_proj_weight[d : d + G, :G] = eye  # K: identity
    ctrl = sim.adata[sim.adata.obs["perturbation"] == "control"][:12].copy()
    de = de_targets(sim.adata)
    targets = TargetLabels(de, genes)

    def evaluate(matrix):
        return pd.Series(targets.rank(matrix, ("auroc",))["auroc"], index=targets.perturbations)

    return model, ctrl, genes, evaluate


def test_ablation_test_reaches_significance_on_a_planted_causal_head(planted):
    model, ctrl, genes, evaluate = planted
    ranking = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 1)]
    res = ablation_experiment(model, ctrl, genes, ranking, evaluate, ks=(1,), n_random_seeds=3, layers=[0],
                              interventions=("top", "random", "uniform", "mlp"), batch_size=12)
    runs = res.runs.set_index(["intervention", "seed"])
    top = runs.loc[("top", -1)]
    assert top["outcome_layers"] == "1-2" and top["auroc_intact"] > 0.75 and abs(top["auroc_ablated"] - 0.5) < 0.05
    rnd = runs.loc["random", "degradation"]  # NaN where a draw sits in the last layer (no downstream attention)
    assert rnd.notna().any() and (rnd.dropna().abs() < 1e-9).all()  # empty heads change nothing downstream
    eff = ablation_effects(res)
    assert eff.n >= 6 and eff.top[1] > 0.25 and eff.random[1] == pytest.approx(0.0, abs=1e-9)
    assert eff.top_vs_random_p < 0.05  # paired per perturbation: 1 / 2^n
    assert eff.top_vs_random_p == pytest.approx(0.5 ** eff.n)
    assert eff.layer_tests["uniform"]["p"] < 0.05 and eff.layer_tests["uniform"]["effect"] > 0.25
    assert eff.layer_tests["mlp"]["p"] == 1.0  # the MLPs are empty: zeroing them changes nothing
    assert top["fidelity_hidden"] > 0.02 and top["fidelity_hidden"] >= top["fidelity_hidden_last"]


def test_whole_layer_ablation_scores_downstream_attention_not_the_zeroed_layer(planted):
    model, ctrl, genes, evaluate = planted
    ranking = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 1)]
    res = ablation_experiment(model, ctrl, genes, ranking, evaluate, ks=(1,), n_random_seeds=1, layers=[0, 1],
                              interventions=("layer",), batch_size=12)
    lay = res.runs[res.runs["intervention"] == "layer"].set_index("layer")
    assert lay.loc[0, "outcome_layers"] == "1-2" and lay.loc[1, "outcome_layers"] == "2-2"
    # zeroing layer 0 removes what L1H0 reads: its attention (downstream) loses the planted targets
    assert lay.loc[0, "auroc_intact"] > 0.75 and abs(lay.loc[0, "auroc_ablated"] - 0.5) < 0.05
    # zeroing layer 1 is judged on layer 2, whose attention it cannot change here: no effect, not a mechanical 0.5
    assert lay.loc[1, "degradation"] == pytest.approx(0.0, abs=1e-12)
    # the old outcome (the zeroed layer's own attention) would be exactly 0.5 by construction
    zeroed = np.zeros((genes.size, genes.size))
    assert evaluate(zeroed).dropna().eq(0.5).all()
    per = res.perturbations[(res.perturbations["intervention"] == "layer") & (res.perturbations["layer"] == 0)]
    assert (per["degradation"].dropna() > 0).all()


def test_settings_that_do_not_change_results_are_not_fingerprinted():
    from perturblab.interpret.pipeline import InterpretConfig

    assert InterpretConfig(n_jobs=2, device="cpu").fingerprint() == InterpretConfig().fingerprint()
    fp = InterpretConfig(de_lfc=1.0, layer_selection="prespecified", layer="2").fingerprint()
    assert fp["de_lfc"] == 1.0 and fp["layer_selection"] == "prespecified" and "n_jobs" not in fp
    for bad, msg in (({"layer": "top"}, "layer must be"), ({"layer_selection": "best"}, "layer selection"),
                     ({"de_alpha": 2.0}, "de_alpha"), ({"n_jobs": 0}, "n-jobs")):
        with pytest.raises(ValueError, match=msg):
            InterpretConfig(**bad)


def test_simulated_screen_is_sparse_seeded_and_its_knockdowns_propagate():
    import scipy.sparse as sp

    from perturblab.interpret.simulate import simulate_screen

    # Replogle-like groups: 70 cells per knock-down
    kw = {"n_genes": 300, "n_regulators": 100, "n_perturbations": 40, "cells_per_perturbation": 70,
          "n_control": 1000, "random_state": 0}
    sim = simulate_screen(**kw, chunk_size=1000)
    assert sp.isspmatrix_csr(sim.adata.X) and sim.adata.shape == (3800, 300)
    assert (simulate_screen(**kw, chunk_size=1000).adata.X != sim.adata.X).nnz == 0
    assert len(sim.edges) == 400 and (sim.edges["source"].str[2:].astype(int) < 100).all()
    de = de_targets(sim.adata)
    unfiltered = de_targets(sim.adata, min_detection=0)
    called, raw = de[de["is_target"]], unfiltered[unfiltered["is_target"]]
    down = {p: sim.downstream(p) for p in sim.knockouts}

    def precision(t):
        return np.mean([g in down[p] for p, g in zip(t["perturbation"], t["gene"])])

    # the detection filter removes the zero-variance calls and raises precision against the planted network
    assert (raw["detection"] == 0).mean() > 0.3 and (called["detection"] == 0).mean() < 0.05
    assert precision(raw) < 0.5 < 0.75 < precision(called)
    # the knocked-down gene itself drops
    X = sim.adata.X.toarray()
    g = sim.knockouts[0]
    j = list(sim.adata.var_names).index(g)
    lab = sim.adata.obs["perturbation"].to_numpy()
    assert X[lab == g, j].mean() < 0.3 * X[lab == "control", j].mean()


def test_layer_analyses_in_worker_processes_equal_in_process(tmp_path):
    from perturblab.interpret.layer_pass import _key, analyse_layers
    from perturblab.interpret.pipeline import InterpretConfig
    from perturblab.interpret.references import Reference
    from perturblab.interpret.stages import nulls
    from perturblab.runs import UnitStore, open_run

    sim = simulate_grn(random_state=0)
    de = de_targets(sim.adata)
    genes = np.asarray(sim.adata.var_names).astype(str)
    ref = Reference("planted", sim.reference("all"))
    rng = np.random.default_rng(0)
    out = {}
    for n_jobs in (1, 2):
        store = UnitStore(open_run(tmp_path / f"run{n_jobs}", "test", {"x": 1}))
        paths = {}
        for layer in range(2):
            store.save(_key(layer), arrays={"per_head": np.random.default_rng(layer).random((3, 65, 65)).astype(
                np.float32), "genes": genes, "entropy": np.array([1.0, 2.0, 3.0])})
            paths[layer] = store.path(_key(layer)) / "arrays.npz"
        out[n_jobs] = analyse_layers(store, paths, [ref], sim.tfs, de, genes, n_jobs=n_jobs)
    for name in ("recovery", "perturbation", "perturbation_heads", "entropy"):
        pd.testing.assert_frame_equal(out[1][name], out[2][name])
    assert len(out[1]["recovery"]) == 2 * (2 + 3) and set(out[1]["perturbation"]["head"]) == {"mean", "max"}
    s = EdgeScores("noise", rng.random((65, 65)), genes, "attention")
    a = nulls([s], [ref], sim.tfs, InterpretConfig(n_degree_null=10, n_label_null=10))
    assert list(a["null"]) == ["degree-preserving (curveball)", "label shuffle"] and (a["n_null"] == 10).all()
