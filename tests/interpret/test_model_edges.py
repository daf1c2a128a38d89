"""Edge sources beyond attention (issue 14): value-weighted edges, embedding similarity, TopK SAE, in-silico
perturbation; against brute-force computations and models with a planted answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from perturblab.interpret.embedding_edges import cosine_matrix, embedding_similarity_scores, gene_embeddings
from perturblab.interpret.gene_sets import gene_set_reference
from perturblab.interpret.in_silico import (
    in_silico_perturbation,
    perturb_batch,
    score_in_silico,
    score_in_silico_rows,
)
from perturblab.interpret.models import GeneformerModel, OwnGeneTransformer
from perturblab.interpret.references import reference_recovery
from perturblab.interpret.registry_rows import add_rows
from perturblab.interpret.sae import (
    collect_residuals,
    feature_gene_matrix,
    feature_gene_set_edges,
    feature_gene_set_rows,
    sae_edge_scores,
    sae_gene_set_null,
    train_sae,
)
from perturblab.interpret.stats import Registry
from perturblab.interpret.tokenizers import TokenBatch
from perturblab.interpret.value_edges import iter_value_edges, value_edge_scores

from .mock_models import PlantedMixModel
from .tiny_models import geneformer_dir, synthetic_counts


def _registry_accepts(rows):
    reg = Registry()
    add_rows(reg, rows)
    assert len(reg.table()) == len(rows)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    adata = synthetic_counts(20, 10)
    genes = list(adata.var_names)
    gdir = geneformer_dir(tmp_path_factory.mktemp("gf"), genes, max_len=8)
    return adata, {"own": OwnGeneTransformer(genes, d_model=16, n_heads=2, n_layers=2, d_ff=32, device="cpu"),
                   "geneformer": GeneformerModel.from_pretrained(gdir, device="cpu")}


# --- value-weighted edges ----------------------------------------------------------------------------------


def _brute_value_edges(model, adata, genes, layer):
    """Per cell: the attention module's own context output (cosine per head) and A * ||v|| from its weights."""
    G, H = len(genes), model.n_heads
    ctx_sum, norm_sum, counts = np.zeros((H, G, G)), np.zeros((H, G, G)), np.zeros((G, G))
    got = {}
    mod = model.attention_module(layer)
    handle = mod.register_forward_hook(lambda m, a, o: got.update(x=a[0], ctx=o[0], w=o[1]))
    try:
        for batch in model.tokenize(adata, genes, batch_size=1):
            with torch.no_grad():
                model.forward(batch, output_attentions=False, stop_after=layer)
                v = model.value_states(layer, got["x"])[0].view(-1, H, model.d_model // H)  # (S, H, dh)
            ctx = got["ctx"][0].view(-1, H, model.d_model // H)
            w = got["w"][0]
            gi = batch.gene_index[0].numpy()
            for a, ga in enumerate(gi):
                for b, gb in enumerate(gi):
                    if ga < 0 or gb < 0:
                        continue
                    counts[ga, gb] += 1
                    for h in range(H):
                        ctx_sum[h, ga, gb] += float(torch.nn.functional.cosine_similarity(ctx[a, h], ctx[b, h], dim=0))
                        norm_sum[h, ga, gb] += float(w[h, a, b] * v[b, h].norm())
    finally:
        handle.remove()
    c = np.maximum(counts, 1)
    return ctx_sum / c, norm_sum / c, counts


@pytest.mark.parametrize("name", ["own", "geneformer"])
def test_value_edges_match_brute_force(tiny, name):
    adata, models = tiny
    model = models[name]
    genes = [f"g{i}" for i in (4, 1, 7, 0, 9, 2)]
    items = {(it.layer, it.measure): it for it in iter_value_edges(model, adata, genes, batch_size=6)}
    assert set(items) == {(lay, m) for lay in range(model.n_layers) for m in ("context", "norm")}
    for layer in range(model.n_layers):
        ctx, norm, counts = _brute_value_edges(model, adata, genes, layer)
        np.testing.assert_allclose(items[(layer, "context")].per_head, ctx, atol=1e-5)
        np.testing.assert_allclose(items[(layer, "norm")].per_head, norm, atol=1e-5)
        np.testing.assert_array_equal(items[(layer, "context")].n_cells, counts)
    scores = value_edge_scores(items.values())
    assert {s.name for s in scores} >= {"value-context L0 mean", "value-norm L1 max"}
    assert all(s.kind == "value" for s in scores)
    with pytest.raises(ValueError, match="measures"):
        next(iter_value_edges(model, adata, genes, measures=("query",)))


# --- embedding similarity ----------------------------------------------------------------------------------


def test_gene_embeddings_are_token_means(tiny):
    adata, models = tiny
    model = models["own"]
    genes = [f"g{i}" for i in range(10)]
    means, counts = gene_embeddings(model, adata, genes, layers=(0, -1), batch_size=7)
    assert set(means) == {0, model.n_layers}
    sums = {0: np.zeros((10, model.d_model)), 2: np.zeros((10, model.d_model))}
    n = np.zeros(10)
    for batch in model.tokenize(adata, genes, batch_size=1):
        with torch.no_grad():
            hs = model.forward(batch, output_attentions=False).hidden_states
        for t, g in enumerate(batch.gene_index[0].tolist()):
            if g >= 0:
                n[g] += 1
                for i in sums:
                    sums[i][g] += hs[i][0, t].numpy()
    np.testing.assert_array_equal(counts, n)
    for i in sums:
        np.testing.assert_allclose(means[i], sums[i] / np.maximum(n, 1)[:, None], atol=1e-5)
    scores = embedding_similarity_scores(model, adata, genes)
    assert [s.name for s in scores] == ["token-embedding similarity", "hidden-state similarity L1"]
    for s in scores:
        np.testing.assert_allclose(s.matrix, s.matrix.T, atol=1e-12)
        np.testing.assert_allclose(np.diag(s.matrix), 1.0)
    np.testing.assert_allclose(cosine_matrix(np.array([[1.0, 0], [2.0, 0], [0, 3.0], [0, 0]])),
                               [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def test_hidden_state_similarity_recovers_planted_modules():
    """Genes mixed into the same planted hub share its embedding after the layer: similarity finds them."""
    rng = np.random.default_rng(0)
    G = 12
    genes = [f"g{i}" for i in range(G)]
    W = np.zeros((G, G))
    W[0, 1:6] = 3.0  # module A: hub g0 -> g1..g5
    W[6, 7:12] = 3.0  # module B: hub g6 -> g7..g11
    model = PlantedMixModel(genes, W, d=8, seed=1)
    adata = synthetic_counts(30, G, seed=2)
    adata.X = rng.poisson(6, (30, G)).astype(np.float32) + 1
    sim = embedding_similarity_scores(model, adata, genes, layers=(-1,))[0]
    same = np.zeros((G, G), bool)
    same[np.ix_(range(1, 6), range(1, 6))] = same[np.ix_(range(7, 12), range(7, 12))] = True
    off = ~np.eye(G, dtype=bool)
    assert sim.matrix[same & off].min() > sim.matrix[~same & off & ~np.isin(np.arange(G), [0, 6])[:, None]
                                                     & ~np.isin(np.arange(G), [0, 6])[None, :]].max()


# --- in-silico perturbation --------------------------------------------------------------------------------


def _batch(ids, values=None, gene_token=None):
    ids = torch.tensor(ids)
    mask = ids != 0
    gi = torch.where(ids >= 10, ids - 10, torch.full_like(ids, -1))
    v = None if values is None else torch.tensor(values, dtype=torch.float32)
    return TokenBatch(ids, mask, gi, v, np.arange(ids.shape[0]), gene_token)


def test_perturb_batch_delete_and_overexpress():
    b = _batch([[2, 10, 11, 12, 3], [2, 12, 13, 3, 0]])  # <cls>=2, <eos>=3, genes 0..3 = ids 10..13, pad 0
    d, has = perturb_batch(b, gene_pos=1, mode="delete")
    assert has.tolist() == [True, False]
    assert d.input_ids.tolist() == [[2, 10, 12, 3, 0], [2, 12, 13, 3, 0]]
    assert d.attention_mask.tolist() == [[True, True, True, True, False], [True, True, True, True, False]]
    assert d.gene_index.tolist() == [[-1, 0, 2, -1, -1], [-1, 2, 3, -1, -1]]
    o, has = perturb_batch(b, gene_pos=2, mode="overexpress")  # rank model: moves to the first gene position
    assert has.tolist() == [True, True]
    assert o.input_ids.tolist() == [[2, 12, 10, 11, 3], [2, 12, 13, 3, 0]]
    assert o.gene_index.tolist() == [[-1, 2, 0, 1, -1], [-1, 2, 3, -1, -1]]
    bv = _batch([[2, 10, 11, 12]], values=[[0.0, 0.5, 2.0, 1.0]])
    ov, _ = perturb_batch(bv, gene_pos=0, mode="overexpress")  # value model: the cell's largest value
    assert ov.values.tolist() == [[0.0, 2.0, 2.0, 1.0]] and ov.input_ids.tolist() == bv.input_ids.tolist()
    with pytest.raises(ValueError, match="mode"):
        perturb_batch(b, 0, "silence")


def test_in_silico_deletion_finds_planted_targets():
    rng = np.random.default_rng(0)
    G = 10
    genes = [f"g{i}" for i in range(G)]
    W = np.zeros((G, G))
    W[0, [3, 5]] = 0.5
    W[1, 7] = 0.8
    model = PlantedMixModel(genes, W)
    adata = synthetic_counts(24, G, seed=1)
    adata.X = rng.poisson(5, (24, G)).astype(np.float32) + 1  # every gene expressed in every cell
    shifts = in_silico_perturbation(model, adata, genes, perturb=["g0", "g1"], batch_size=7)
    s0 = shifts[shifts["perturbation"] == "g0"].set_index("gene")
    assert "g0" not in s0.index and s0["n_cells"].eq(24).all() and (s0["n_cells_perturbed"] == 24).all()
    assert (s0.loc[["g3", "g5"], "embedding_shift"] > 1e-4).all()
    assert s0.drop(["g3", "g5"])["embedding_shift"].abs().max() < 1e-6  # nothing else moves
    assert (s0.loc[["g3", "g5"], "expression_shift"] < 0).all()  # a positive input removed
    # measured knock-outs with exactly the planted targets: the in-silico screen is perfect, baselines are not
    de = pd.concat([pd.DataFrame({"perturbation": p, "gene": [g for g in genes if g != p],
                                  "is_target": [g in t for g in genes if g != p],
                                  "log2fc": [-1.0 if g in t else rng.normal(0, 0.05) for g in genes if g != p],
                                  "p": [1e-6 if g in t else 0.5 for g in genes if g != p]})
                    for p, t in (("g0", {"g3", "g5"}), ("g1", {"g7"}))])
    feats = pd.DataFrame({"mean": rng.random(G), "variance": rng.random(G), "detection": rng.random(G)}, index=genes)
    sc = score_in_silico(shifts, de, features=feats).set_index(["score", "perturbation"])
    for p in ("g0", "g1"):
        assert sc.loc[("in-silico embedding shift", p), "auroc"] == 1.0
        assert sc.loc[("in-silico embedding shift", p), "de_overlap"] == 1.0
        assert sc.loc[("in-silico |expression shift|", p), "direction_match"] == 1.0
    assert sc.loc[("in-silico |expression shift|", "g0"), "pearson_delta"] > 0.9
    assert sc.loc[("baseline mean", "g0"), "kind"] == "baseline"
    rows = score_in_silico_rows(sc.reset_index(), n_boot=50)
    assert len(rows) == 2 * (1 + 3)
    _registry_accepts(rows)
    over = in_silico_perturbation(model, adata, genes, perturb=["g1"], mode="overexpress")
    o = over.set_index("gene")
    assert o.loc["g7", "embedding_shift"] > 1e-5 and o.drop("g7")["embedding_shift"].abs().max() < 1e-6
    with pytest.raises(ValueError, match="not among the genes"):
        in_silico_perturbation(model, adata, genes, perturb=["zz"])


def test_in_silico_runs_on_a_rank_value_model(tiny):
    adata, models = tiny
    genes = [f"g{i}" for i in range(10)]
    shifts = in_silico_perturbation(models["geneformer"], adata, genes, perturb=["g1", "g2"], min_cells=1)
    assert set(shifts["perturbation"]) <= {"g1", "g2"} and len(shifts)
    assert shifts["expression_shift"].isna().all()  # MLM logits are not an expression read-out
    assert (shifts["embedding_shift"] >= -1e-9).all() and (shifts["cell_shift"] > 0).all()


# --- sparse autoencoder ------------------------------------------------------------------------------------


def test_topk_sae_recovers_planted_gene_set_features():
    rng = np.random.default_rng(0)
    d, n_sets, per_set = 16, 6, 5
    atoms = np.linalg.qr(rng.normal(size=(d, d)))[0][:n_sets]  # orthonormal directions
    G = n_sets * per_set
    genes = np.array([f"g{i}" for i in range(G)])
    set_of = np.repeat(np.arange(n_sets), per_set)
    gi = rng.integers(G, size=4000)
    X = (rng.uniform(1, 2, gi.size)[:, None] * atoms[set_of[gi]] + rng.normal(0, 0.05, (gi.size, d))).astype(np.float32)
    res = train_sae(X, n_features=12, k=1, epochs=25, lr=5e-3, batch_size=256, random_state=0)
    assert res.history["fvu"].iloc[-1] < 0.2 < res.history["fvu"].iloc[0]
    FG = feature_gene_matrix(res.sae, X, gi, G)
    assert FG.shape == (G, 12)
    planted = pd.DataFrame({"gene_set": [f"SET{s}" for s in set_of], "gene": genes})
    decoys = pd.DataFrame({"gene_set": np.repeat([f"DECOY{i}" for i in range(4)], 5),
                           "gene": rng.choice(genes, 20, replace=False)})
    edges = feature_gene_set_edges(FG, genes, pd.concat([planted, decoys]), top_genes=5, min_size=3)
    sig = edges[edges["significant"]]
    assert set(sig["gene_set"]) == {f"SET{s}" for s in range(n_sets)}  # every planted set, no decoy
    null = sae_gene_set_null(FG, genes, pd.concat([planted, decoys]), n_perm=10, top_genes=5, min_size=3)
    rows = feature_gene_set_rows(edges, null)
    assert rows[0]["p"] <= 1 / 11 + 1e-12
    _registry_accepts(rows)
    # gene x gene similarity of feature profiles recovers set co-membership
    sim = sae_edge_scores(FG, genes, layer=3)
    rec = reference_recovery([sim], [gene_set_reference(planted, genes, "sets", min_size=3)])
    assert rec["auroc"].iloc[0] > 0.95 and sim.name == "SAE feature similarity L3"


def test_collect_residuals_sample(tiny):
    adata, models = tiny
    model = models["own"]
    genes = [f"g{i}" for i in range(10)]
    X, gi = collect_residuals(model, adata, genes, layer=0, max_tokens=50, batch_size=6, random_state=1)
    assert X.shape == (50, model.d_model) and gi.shape == (50,) and gi.min() >= 0 and gi.max() < 10
    X2, gi2 = collect_residuals(model, adata, genes, layer=0, max_tokens=50, batch_size=6, random_state=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(gi, gi2)
    full, _ = collect_residuals(model, adata, genes, layer=0, max_tokens=10_000, batch_size=6)
    assert full.shape[0] == int((adata.X > 0).sum())  # every expressed gene is a token
