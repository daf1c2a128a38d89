"""scGPT adapter: the scGPT encoder re-implemented so that it returns attention weights.

Source: Cui et al. 2024 (Nature Methods), bowang-lab/scGPT ``scgpt/model/model.py`` (``TransformerModel``:
``encoder`` = GeneEncoder (embedding + enc_norm), ``value_encoder`` = ContinuousValueEncoder (linear1,
linear2, norm; binned values fed as numbers, the pre-trained models' ``input_emb_style="continuous"``) or
CategoryValueEncoder (embedding + enc_norm), ``transformer_encoder.layers.N`` (PyTorch
TransformerEncoderLayer, post-norm, ReLU), ``decoder`` = ExprDecoder (``fc.0/2/4``), ``flag_encoder``).
The stock PyTorch layers return no attention weights; :class:`~.layers.EncoderLayer` keeps the same
parameter names and returns them. Checkpoints trained with flash attention store
``self_attn.Wqkv.{weight,bias}``; these are mapped to ``in_proj_{weight,bias}`` (as scGPT's own loader does).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..tokenizers import TokenBatch, bin_values, gene_positions, iter_cell_chunks, iter_token_batches
from .base import GeneTokenModel
from .layers import EncoderLayer

__all__ = ["ScGPTModel", "ScGPTNetwork", "load_scgpt_state_dict", "SCGPT_UNUSED_HEADS"]

# Task heads of scGPT checkpoints that the encoder and its expression decoder do not use.
SCGPT_UNUSED_HEADS = ("mvc_decoder.", "cls_decoder.", "grad_reverse_discriminator.", "batch_encoder.", "dsbn.", "bn.")


class _Encoder(nn.Module):
    """scGPT's GeneEncoder / CategoryValueEncoder: embedding then LayerNorm."""

    def __init__(self, n: int, d: int, padding_idx: int | None = None):
        super().__init__()
        self.embedding = nn.Embedding(n, d, padding_idx=padding_idx)
        self.enc_norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x.long()
        x = torch.where(x < 0, x + self.embedding.num_embeddings, x)  # negative pad value, as padding_idx
        return self.enc_norm(self.embedding(x))


class _ContinuousValueEncoder(nn.Module):
    """scGPT's ContinuousValueEncoder: ``norm(linear2(relu(linear1(min(x, max_value)))))``."""

    def __init__(self, d: int, dropout: float = 0.0, max_value: int = 512):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear1 = nn.Linear(1, d)
        self.activation = nn.ReLU()
        self.linear2 = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.max_value = max_value

    def forward(self, x):
        x = torch.clamp(x.unsqueeze(-1), max=self.max_value)
        return self.dropout(self.norm(self.linear2(self.activation(self.linear1(x)))))


class ScGPTNetwork(nn.Module):
    """scGPT ``TransformerModel`` (encoder, value encoder, transformer, expression decoder)."""

    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, dropout=0.0, padding_idx=None,
                 pad_value=-2, input_emb_style="continuous", n_input_bins=51):
        super().__init__()
        self.encoder = _Encoder(ntoken, d_model, padding_idx)
        self.flag_encoder = nn.Embedding(2, d_model)
        if input_emb_style == "continuous":
            self.value_encoder = _ContinuousValueEncoder(d_model, dropout)
        elif input_emb_style == "category":
            self.value_encoder = _Encoder(n_input_bins, d_model, padding_idx=pad_value)
        else:
            raise ValueError(f"input_emb_style must be 'continuous' or 'category', got {input_emb_style!r}")
        self.transformer_encoder = nn.Module()
        self.transformer_encoder.layers = nn.ModuleList(EncoderLayer(d_model, nhead, d_hid, dropout) for _ in range(nlayers))
        self.decoder = nn.Module()
        self.decoder.fc = nn.Sequential(
            nn.Linear(d_model, d_model), nn.LeakyReLU(), nn.Linear(d_model, d_model), nn.LeakyReLU(), nn.Linear(d_model, 1)
        )
        nn.init.uniform_(self.encoder.embedding.weight, -0.1, 0.1)


