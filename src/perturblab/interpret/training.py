"""Masked expression modelling for perturblab's own gene-token transformer.

Like scGPT's masked value prediction (Cui et al. 2024): a random ``mask_fraction`` of each cell's gene
tokens get a ``<mask>`` value embedding and the model predicts their log1p-normalised expression
(mean squared error over masked tokens). Seeded, with a progress bar; the model is saved with
:meth:`~perturblab.interpret.models.OwnGeneTransformer.save`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._types import Genes
from .models.own import OwnGeneTransformer

__all__ = ["TrainingResult", "train_masked_expression"]


@dataclass
class TrainingResult:
    """Outcome of :func:`train_masked_expression`.

    Attributes
    ----------
    model
        The trained model (evaluation mode).
    history
        One row per epoch: ``epoch``, ``train_loss`` (mean masked MSE over batches), ``n_cells``.
    """

    model: OwnGeneTransformer
    history: pd.DataFrame


def _mask_tokens(batch, fraction: float, generator):
    import torch

    gene_tokens = batch.gene_index >= 0
    draw = torch.rand(gene_tokens.shape, generator=generator, device="cpu").to(gene_tokens.device)
    mask = gene_tokens & (draw < fraction)
    # every cell with gene tokens gets at least one masked token
    none = gene_tokens.any(1) & ~mask.any(1)
    if none.any():
        first = gene_tokens.float().argmax(1)
        mask[none, first[none]] = True
    return mask


def train_masked_expression(
    model: OwnGeneTransformer,
    adata,
    genes: Genes | None = None,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    mask_fraction: float = 0.15,
    random_state: int = 0,
    progress: bool = True,
    save_path: str | Path | None = None,
) -> TrainingResult:
    """Train ``model`` by masked expression modelling on ``adata``.

    Parameters
    ----------
    model
        An :class:`~perturblab.interpret.models.OwnGeneTransformer` (trained in place).
    adata
        Cells x genes raw counts (e.g. Papalexi 2021 non-targeting control cells, 299 genes).
    genes
        Genes to tokenize (default: the model's vocabulary).
    epochs, batch_size, lr, weight_decay
        AdamW optimisation settings.
    mask_fraction
        Fraction of gene tokens masked per cell (at least one per cell).
    random_state
        Seeds the cell order, the masks and dropout; the same seed gives identical weights on CPU.
    progress
        Report progress (:mod:`perturblab.runs.progress`; shown by the command line).
    save_path
        If given, the trained model is saved there (atomically).

    Returns
    -------
    TrainingResult

    Raises
    ------
    InputError
        If ``epochs < 1`` or ``mask_fraction`` is not in (0, 1).
    """
    import torch

    from .._device import seed_everything
    from ..exceptions import InputError
    from .extraction import _progress

    if not isinstance(epochs, int | np.integer) or epochs < 1:
        raise InputError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not 0 < mask_fraction < 1:
        raise InputError(f"mask_fraction must be in (0, 1), got {mask_fraction}")
    genes = model.genes if genes is None else np.asarray(genes, dtype=str)
    seed_everything(random_state)
    rng = np.random.default_rng(random_state)
    gen = torch.Generator().manual_seed(random_state)
    net = model.network
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    n_batches = -(-adata.n_obs // batch_size)
    rows = []
    net.train()
    try:
        with _progress(progress, epochs * n_batches, "masked-expression training") as advance:
            for epoch in range(epochs):
                order = rng.permutation(adata.n_obs)
                losses = []
                for batch in model.tokenize(adata[order], genes, batch_size=batch_size):
                    batch = batch.to(model.device)
                    mask = _mask_tokens(batch, mask_fraction, gen)
                    hidden = model._embed(batch, value_mask=mask)
                    model._key_valid = batch.attention_mask
                    for lay in range(model.n_layers):
                        hidden = model._layer(lay, hidden, batch)
                    pred = model._output(hidden, batch)
                    assert batch.values is not None  # the own model's tokenizer always sets expression values
                    loss = torch.nn.functional.mse_loss(pred[mask], batch.values[mask])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                    advance()
                rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "n_cells": adata.n_obs})
    finally:
        net.eval()
        model._key_valid = None
    if save_path is not None:
        model.save(save_path)
    return TrainingResult(model, pd.DataFrame(rows))
