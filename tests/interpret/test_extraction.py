"""Part A: streamed gene x gene attention extraction against a brute-force per-cell computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perturblab.interpret.extraction import cell_embeddings, extract_attention, iter_layer_attention
from perturblab.interpret.models import GeneformerModel, OwnGeneTransformer, ScGPTModel

from .tiny_models import geneformer_dir, scgpt_dir, synthetic_counts


def brute_force(model, adata, genes):
    """Per cell, per token pair: sum attention into gene pairs and count co-occurrences."""
    G, H = len(genes), model.n_heads
    sums = np.zeros((model.n_layers, H, G, G))
    counts = np.zeros((G, G))
    for batch in model.tokenize(adata, genes, batch_size=1):
        with torch.no_grad():
            att = model.forward(batch).attentions
        gi = batch.gene_index[0].numpy()
        for a, ga in enumerate(gi):
            for b, gb in enumerate(gi):
                if ga >= 0 and gb >= 0:
                    counts[ga, gb] += 1
                    for lay in range(model.n_layers):
                        sums[lay, :, ga, gb] += att[lay][0, :, a, b].numpy()
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0), counts


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    adata = synthetic_counts(24, 12)
    genes = list(adata.var_names)
    gdir = geneformer_dir(tmp_path_factory.mktemp("gf"), genes, max_len=8)  # truncation to 6 gene tokens
    sdir, _ = scgpt_dir(tmp_path_factory.mktemp("sg"), genes)
    with pytest.warns(UserWarning):
        scgpt = ScGPTModel.from_pretrained(sdir, device="cpu")
    return adata, {
        "geneformer": GeneformerModel.from_pretrained(gdir, device="cpu"),
        "scgpt": scgpt,
        "own": OwnGeneTransformer(genes, d_model=16, n_heads=2, n_layers=3, d_ff=32, device="cpu"),
    }


@pytest.mark.parametrize("name", ["geneformer", "scgpt", "own"])
def test_extraction_matches_brute_force(models, name):
    adata, all_models = models
    model = all_models[name]
    genes = [f"g{i}" for i in (3, 0, 7, 1, 9, 4, 11, 5, 2, 8)]  # a subset, in an arbitrary order
    ref, counts = brute_force(model, adata, genes)
    streamed = list(iter_layer_attention(model, adata, genes, batch_size=5))
    assert [la.layer for la in streamed] == list(range(model.n_layers))
    for la in streamed:
        assert la.per_head.dtype == np.float32 and la.per_head.shape == (model.n_heads, 10, 10)
        np.testing.assert_allclose(la.per_head, ref[la.layer], atol=1e-6)
        np.testing.assert_array_equal(la.n_cells, counts)
        np.testing.assert_allclose(la.head_mean, ref[la.layer].mean(0), atol=1e-6)
        np.testing.assert_allclose(la.head_max, ref[la.layer].max(0), atol=1e-6)
        assert list(la.genes) == genes
    at_once = extract_attention(model, adata, genes, batch_size=7, layers=[model.n_layers - 1, 0])
    assert sorted(at_once) == [0, model.n_layers - 1]
    np.testing.assert_allclose(at_once[0].per_head, streamed[0].per_head, atol=1e-6)


def test_truncation_gives_partial_cooccurrence(models):
    adata, all_models = models
    la = next(iter_layer_attention(all_models["geneformer"], adata, list(adata.var_names), layers=[1]))
    # at most 6 gene tokens per cell: the diagonal counts cells where a gene is among the top 6
    assert la.n_cells.diagonal().sum() <= 6 * adata.n_obs
    assert (la.n_cells <= la.n_cells.diagonal()[:, None]).all()


def test_extraction_errors(models):
    adata, all_models = models
    with pytest.raises(ValueError, match="layers"):
        next(iter_layer_attention(all_models["own"], adata, ["g0", "g1"], layers=[3]))
    with pytest.raises(ValueError, match="not in adata.var_names"):
        next(iter_layer_attention(all_models["own"], adata, ["g0", "XYZ"]))


def test_real_data_counts_and_embeddings(papalexi):
    ctrl = papalexi[papalexi.obs["perturbation"] == "control"][:60].copy()
    genes = list(ctrl.var_names[:40])
    model = OwnGeneTransformer(ctrl.var_names, d_model=16, n_heads=2, n_layers=2, d_ff=32, device="cpu")
    la = next(iter_layer_attention(model, ctrl, genes, batch_size=16, layers=[1]))
    expressed = np.asarray((ctrl[:, genes].X > 0).sum(0)).ravel()
    np.testing.assert_array_equal(la.n_cells.diagonal(), expressed)
    both = (ctrl[:, genes].X > 0).astype(np.int64)
    np.testing.assert_array_equal(la.n_cells, np.asarray((both.T @ both).todense()))
    assert np.isfinite(la.per_head).all() and (la.per_head[:, la.n_cells == 0] == 0).all()
    emb = cell_embeddings(model, ctrl, genes, pooling="cls")
    mean = cell_embeddings(model, ctrl, genes, pooling="mean")
    assert emb.shape == mean.shape == (60, 16) and not np.allclose(emb, mean)
