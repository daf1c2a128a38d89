"""Part A: ablation hooks change exactly what they target; the ablation experiment's table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perturblab.interpret.ablation import (
    ablation_experiment,
    fidelity,
    uniform_attention,
    zero_heads,
    zero_layer_attention,
    zero_mlp,
)
from perturblab.interpret.models import GeneformerModel, OwnGeneTransformer, ScGPTModel

from .tiny_models import geneformer_dir, scgpt_dir, synthetic_counts


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    adata = synthetic_counts(16, 10)
    genes = list(adata.var_names)
    with pytest.warns(UserWarning):
        scgpt = ScGPTModel.from_pretrained(scgpt_dir(tmp_path_factory.mktemp("s"), genes, n_layers=3)[0], device="cpu")
    models = {
        "geneformer": GeneformerModel.from_pretrained(geneformer_dir(tmp_path_factory.mktemp("g"), genes, n_layers=3),
                                                      device="cpu"),
        "scgpt": scgpt,
        "own": OwnGeneTransformer(genes, d_model=16, n_heads=4, n_layers=3, d_ff=32, device="cpu"),
    }
    return adata, genes, models


def run(model, batch):
    with torch.no_grad():
        return model.forward(batch, output_logits=True)


@pytest.mark.parametrize("name", ["geneformer", "scgpt", "own"])
def test_zero_heads_changes_exactly_the_targeted_heads(setup, name):
    adata, genes, models = setup
    model = models[name]
    batch = next(model.tokenize(adata, genes, batch_size=8))
    intact = run(model, batch)
    seen = {}
    # capture the per-head context that reaches the output projection (Geneformer: attention.output.dense)
    if name == "geneformer":
        out_proj = model.network.bert.encoder.layer[1].attention.output.dense
    else:
        out_proj = model.attention_module(1).out_proj
    handle = out_proj.register_forward_pre_hook(lambda m, a: seen.update(ctx=a[0]))
    with zero_heads(model, [(1, 2)]):
        ablated = run(model, batch)
    handle.remove()
    d_head = model.d_model // model.n_heads
    assert seen["ctx"][..., 2 * d_head : 3 * d_head].abs().max() == 0
    assert seen["ctx"][..., : 2 * d_head].abs().max() > 0
    torch.testing.assert_close(ablated.attentions[0], intact.attentions[0])  # earlier layer untouched
    assert ablated.attentions[1][:, 2].abs().max() == 0  # reported as zero, as head_mask did
    for h in (0, 1, 3):
        torch.testing.assert_close(ablated.attentions[1][:, h], intact.attentions[1][:, h])
    assert not torch.allclose(ablated.hidden_states[2], intact.hidden_states[2])  # the layer's output changes
    assert not torch.allclose(ablated.attentions[2], intact.attentions[2])  # and what follows
    # hooks are removed on exit
    torch.testing.assert_close(run(model, batch).logits, intact.logits)


@pytest.mark.parametrize("name", ["geneformer", "scgpt", "own"])
def test_uniform_attention_and_mlp_zero(setup, name):
    adata, genes, models = setup
    model = models[name]
    batch = next(model.tokenize(adata, genes, batch_size=8))
    intact = run(model, batch)
    with uniform_attention(model, 0):
        uni = run(model, batch)
    n_tokens = batch.attention_mask.sum(1).double()
    w = uni.attentions[0].double()
    expected = batch.attention_mask[:, None, None, :].double() / n_tokens[:, None, None, None]
    torch.testing.assert_close(w, expected.expand_as(w), check_dtype=False)
    with zero_mlp(model, 2):
        mlp = run(model, batch)
    torch.testing.assert_close(mlp.attentions[2], intact.attentions[2])  # attention of the layer unchanged
    assert not torch.allclose(mlp.hidden_states[3], intact.hidden_states[3])
    with zero_layer_attention(model, 1):
        lay = run(model, batch)
    assert lay.attentions[1].abs().max() == 0
    fid = fidelity(model, adata, genes, lambda: zero_mlp(model, 2), batch_size=8)
    assert fid.hidden > 0 and fid.output > 0 and fid.embedding > 0
    # the maximum over layers; an MLP of layer 2 leaves layers 0 and 1 unchanged
    assert fid.hidden == fid.hidden_per_layer.max() and fid.hidden_per_layer[:2].max() < 1e-12
    none = fidelity(model, adata, genes, lambda: zero_heads(model, []), batch_size=8)
    assert max(none.hidden, none.output, none.embedding) < 1e-12


def test_ablation_experiment_table(setup):
    import pandas as pd

    adata, genes, models = setup
    model = models["scgpt"]
    ranking = [(lay, h) for lay in range(3) for h in range(4)][::-1]

    def evaluate(matrix):  # a per-"perturbation" outcome: the mean of each gene's row
        return pd.Series(matrix.mean(axis=1), index=list(genes))

    with pytest.warns(UserWarning, match="skipped"):
        res = ablation_experiment(model, adata, genes, ranking, evaluate, ks=(2, 50), n_random_seeds=2,
                                  layers=[1], batch_size=8)
    table = res.runs
    assert table["intervention"].tolist() == ["none", "top", "bottom", "random", "random", "layer", "uniform", "mlp"]
    top = table.set_index("intervention").loc["top"]
    assert top["heads"] == "L2H3;L2H2" and top["k"] == 2
    assert np.isnan(top["degradation"]) and top["outcome_heads"] == 0  # last layer: no downstream attention
    assert table.loc[table.intervention == "bottom", "heads"].item() == "L0H1;L0H0"
    bottom = table.set_index("intervention").loc["bottom"]
    assert bottom["outcome_layers"] == "1-2" and bottom["outcome_heads"] == 8  # layers 1-2, no ablated head
    assert (table.loc[table.intervention != "none", "fidelity_hidden"] > 0).all()
    assert table.loc[0, "fidelity_hidden"] == 0
    # random heads: outside the top set, entropy-matched to it
    for h in table.loc[table.intervention == "random", "heads"]:
        assert not set(h.split(";")) & {"L2H3", "L2H2"}
    assert set(res.perturbations["intervention"]) == {"bottom", "random", "layer", "uniform", "mlp"}
    assert res.perturbations["perturbation"].nunique() == len(genes)
    # layer-level interventions at layer 1 are scored on layer 2 only
    lay = table.set_index("intervention").loc[["layer", "uniform", "mlp"]]
    assert (lay["outcome_layers"] == "2-2").all() and lay["degradation"].notna().all()
    assert table.loc[table.intervention == "mlp", "expression_error"].item() == "reconstruction"
    again = ablation_experiment(model, adata, genes, ranking, evaluate, ks=(2,), n_random_seeds=2, layers=[1],
                                interventions=("random",), batch_size=8)
    np.testing.assert_array_equal(again.runs["heads"].iloc[1:], table.loc[table.intervention == "random", "heads"])
