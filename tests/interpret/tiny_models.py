"""Helpers (no tests): small synthetic data and randomly initialised models with the real architectures."""

from __future__ import annotations

import anndata as ad
import numpy as np


def synthetic_counts(n_cells: int = 24, n_genes: int = 12, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    adata = ad.AnnData(rng.poisson(1.2, (n_cells, n_genes)).astype(np.float32))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    return adata


def geneformer_dir(path, genes, n_layers=2, n_heads=4, d=32, max_len=16, special=True):
    """Save a random BertForMaskedLM + pickled dictionaries (the real Geneformer file formats)."""
    import pickle

    import torch
    from transformers import BertConfig, BertForMaskedLM

    tok = {"<pad>": 0, "<mask>": 1}
    if special:
        tok.update({"<cls>": 2, "<eos>": 3})
    tok.update({g: i + len(tok) for i, g in enumerate(genes)})
    cfg = BertConfig(vocab_size=len(tok), hidden_size=d, num_hidden_layers=n_layers, num_attention_heads=n_heads,
                     intermediate_size=2 * d, max_position_embeddings=max_len, pad_token_id=0)
    torch.manual_seed(0)
    net = BertForMaskedLM(cfg)
    with torch.no_grad():  # larger weights than BERT's 0.02 init so that attention is far from uniform
        for p in net.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    net.save_pretrained(path)
    with open(path / "token_dictionary.pkl", "wb") as fh:
        pickle.dump(tok, fh)
    with open(path / "gene_median_dictionary.pkl", "wb") as fh:
        pickle.dump({g: np.float64(1.0 + i / 10) for i, g in enumerate(genes)}, fh)
    return path


def scgpt_dir(path, genes, n_layers=2, n_heads=4, d=32, flash_names=True):
    """Save a random scGPT network as scGPT does (args.json, vocab.json, best_model.pt)."""
    import json

    import torch

    from perturblab.interpret.models.scgpt import ScGPTNetwork

    vocab = {"<pad>": 0, "<cls>": 1, "<eoc>": 2, **{g: i + 3 for i, g in enumerate(genes)}}
    torch.manual_seed(0)
    net = ScGPTNetwork(len(vocab), d, n_heads, 2 * d, n_layers, padding_idx=0)
    state = net.state_dict()
    if flash_names:
        state = {k.replace("self_attn.in_proj_", "self_attn.Wqkv."): v for k, v in state.items()}
    state["mvc_decoder.gene2query.weight"] = torch.zeros(d, d)
    torch.save(state, path / "best_model.pt")
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "args.json").write_text(
        json.dumps(dict(embsize=d, nheads=n_heads, d_hid=2 * d, nlayers=n_layers, n_bins=51))
    )
    return path, net
