"""Helpers (no tests): a gene-token model whose answer is known, for in-silico perturbation and embedding tests.

:class:`PlantedMixModel` tokenises like perturblab's own model (``<cls>`` then the expressed genes with their
log1p values) but replaces the transformer with one planted linear layer: gene ``i``'s token adds
``W[i, j] * h_i`` to gene ``j``'s hidden state. Deleting gene ``i`` therefore changes exactly the hidden states
of its planted targets ``{j : W[i, j] != 0}``, and the output (the sum of a token's hidden state, a stand-in for
predicted expression) moves by ``-W[i, j] * sum(h_i)``.
"""

from __future__ import annotations

import numpy as np
import torch

from perturblab.interpret.models import OwnGeneTransformer


class PlantedMixModel(OwnGeneTransformer):
    def __init__(self, genes, W: np.ndarray, d: int = 8, seed: int = 0):
        super().__init__(genes, d_model=d, n_heads=1, n_layers=1, d_ff=4, dropout=0.0, device="cpu")
        rng = np.random.default_rng(seed)
        n = len(genes) + 2
        self.E = torch.tensor(np.abs(rng.normal(1.0, 0.3, (n, d))), dtype=torch.float32)  # positive embeddings
        Wv = np.zeros((n, n))
        Wv[2:, 2:] = W  # token ids are 2 + gene position
        self.Wv = torch.tensor(Wv, dtype=torch.float32)

    def _embed(self, batch, value_mask=None):
        return self.E[batch.input_ids] * batch.values.unsqueeze(-1)

    def _layer(self, layer, hidden, batch):
        ids = batch.input_ids
        Wb = self.Wv[ids[:, :, None], ids[:, None, :]] * batch.attention_mask[:, :, None]  # (B, S_src, S_tgt)
        return hidden + torch.einsum("bst,bsd->btd", Wb, hidden)

    def _output(self, hidden, batch):
        return hidden.sum(-1)
