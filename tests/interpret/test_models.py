"""Part A: tokenizers on hand-made examples, loading of saved random models, own-model training."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from perturblab.interpret.models import (
    GeneformerModel,
    OwnGeneTransformer,
    ScGPTModel,
    load_scgpt_state_dict,
)
from perturblab.interpret.models.scgpt import ScGPTNetwork
from perturblab.interpret.tokenizers import bin_values, load_gene_dict, rank_value_order
from perturblab.interpret.training import train_masked_expression

from .tiny_models import geneformer_dir, scgpt_dir, synthetic_counts


def test_rank_value_order_hand_made():
    # values 0, 3, 1, 3, 5: rank descending, ties by position, zeros dropped
    assert rank_value_order(np.array([0.0, 3.0, 1.0, 3.0, 5.0])).tolist() == [4, 1, 3, 2]
    assert rank_value_order(np.array([0.0, 3.0, 1.0, 3.0, 5.0]), max_length=2).tolist() == [4, 1]


def test_geneformer_tokenizer_normalises_by_library_and_median(tmp_path):
    adata = synthetic_counts(2, 4)
    adata.X = np.array([[2, 0, 4, 4], [1, 1, 1, 7]], dtype=np.float32)
    geneformer_dir(tmp_path, list(adata.var_names))
    model = GeneformerModel.from_pretrained(tmp_path, device="cpu")  # medians 1.0, 1.1, 1.2, 1.3
    batch = next(model.tokenize(adata, ["g0", "g1", "g2", "g3"], batch_size=2))
    # cell 0: 2/1.0=2, 4/1.2=3.33, 4/1.3=3.08 -> g2, g3, g0 ; cell 1: 1, .91, .83, 5.38 -> g3, g0, g1, g2
    assert batch.gene_index[0].tolist() == [-1, 2, 3, 0, -1, -1]
    assert batch.gene_index[1].tolist() == [-1, 3, 0, 1, 2, -1]
    tok = model.token_dictionary
    assert batch.input_ids[0].tolist() == [tok["<cls>"], tok["g2"], tok["g3"], tok["g0"], tok["<eos>"], tok["<pad>"]]
    assert batch.attention_mask[0].tolist() == [True] * 5 + [False]
    # the whole transcriptome is tokenised: genes outside the genes under study are context tokens
    sub = next(model.tokenize(adata, ["g0", "g1"], batch_size=2))
    assert sub.input_ids[1].tolist() == batch.input_ids[1].tolist()
    assert sub.gene_index[1].tolist() == [-1, -1, 0, 1, -1, -1]  # <cls>, g3, g0, g1, g2, <eos>
    assert sub.gene_token_mask[1].tolist() == [False, True, True, True, True, False]
    with pytest.raises(ValueError, match="not in adata.var_names"):
        next(model.tokenize(adata, ["g0", "nope"]))


def test_scgpt_binning_hand_made():
    # non-zero 1..5 with n_bins=5: edges = quantiles(0, 1/3, 2/3, 1) = 1, 2.33, 3.67, 5
    assert bin_values(np.array([0, 1, 2, 3, 4, 5.0]), n_bins=5).tolist() == [0, 1, 1, 2, 3, 4]
    counts = np.array([0, 3, 1, 8, 2, 0, 40, 5.0])
    log1p = np.log1p(counts / counts.sum() * 1e4)
    assert bin_values(counts).tolist() == bin_values(log1p).tolist()  # per-cell quantiles: same bins
    ties = bin_values(np.array([1, 1, 1, 1, 5.0]), n_bins=5, rng=np.random.default_rng(3))
    assert set(ties[:4]) <= {1, 2, 3} and ties[4] == 4
    assert bin_values(np.zeros(3)).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="non-negative"):
        bin_values(np.array([-1.0, 2.0]))


def test_load_gene_dict_formats_and_safety(tmp_path):
    (tmp_path / "d.json").write_text('{"A": 1, "B": 2}')
    (tmp_path / "d.tsv").write_text("A\t1\nB\t0.5\n")
    with open(tmp_path / "d.pkl", "wb") as fh:
        pickle.dump({"A": np.float32(0.5), "B": 3}, fh)
    assert load_gene_dict(tmp_path / "d.json") == {"A": 1, "B": 2}
    assert load_gene_dict(tmp_path / "d.tsv") == {"A": 1, "B": 0.5}
    out = load_gene_dict(tmp_path / "d.pkl")
    assert out == {"A": 0.5, "B": 3} and type(out["A"]) is float

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"A": Evil()}, fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_gene_dict(tmp_path / "evil.pkl")


def test_geneformer_loaded_matches_hf_forward(tmp_path):
    adata = synthetic_counts()
    geneformer_dir(tmp_path, list(adata.var_names))
    model = GeneformerModel.from_pretrained(tmp_path, device="cpu")
    assert (model.n_layers, model.n_heads, model.d_model) == (2, 4, 32)
    batch = next(model.tokenize(adata, list(adata.var_names), batch_size=5))
    with torch.no_grad():
        ours = model.forward(batch, output_logits=True)
        ref = model.network(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask.long(), output_attentions=True
        )
    for lay in range(2):
        assert ours.attentions[lay].shape == (5, 4, batch.input_ids.shape[1], batch.input_ids.shape[1])
        torch.testing.assert_close(ours.attentions[lay], ref.attentions[lay])
    torch.testing.assert_close(ours.logits, ref.logits)
    # a forward can stop early and keep one layer only
    early = model.forward(batch, layers=[0])
    assert list(early.attentions) == [0] and len(early.hidden_states) == 2
    # save and load back through the real loading code
    model.save_pretrained(tmp_path / "again")
    again = GeneformerModel.from_pretrained(tmp_path / "again", device="cpu")
    torch.testing.assert_close(again.forward(batch).attentions[1], ours.attentions[1])


def test_scgpt_loading_names_and_errors(tmp_path):
    adata = synthetic_counts()
    _, net = scgpt_dir(tmp_path, list(adata.var_names))
    with pytest.warns(UserWarning, match="unused scGPT task heads"):
        model = ScGPTModel.from_pretrained(tmp_path, device="cpu")
    for key, value in net.state_dict().items():
        torch.testing.assert_close(model.network.state_dict()[key], value)
    batch = next(model.tokenize(adata, list(adata.var_names), batch_size=6))
    assert (batch.gene_index[:, 0] == -1).all() and (batch.input_ids[:, 0] == 1).all()
    assert batch.values[~batch.attention_mask].eq(-2).all()
    # our layer == PyTorch's stock TransformerEncoderLayer with the same weights
    stock = torch.nn.TransformerEncoderLayer(32, 4, 64, 0.0, batch_first=True).eval()
    prefix = "transformer_encoder.layers.0."
    stock.load_state_dict({k[len(prefix) :]: v for k, v in net.state_dict().items() if k.startswith(prefix)})
    with torch.no_grad():
        emb = model._embed(batch)
        ours = model._layer(0, emb, batch)
        ref = stock(emb, src_key_padding_mask=~batch.attention_mask)
    torch.testing.assert_close(ours[batch.attention_mask], ref[batch.attention_mask], atol=1e-5, rtol=1e-5)
    # a wrong architecture is reported with the offending keys
    small = ScGPTNetwork(len(model.vocab), 32, 4, 64, 1, padding_idx=0)
    with pytest.raises(KeyError, match="unexpected keys.*transformer_encoder.layers.1"):
        load_scgpt_state_dict(small, net.state_dict())


def test_own_model_save_load_roundtrip(tmp_path):
    adata = synthetic_counts()
    model = OwnGeneTransformer(adata.var_names, d_model=16, n_heads=2, n_layers=2, d_ff=32, device="cpu")
    batch = next(model.tokenize(adata, list(adata.var_names)))
    assert torch.allclose(batch.values[0, 1:][batch.attention_mask[0, 1:]].exp() > 1, torch.tensor(True))
    model.save(tmp_path / "own.pt")
    again = OwnGeneTransformer.load(tmp_path / "own.pt", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(
            again.forward(batch, output_logits=True).logits, model.forward(batch, output_logits=True).logits
        )
    with pytest.raises(ValueError, match="none of the 1 genes is in the model's vocabulary"):
        OwnGeneTransformer(["g0"], device="cpu").tokenize(adata, ["g1"])


def test_own_model_training_loss_drops_on_papalexi_controls(papalexi, tmp_path):
    ctrl = papalexi[papalexi.obs["perturbation"] == "control"][:400].copy()
    model = OwnGeneTransformer(ctrl.var_names, d_model=32, n_heads=4, n_layers=2, d_ff=64, device="cpu")
    result = train_masked_expression(model, ctrl, epochs=3, batch_size=64, random_state=1, save_path=tmp_path / "m.pt")
    loss = result.history["train_loss"].to_numpy()
    assert loss[-1] < 0.6 * loss[0]
    assert (tmp_path / "m.pt").exists()
    # seeded: the same seed gives the same weights
    a = OwnGeneTransformer(ctrl.var_names, d_model=16, n_heads=2, n_layers=1, d_ff=32, device="cpu")
    b = OwnGeneTransformer(ctrl.var_names, d_model=16, n_heads=2, n_layers=1, d_ff=32, device="cpu")
    for m in (a, b):
        train_masked_expression(m, ctrl[:100], epochs=1, batch_size=50, random_state=5)
    for (k, va), vb in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(va, vb), k
