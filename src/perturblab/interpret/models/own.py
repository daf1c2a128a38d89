"""perturblab's own small gene-token transformer, trainable on CPU by masked expression modelling.

Architecture (scGPT-like, pre-norm): token = gene embedding + value embedding of the cell's
log1p-normalised expression, ``<cls>`` first; ``n_layers`` :class:`~.layers.EncoderLayer` s; a linear
decoder predicts each token's expression. Masked tokens get a learned ``<mask>`` value embedding.
Training: :func:`perturblab.interpret.training.train_masked_expression`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...exceptions import InputError
from .._types import Genes
from ..tokenizers import (
    TokenBatch,
    gene_positions,
    iter_cell_chunks,
    iter_token_batches,
)
from .base import GeneTokenModel
from .layers import EncoderLayer

__all__ = ["OwnGeneTransformer", "OwnNetwork"]

PAD_ID, CLS_ID, N_SPECIAL = 0, 1, 2


class OwnNetwork(nn.Module):
    """The PyTorch module of :class:`OwnGeneTransformer` (gene ids: ``2 + position in the gene list``)."""

    def __init__(self, n_genes: int, d_model: int, n_heads: int, n_layers: int, d_ff: int, dropout: float):
        super().__init__()
        self.gene_embedding = nn.Embedding(n_genes + N_SPECIAL, d_model, padding_idx=PAD_ID)
        self.value_encoder = nn.Sequential(nn.Linear(1, d_model), nn.ReLU(), nn.Linear(d_model, d_model))
        self.mask_embedding = nn.Parameter(torch.zeros(d_model))
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first=True) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, 1)

    def embed(self, input_ids, values, value_mask=None):
        """``(B, S, d)`` embeddings; tokens where ``value_mask`` is True get the ``<mask>`` value embedding."""
        val = self.value_encoder(values.unsqueeze(-1))
        if value_mask is not None:
            val = torch.where(value_mask.unsqueeze(-1), self.mask_embedding.expand_as(val), val)
        return self.gene_embedding(input_ids) + val

    def decode(self, hidden):
        return self.decoder(self.norm(hidden)).squeeze(-1)


class OwnGeneTransformer(GeneTokenModel):
    """perturblab's own gene-token transformer behind the :class:`GeneTokenModel` interface.

    Parameters
    ----------
    genes
        The model's gene vocabulary (``adata.var_names`` it is trained on).
    d_model, n_heads, n_layers, d_ff, dropout
        Architecture (defaults: 64 wide, 4 heads, 2 layers, feed-forward 128, dropout 0.1).
    target_sum
        Counts are normalised to this total per cell before ``log1p``.
    max_length
        Keep at most this many gene tokens per cell (the most expressed; ties by gene position); None: all.
    include_zero_genes
        Also make tokens of genes with zero counts (default: only expressed genes, as scGPT).
    random_state
        Seed of the weight initialisation.
    device
        ``None``/"auto" (CUDA when present), "cpu" or "cuda".

    Notes
    -----
    Input representation: ``adata.X`` holds raw counts (cells x genes); the library size is the cell's
    total over all genes of the AnnData.
    """

    default_pooling = "cls"

    def __init__(
        self,
        genes: Genes,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.1,
        target_sum: float = 1e4,
        max_length: int | None = None,
        include_zero_genes: bool = False,
        random_state: int = 0,
        device=None,
    ):
        self.genes = np.asarray(genes, dtype=str)
        if len(set(self.genes)) != len(self.genes) or self.genes.size == 0:
            raise InputError("genes must be a non-empty list of unique gene names")
        self.config = {
            "d_model": d_model,
            "n_heads": n_heads,
            "n_layers": n_layers,
            "d_ff": d_ff,
            "dropout": dropout,
            "target_sum": float(target_sum),
            "max_length": max_length,
            "include_zero_genes": include_zero_genes,
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            network = OwnNetwork(len(self.genes), d_model, n_heads, n_layers, d_ff, dropout)
        self.n_layers, self.n_heads, self.d_model = n_layers, n_heads, d_model
        self._gene_id = {g: i + N_SPECIAL for i, g in enumerate(self.genes)}
        super().__init__(network, device)

    # ---- tokens -------------------------------------------------------------------------------
    def _in_vocabulary(self, adata, genes: np.ndarray) -> np.ndarray:
        return np.array([g in self._gene_id for g in genes], dtype=bool)

    def tokenize(self, adata, genes: Genes, batch_size: int = 32) -> Iterator[TokenBatch]:
        """Tokens ``<cls>, gene...`` with log1p-normalised values (``<cls>`` value 0).

        ``adata.X``: raw counts, cells x genes. Genes are ordered by position in ``genes``; genes the model
        was not trained on are left out (logged once, :meth:`match_genes`).
        """
        names = np.asarray(genes, dtype=str)
        self.match_genes(adata, names)
        where = np.flatnonzero(self._in_vocabulary(adata, names))  # position in `genes` of each tokenised gene
        pos = gene_positions(adata, names)[where]
        ids = np.array([self._gene_id[g] for g in names[where]], dtype=np.int64)
        cfg = self.config

        def make_cell(x, library):
            values = np.log1p(x / max(library, 1.0) * cfg["target_sum"])
            keep = np.arange(len(x)) if cfg["include_zero_genes"] else np.flatnonzero(x > 0)
            if cfg["max_length"] is not None and keep.size > cfg["max_length"]:
                keep = np.sort(keep[np.argsort(-values[keep], kind="stable")[: cfg["max_length"]]])
            return (
                np.concatenate([[CLS_ID], ids[keep]]),
                np.concatenate([[-1], where[keep]]),
                np.concatenate([[0.0], values[keep]]).astype(np.float32),
            )

        return iter_token_batches(iter_cell_chunks(adata, pos, batch_size), make_cell, PAD_ID)

    # ---- network pieces -----------------------------------------------------------------------
    def _embed(self, batch, value_mask=None):
        return self.network.embed(batch.input_ids, batch.values, value_mask)

    def _layer(self, layer, hidden, batch):
        return self.network.layers[layer](hidden, batch.attention_mask)

    def _output(self, hidden, batch):
        return self.network.decode(hidden)

    def attention_module(self, layer):
        return self.network.layers[layer].self_attn

    def value_states(self, layer, x):
        return self.network.layers[layer].self_attn.values(x)

    def mlp_output_module(self, layer):
        return self.network.layers[layer].linear2

    # ---- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save genes, configuration and weights to one file (``torch.save``; written atomically)."""
        from ...io import save_torch

        return save_torch(path, self.checkpoint())

    def checkpoint(self) -> dict:
        """Genes, configuration and weights as one dict of plain values and CPU tensors (see :meth:`save`)."""
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        return {"genes": self.genes.tolist(), "config": self.config, "state_dict": state}

    @classmethod
    def load(cls, path: str | Path, device=None) -> OwnGeneTransformer:
        """Load a model saved by :meth:`save` (``torch.load(weights_only=True)``)."""
        from ...io import load_torch

        return cls.from_checkpoint(load_torch(Path(path), map_location="cpu"), device=device)

    @classmethod
    def from_checkpoint(cls, payload: dict, device=None) -> OwnGeneTransformer:
        """Rebuild a model from :meth:`checkpoint`'s dict."""
        model = cls(payload["genes"], device=device, **payload["config"])
        model.network.load_state_dict(payload["state_dict"])
        model.network.to(model.device).eval()
        return model