def load_scgpt_state_dict(network: ScGPTNetwork, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Load an scGPT state dict into ``network``; returns the ignored task-head keys.

    Flash-attention names (``self_attn.Wqkv.*``) are renamed to ``self_attn.in_proj_*``; keys of task
    heads the encoder does not use (:data:`SCGPT_UNUSED_HEADS`) are ignored with a warning.

    Raises
    ------
    KeyError
        If keys are missing or unexpected, listing them (a different architecture or configuration).
    """
    renamed = {}
    for key, value in state_dict.items():
        key = key.replace("self_attn.Wqkv.weight", "self_attn.in_proj_weight").replace(
            "self_attn.Wqkv.bias", "self_attn.in_proj_bias"
        )
        renamed[key] = value
    ignored = sorted(k for k in renamed if k.startswith(SCGPT_UNUSED_HEADS))
    kept = {k: v for k, v in renamed.items() if k not in set(ignored)}
    expected = set(network.state_dict())
    missing, unexpected = sorted(expected - set(kept)), sorted(set(kept) - expected)
    if missing or unexpected:
        raise KeyError(
            f"scGPT state dict does not match the architecture: missing keys {missing[:20]} "
            f"({len(missing)} in all); unexpected keys {unexpected[:20]} ({len(unexpected)} in all); "
            "check args.json (embsize, nlayers, nheads, d_hid, input_emb_style) against the checkpoint"
        )
    network.load_state_dict(kept)
    if ignored:
        warnings.warn(f"ignored {len(ignored)} keys of unused scGPT task heads ({ignored[0]} ...)", UserWarning, stacklevel=2)
    return ignored


class ScGPTModel(GeneTokenModel):
    """scGPT behind the :class:`GeneTokenModel` interface.

    Parameters
    ----------
    network
        A :class:`ScGPTNetwork`.
    vocab
        Gene symbol -> token id; must hold ``pad_token`` and ``"<cls>"``.
    n_bins
        Value bins including the zero bin (scGPT: 51).
    max_length
        Maximum tokens per cell including ``<cls>`` (scGPT fine-tuning: 1,200); cells with more expressed
        genes keep a random subset (seeded by ``random_state``), as scGPT's ``random_mask_value`` sampling.
    include_zero_genes
        Also make tokens of unexpressed genes (value bin 0); default False (scGPT's GRN tutorial).
    pad_token, pad_value
        scGPT's padding token and value (defaults ``"<pad>"``, -2).
    random_state
        Seed of the binning tie-breaks and of the gene subsampling; the same seed gives the same tokens.
    device
        ``None``/"auto", "cpu" or "cuda".

    Notes
    -----
    Input representation of ``tokenize``: raw counts or log1p-normalised values, cells x genes - the bins
    are per-cell quantiles, so both give identical tokens (non-negative values required).
    """

    default_pooling = "cls"

    def __init__(self, network: ScGPTNetwork, vocab: Mapping[str, int], n_bins: int = 51, max_length: int = 1200,
                 include_zero_genes: bool = False, pad_token: str = "<pad>", pad_value: int = -2,
                 random_state: int = 0, device=None):
        self.vocab = {str(k): int(v) for k, v in vocab.items()}
        for tok in (pad_token, "<cls>"):
            if tok not in self.vocab:
                raise ValueError(f"vocab has no {tok!r} token")
        layers = network.transformer_encoder.layers
        self.n_layers, self.n_heads = len(layers), layers[0].self_attn.n_heads
        self.d_model = network.encoder.embedding.embedding_dim
        self.n_bins, self.max_length, self.include_zero_genes = n_bins, max_length, include_zero_genes
        self.pad_token, self.pad_value, self.random_state = pad_token, pad_value, random_state
        super().__init__(network, device)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> ScGPTModel:
        """Load an scGPT model directory: ``args.json``, ``vocab.json`` and ``best_model.pt``.

        The weights are read with ``torch.load(weights_only=True)`` and checked by
        :func:`load_scgpt_state_dict`. Other keyword arguments go to the constructor.

        Raises
        ------
        FileNotFoundError
            If one of the three files is missing.
        ValueError
            If ``args.json`` asks for a pre-norm model (scGPT's non-standard pre-norm is not reproduced).
        """
        path = Path(path)
        for name in ("args.json", "vocab.json", "best_model.pt"):
            if not (path / name).exists():
                raise FileNotFoundError(f"{path / name} is missing (an scGPT model directory holds args.json, vocab.json, best_model.pt)")
        args = json.loads((path / "args.json").read_text())
        vocab = json.loads((path / "vocab.json").read_text())
        if args.get("pre_norm", False):
            raise ValueError("args.json has pre_norm=True; only scGPT's default post-norm layers are supported")
        pad_token, pad_value = args.get("pad_token", "<pad>"), args.get("pad_value", -2)
        n_bins = int(args.get("n_bins", 51))
        network = ScGPTNetwork(
            ntoken=len(vocab), d_model=args["embsize"], nhead=args["nheads"], d_hid=args["d_hid"],
            nlayers=args["nlayers"], padding_idx=vocab[pad_token], pad_value=pad_value,
            input_emb_style=args.get("input_emb_style", "continuous"), n_input_bins=n_bins + 2,
        )
        state = torch.load(path / "best_model.pt", map_location="cpu", weights_only=True)
        load_scgpt_state_dict(network, state)
        kwargs.setdefault("n_bins", n_bins)
        kwargs.setdefault("max_length", int(args.get("max_seq_len", 1200)))
        return cls(network, vocab, pad_token=pad_token, pad_value=pad_value, **kwargs)

    # ---- tokens -------------------------------------------------------------------------------
    def tokenize(self, adata, genes: Sequence[str], batch_size: int = 32) -> Iterator[TokenBatch]:
        """``<cls>`` then gene tokens with binned values (``<cls>`` value 0, padding ``pad_value``)."""
        genes = np.asarray(genes, dtype=str)
        pos = gene_positions(adata, genes)
        missing = [g for g in genes if g not in self.vocab]
        if missing:
            raise ValueError(f"{len(missing)} genes are not in scGPT's vocab (first: {missing[:10]})")
        ids = np.array([self.vocab[g] for g in genes], dtype=np.int64)
        rng = np.random.default_rng(self.random_state)

        def make_cell(x, library):
            keep = np.arange(len(x)) if self.include_zero_genes else np.flatnonzero(x > 0)
            if keep.size > self.max_length - 1:
                keep = np.sort(rng.choice(keep, self.max_length - 1, replace=False))
            bins = bin_values(x, self.n_bins, rng)
            return (
                np.concatenate([[self.vocab["<cls>"]], ids[keep]]),
                np.concatenate([[-1], keep]),
                np.concatenate([[0], bins[keep]]).astype(np.float32),
            )

        return iter_token_batches(iter_cell_chunks(adata, pos, batch_size), make_cell, self.vocab[self.pad_token], self.pad_value)

    # ---- network pieces -----------------------------------------------------------------------
    def _embed(self, batch):
        return self.network.encoder(batch.input_ids) + self.network.value_encoder(batch.values)

    def _layer(self, layer, hidden, batch):
        return self.network.transformer_encoder.layers[layer](hidden, batch.attention_mask)

    def _output(self, hidden, batch):
        return self.network.decoder.fc(hidden).squeeze(-1)

    def attention_module(self, layer):
        return self.network.transformer_encoder.layers[layer].self_attn

    def value_states(self, layer, x):
        return self.attention_module(layer).values(x)

    def mlp_output_module(self, layer):
        return self.network.transformer_encoder.layers[layer].linear2
