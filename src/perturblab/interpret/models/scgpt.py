"""scGPT adapter: the scGPT encoder re-implemented so that it returns attention weights.

Source: Cui et al. 2024 (Nature Methods), bowang-lab/scGPT ``scgpt/model/model.py`` (``TransformerModel``:
``encoder`` = GeneEncoder (embedding + enc_norm), ``value_encoder`` = ContinuousValueEncoder (linear1,
linear2, norm; binned values fed as numbers, the pre-trained models' ``input_emb_style="continuous"``) or
CategoryValueEncoder (embedding + enc_norm), optional ``bn`` (``domain_spec_batchnorm="batchnorm"``),
``transformer_encoder.layers.N`` (PyTorch TransformerEncoderLayer, post-norm, ReLU), ``decoder`` = ExprDecoder
(``fc.0/2/4``, plus ``zero_logit.0/2/4`` with ``explicit_zero_prob``)). The stock PyTorch layers return no
attention weights; :class:`~.layers.EncoderLayer` keeps the same parameter names and returns them.

Checkpoints load in every layout scGPT writes: fine-tuned with the public ``TransformerModel`` and PyTorch
attention (``self_attn.in_proj_weight``, ``cls_decoder``, no ``flag_encoder``), pre-trained with flash attention
(``self_attn.Wqkv.*`` or, flash-attn 2, ``self_attn._impl.Wqkv.*`` / ``self_attn._impl.out_proj.*``, renamed as
scGPT's own ``load_pretrained`` does), with ``explicit_zero_prob`` (``decoder.zero_logit.*``), with the
generation model's ``flag_encoder``. Task heads the encoder does not use are ignored with a warning
(:data:`SCGPT_UNUSED_HEADS`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...exceptions import InputError, MissingKeyError, PerturblabWarning
from ...io import load_torch
from .._types import Genes
from ..tokenizers import (
    TokenBatch,
    bin_values,
    gene_positions,
    iter_cell_chunks,
    iter_token_batches,
)
from .base import GeneTokenModel
from .layers import EncoderLayer

__all__ = ["SCGPT_UNUSED_HEADS", "ScGPTModel", "ScGPTNetwork", "load_scgpt_state_dict"]

# Task heads of scGPT checkpoints that the encoder and its expression decoder do not use: masked value
# prediction for cell embeddings, cell-type classifier, batch discriminator, the generation model's flag encoder.
SCGPT_UNUSED_HEADS = ("mvc_decoder.", "cls_decoder.", "grad_reverse_discriminator.", "flag_encoder.")

# flash-attention parameter names -> nn.MultiheadAttention names (scGPT's load_pretrained rename rules)
_RENAMES = (
    ("self_attn._impl.Wqkv.weight", "self_attn.in_proj_weight"),
    ("self_attn._impl.Wqkv.bias", "self_attn.in_proj_bias"),
    ("self_attn._impl.out_proj.", "self_attn.out_proj."),
    ("self_attn.Wqkv.weight", "self_attn.in_proj_weight"),
    ("self_attn.Wqkv.bias", "self_attn.in_proj_bias"),
)


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


def _expr_mlp(d_model: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_model, d_model), nn.LeakyReLU(), nn.Linear(d_model, d_model), nn.LeakyReLU(), nn.Linear(d_model, 1)
    )


class ScGPTNetwork(nn.Module):
    """scGPT ``TransformerModel`` (encoder, value encoder, optional batch norm, transformer, expression decoder).

    Parameters
    ----------
    ntoken, d_model, nhead, d_hid, nlayers, dropout
        Vocabulary size, width, heads, feed-forward width, layers, dropout (``args.json``: embsize, nheads,
        d_hid, nlayers, dropout).
    padding_idx, pad_value
        Id of ``<pad>`` and the value of padded positions.
    input_emb_style
        ``"continuous"`` (pre-trained models) or ``"category"``.
    n_input_bins
        Value embeddings of the category style.
    explicit_zero_prob
        The decoder also has ``zero_logit`` (the probability that a value is non-zero).
    batch_norm
        ``domain_spec_batchnorm="batchnorm"``: ``bn`` (BatchNorm1d over ``d_model``) after the embeddings.
    """

    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, dropout=0.0, padding_idx=None,
                 pad_value=-2, input_emb_style="continuous", n_input_bins=51, explicit_zero_prob=False,
                 batch_norm=False):
        super().__init__()
        self.encoder = _Encoder(ntoken, d_model, padding_idx)
        if input_emb_style == "continuous":
            self.value_encoder = _ContinuousValueEncoder(d_model, dropout)
        elif input_emb_style == "category":
            self.value_encoder = _Encoder(n_input_bins, d_model, padding_idx=pad_value)
        else:
            raise InputError(f"input_emb_style must be 'continuous' or 'category', got {input_emb_style!r}; "
                             "scGPT's 'scaling' style is not supported")
        self.bn = nn.BatchNorm1d(d_model, eps=6.1e-5) if batch_norm else None
        self.transformer_encoder = nn.Module()
        self.transformer_encoder.layers = nn.ModuleList(EncoderLayer(d_model, nhead, d_hid, dropout)
                                                        for _ in range(nlayers))
        self.decoder = nn.Module()
        self.decoder.fc = _expr_mlp(d_model)
        self.explicit_zero_prob = bool(explicit_zero_prob)
        if self.explicit_zero_prob:
            self.decoder.zero_logit = _expr_mlp(d_model)
        nn.init.uniform_(self.encoder.embedding.weight, -0.1, 0.1)

    def embed(self, input_ids, values):
        """``(B, S, d)`` input of the first layer: gene + value embeddings, then ``bn`` if present."""
        total = self.encoder(input_ids) + self.value_encoder(values)
        if self.bn is not None:
            total = self.bn(total.permute(0, 2, 1)).permute(0, 2, 1)
        return total


def _rename(key: str) -> str:
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def load_scgpt_state_dict(network: ScGPTNetwork, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Load an scGPT state dict into ``network``; returns the ignored task-head keys.

    Flash-attention names (``self_attn.Wqkv.*``, ``self_attn._impl.Wqkv.*``, ``self_attn._impl.out_proj.*``) are
    renamed to ``nn.MultiheadAttention``'s (``self_attn.in_proj_*``, ``self_attn.out_proj.*``); keys of task
    heads the encoder does not use (:data:`SCGPT_UNUSED_HEADS`) are ignored with a warning.

    Raises
    ------
    InputError
        If the checkpoint was trained with domain-specific batch norm (``dsbn.*``: each cell's embedding is
        normalised with its batch's statistics, which needs batch labels) or with batch labels in the
        expression decoder (``use_batch_labels``).
    MissingKeyError
        If keys are missing or unexpected, listing them (a different architecture or configuration).
    """
    renamed = {_rename(k): v for k, v in state_dict.items()}
    if any(k.startswith("dsbn.") for k in renamed):
        raise InputError(
            "this scGPT checkpoint uses domain-specific batch norm (dsbn.*, domain_spec_batchnorm=True): its "
            "embeddings depend on per-cell batch labels, which perturblab does not pass; use a checkpoint "
            "fine-tuned without domain_spec_batchnorm"
        )
    fc0 = renamed.get("decoder.fc.0.weight")
    if fc0 is not None and fc0.shape[1] != network.encoder.embedding.embedding_dim:
        raise InputError(
            f"this scGPT checkpoint's expression decoder takes {fc0.shape[1]} inputs (use_batch_labels=True: the "
            "batch embedding is appended), which needs batch labels; use a checkpoint fine-tuned without "
            "use_batch_labels"
        )
    ignored = sorted(k for k in renamed if k.startswith(SCGPT_UNUSED_HEADS) or k.startswith("batch_encoder."))
    kept = {k: v for k, v in renamed.items() if k not in set(ignored)}
    expected = set(network.state_dict())
    missing, unexpected = sorted(expected - set(kept)), sorted(set(kept) - expected)
    if missing or unexpected:
        raise MissingKeyError(
            f"scGPT state dict does not match the architecture: missing keys {missing[:20]} "
            f"({len(missing)} in all); unexpected keys {unexpected[:20]} ({len(unexpected)} in all); "
            "check args.json (embsize, nlayers, nheads, d_hid, input_emb_style) against the checkpoint"
        )
    network.load_state_dict(kept)
    if ignored:
        heads = sorted({k.split(".")[0] for k in ignored})
        warnings.warn(
            f"ignored {len(ignored)} keys of unused scGPT task heads ({', '.join(heads)})",
            PerturblabWarning,
            stacklevel=2,
        )
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
    gene_id_key
        ``adata.var`` column holding the gene symbols of ``vocab``; None uses ``adata.var_names``.
    device
        ``None``/"auto", "cpu" or "cuda".

    Notes
    -----
    Input representation of ``tokenize``: raw counts or log1p-normalised values, cells x genes - the bins
    are per-cell quantiles, so both give identical tokens (non-negative values required). Cells are tokenised
    over the genes under study that are in ``vocab`` (scGPT's pipeline keeps the genes in its vocabulary, then
    bins); the others are left out (:meth:`match_genes`). With ``explicit_zero_prob`` the model output
    (``forward(..., output_logits=True).logits``) is the decoder's ``pred``, what scGPT returns without
    sampling.
    """

    default_pooling = "cls"

    def __init__(
        self,
        network: ScGPTNetwork,
        vocab: Mapping[str, int],
        n_bins: int = 51,
        max_length: int = 1200,
        include_zero_genes: bool = False,
        pad_token: str = "<pad>",
        pad_value: int = -2,
        random_state: int = 0,
        gene_id_key: str | None = None,
        device=None,
    ):
        self.vocab = {str(k): int(v) for k, v in vocab.items()}
        for tok in (pad_token, "<cls>"):
            if tok not in self.vocab:
                raise InputError(f"vocab has no {tok!r} token; pass scGPT's vocab.json")
        layers = network.transformer_encoder.layers
        self.n_layers, self.n_heads = len(layers), layers[0].self_attn.n_heads
        self.d_model = network.encoder.embedding.embedding_dim
        self.n_bins, self.max_length, self.include_zero_genes = n_bins, max_length, include_zero_genes
        self.pad_token, self.pad_value, self.random_state = pad_token, pad_value, random_state
        self.gene_id_key = self._id_key = gene_id_key
        super().__init__(network, device)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> ScGPTModel:
        """Load an scGPT model directory as shipped: ``args.json``, ``vocab.json`` and ``best_model.pt``.

        The weights are read with ``torch.load(weights_only=True)`` and checked by
        :func:`load_scgpt_state_dict`; ``explicit_zero_prob`` and the ``bn`` batch norm are recognised from
        the weights. Other keyword arguments (``gene_id_key``, ``max_length``, ``include_zero_genes``,
        ``random_state``, ``device``) go to the constructor.

        Raises
        ------
        InputError
            If one of the three files is missing or unreadable, or ``args.json`` asks for a pre-norm model
            (scGPT's non-standard pre-norm is not reproduced) or for what :func:`load_scgpt_state_dict` refuses.
        """
        from .checkpoints import find_scgpt_files

        files = find_scgpt_files(path)
        try:
            args = json.loads(files["args.json"].read_text(encoding="utf-8"))
            vocab = json.loads(files["vocab.json"].read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(
                f"cannot read scGPT's args.json / vocab.json in {path}: {err}; pass an scGPT model folder"
            ) from None
        if args.get("pre_norm", False):
            raise InputError("args.json has pre_norm=True; only scGPT's default post-norm layers are supported")
        missing = [k for k in ("embsize", "nheads", "d_hid", "nlayers") if k not in args]
        if missing:
            raise InputError(
                f"{files['args.json']} lacks {', '.join(missing)}; pass the args.json saved with the model"
            )
        pad_token, pad_value = args.get("pad_token", "<pad>"), args.get("pad_value", -2)
        if pad_token not in vocab:
            raise InputError(f"vocab.json has no {pad_token!r} token; pass the vocab.json saved with the model")
        n_bins = int(args.get("n_bins", 51))
        state = load_torch(files["best_model.pt"], map_location="cpu")
        keys = [_rename(k) for k in state]
        network = ScGPTNetwork(
            ntoken=len(vocab),
            d_model=args["embsize"],
            nhead=args["nheads"],
            d_hid=args["d_hid"],
            nlayers=args["nlayers"],
            padding_idx=vocab[pad_token],
            pad_value=pad_value,
            input_emb_style=args.get("input_emb_style", "continuous"),
            n_input_bins=n_bins + 2,
            explicit_zero_prob=any(k.startswith("decoder.zero_logit.") for k in keys),
            batch_norm=any(k.startswith("bn.") for k in keys),
        )
        load_scgpt_state_dict(network, state)
        kwargs.setdefault("n_bins", n_bins)
        kwargs.setdefault("max_length", int(args.get("max_seq_len", 1200)))
        return cls(network, vocab, pad_token=pad_token, pad_value=pad_value, **kwargs)

    # ---- vocabulary ---------------------------------------------------------------------------
    def _vocab_ids(self, adata, genes: np.ndarray) -> np.ndarray:
        """Vocabulary keys of ``genes`` (their ``gene_id_key`` value, else the names)."""
        if self.gene_id_key is None:
            return genes
        if self.gene_id_key not in adata.var.columns:
            raise MissingKeyError(
                f"gene_id_key {self.gene_id_key!r} is not a column of adata.var; pass the column holding gene symbols"
            )
        return np.asarray(adata.var[self.gene_id_key].astype(str), dtype=str)[gene_positions(adata, genes)]

    def _in_vocabulary(self, adata, genes: np.ndarray) -> np.ndarray:
        return np.array([g in self.vocab for g in self._vocab_ids(adata, genes)], dtype=bool)

    # ---- tokens -------------------------------------------------------------------------------
    def tokenize(self, adata, genes: Genes, batch_size: int = 32) -> Iterator[TokenBatch]:
        """``<cls>`` then gene tokens with binned values (``<cls>`` value 0, padding ``pad_value``).

        Genes without a token are left out (logged once, :meth:`match_genes`); ``gene_index`` is the
        position in ``genes``.
        """
        names = np.asarray(genes, dtype=str)
        self.match_genes(adata, names)
        where = np.flatnonzero(self._in_vocabulary(adata, names))  # position in `genes` of each tokenised gene
        pos = gene_positions(adata, names)[where]
        ids = np.array([self.vocab[g] for g in self._vocab_ids(adata, names)[where]], dtype=np.int64)
        rng = np.random.default_rng(self.random_state)

        def make_cell(x, library):
            keep = np.arange(len(x)) if self.include_zero_genes else np.flatnonzero(x > 0)
            if keep.size > self.max_length - 1:
                keep = np.sort(rng.choice(keep, self.max_length - 1, replace=False))
            bins = bin_values(x, self.n_bins, rng)
            return (
                np.concatenate([[self.vocab["<cls>"]], ids[keep]]),
                np.concatenate([[-1], where[keep]]),
                np.concatenate([[0], bins[keep]]).astype(np.float32),
            )

        return iter_token_batches(
            iter_cell_chunks(adata, pos, batch_size), make_cell, self.vocab[self.pad_token], self.pad_value
        )

    # ---- network pieces -----------------------------------------------------------------------
    def _embed(self, batch):
        return self.network.embed(batch.input_ids, batch.values)

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
