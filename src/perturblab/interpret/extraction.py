"""Gene x gene attention maps of gene-token transformers, streamed over cells one layer at a time.

Follows the extraction step of Kendiukhov 2026 (arXiv 2602.17532; reconstructed in
``docs/reference/fm-interpretability.md``): ``A[l, h, i, j]`` = attention from query gene ``i`` to key gene
``j`` in layer ``l``, head ``h``, averaged over the cells in which both genes are tokens. Full attention
of one cell is ``L * H * S^2 * 4`` bytes, so the maps are reduced layer by layer: for each (group of)
layer(s) the cells are streamed in batches through a forward that stops after that layer, and each
batch's ``(B, H, S, S)`` weights are scattered into an ``(H, G, G)`` accumulator. Memory: one layer's
accumulator (``H * G^2 * 4`` bytes, plus ``G^2 * 8`` for the co-occurrence counts) plus one batch.
The price is compute: extracting all ``L`` layers one at a time runs ``L (L + 1) / 2`` layer passes per
cell instead of ``L``; ``layers_per_pass`` trades memory for speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import InputError
from ._types import Genes
from .models.base import GeneTokenModel

__all__ = ["LayerAttention", "cell_embeddings", "extract_attention", "iter_layer_attention"]


@dataclass
class LayerAttention:
    """Gene x gene attention of one layer, averaged over cells.

    Attributes
    ----------
    layer
        Layer index (0-based).
    genes
        ``(G,)`` gene names; row/column order of the maps.
    per_head
        ``(H, G, G)`` float32: ``per_head[h, i, j]`` = mean over cells where genes ``i`` and ``j`` are both
        tokens of the attention weight from query ``i`` to key ``j`` (raw softmax weights over the whole
        sequence, special tokens included, so rows do not sum to 1 over genes). 0 where ``n_cells == 0``.
    n_cells
        ``(G, G)`` int64: number of cells where both genes are tokens (diagonal: cells where the gene is).
    entropy
        ``(H,)`` mean attention entropy (nats) of each head over the queries of genes under study (the whole
        softmax row, all keys), averaged over those queries in every cell; None when not measured. Used to draw
        entropy-matched random heads for ablation.
    """

    layer: int
    genes: np.ndarray
    per_head: np.ndarray
    n_cells: np.ndarray
    entropy: np.ndarray | None = None

    @property
    def head_mean(self) -> np.ndarray:
        """``(G, G)`` mean over heads."""
        return self.per_head.mean(axis=0)

    @property
    def head_max(self) -> np.ndarray:
        """``(G, G)`` maximum over heads."""
        return self.per_head.max(axis=0)

    @property
    def n_heads(self) -> int:
        return int(self.per_head.shape[0])


def _scatter_batch(acc, weights, gene_index, n_genes: int) -> None:
    """Add each cell's ``(H, S, S)`` weights between gene tokens into ``acc`` ``(H, G*G)``."""
    for b in range(weights.shape[0]):
        tok = (gene_index[b] >= 0).nonzero().squeeze(1)
        gi = gene_index[b, tok]
        flat = (gi[:, None] * n_genes + gi[None, :]).reshape(-1)
        w = weights[b][:, tok][:, :, tok].reshape(weights.shape[1], -1)
        acc.index_add_(1, flat, w.to(acc.dtype))


def _entropy_batch(sums, weights, gene_index) -> None:
    """Add each head's attention entropy summed over the gene-token queries of one batch into ``sums`` ``(H,)``."""
    import torch

    q = (gene_index >= 0).to(weights.dtype)  # (B, S)
    ent = -(weights * torch.log(weights.clamp(min=1e-30))).sum(-1)  # (B, H, S)
    sums += (ent * q[:, None, :]).sum((0, 2)).to(sums.dtype)


def _count_batch(counts, gene_index, n_genes: int) -> None:
    """Add co-occurrence counts of one batch to ``counts`` ``(G, G)``."""
    import torch

    present = torch.zeros(gene_index.shape[0], n_genes + 1, dtype=counts.dtype, device=counts.device)
    idx = torch.where(gene_index >= 0, gene_index, torch.full_like(gene_index, n_genes))
    present.scatter_(1, idx, 1.0)
    present = present[:, :n_genes]
    counts += present.T @ present



def pass_plan(model, adata, genes, layers, layers_per_pass: int, device, batch_size: int
              ) -> tuple[list[list[int]], np.ndarray, Any, int]:
    """The layers checked and grouped ``layers_per_pass`` at a time, the genes as an array, the model moved to
    ``device`` (when given) and the number of cell batches: what every streamed pass over the cells plans first.

    Raises
    ------
    InputError
        Invalid layers or ``layers_per_pass < 1``.
    """
    from .._device import get_device

    layer_list = model.check_layers(layers)
    if layers_per_pass < 1:
        raise InputError(f"layers_per_pass must be >= 1, got {layers_per_pass}")
    if device is not None:
        model.device = get_device(device)
        model.network.to(model.device)
    groups = [layer_list[i : i + layers_per_pass] for i in range(0, len(layer_list), layers_per_pass)]
    return groups, np.asarray(genes, dtype=str), model.device, -(-adata.n_obs // batch_size)

def iter_layer_attention(
    model: GeneTokenModel,
    adata,
    genes: Genes,
    batch_size: int = 16,
    layers: Iterable[int] | None = None,
    device=None,
    layers_per_pass: int = 1,
    progress: bool = False,
) -> Iterator[LayerAttention]:
    """Stream gene x gene attention maps, one :class:`LayerAttention` per layer.

    Parameters
    ----------
    model
        A :class:`~perturblab.interpret.models.GeneTokenModel` adapter.
    adata
        Cells x genes in the representation the adapter's ``tokenize`` expects (raw counts for the
        bundled adapters); typically 2,000 control cells.
    genes
        ``(G,)`` genes (in ``adata.var_names`` and the model's vocabulary), e.g. 2,000 HVGs.
    batch_size
        Cells per forward.
    layers
        Layers to extract (default: all), yielded in increasing order.
    device
        Device of the accumulators and of the model (None: the model's device; else the model is moved).
    layers_per_pass
        Layers accumulated per sweep over the cells (1: memory of one layer's accumulator; ``L``: one
        sweep, ``L`` accumulators).
    progress
        Show a rich progress bar over sweeps x batches.

    Yields
    ------
    LayerAttention

    Raises
    ------
    ValueError
        For invalid layers, ``layers_per_pass < 1`` or genes unknown to the data or model.
    """
    import torch

    groups, gene_arr, dev, n_batches = pass_plan(model, adata, genes, layers, layers_per_pass, device, batch_size)
    G, H = gene_arr.size, model.n_heads
    counts = None
    with _progress(progress, len(groups) * n_batches) as advance:
        for group in groups:
            acc = {lay: torch.zeros(H, G * G, dtype=torch.float32, device=dev) for lay in group}
            ent = {lay: torch.zeros(H, dtype=torch.float64, device=dev) for lay in group}
            n_queries = 0
            new_counts = torch.zeros(G, G, dtype=torch.float64, device=dev) if counts is None else None
            for batch in model.tokenize(adata, gene_arr, batch_size=batch_size):
                batch = batch.to(dev)
                with torch.no_grad():
                    out = model.forward(batch, layers=group, stop_after=group[-1])
                    for lay in group:
                        _scatter_batch(acc[lay], out.attentions[lay], batch.gene_index, G)
                        _entropy_batch(ent[lay], out.attentions[lay], batch.gene_index)
                    n_queries += int((batch.gene_index >= 0).sum())
                    if new_counts is not None:
                        _count_batch(new_counts, batch.gene_index, G)
                del out
                advance()
            if counts is None:
                assert new_counts is not None  # built in the first pass over the cells
                counts = new_counts
                denom = counts.clamp(min=1).to(torch.float32)
                n_cells = counts.round().long().cpu().numpy()
            for lay in group:
                per_head = acc.pop(lay).view(H, G, G).div_(denom)  # in place: no second (H, G, G) array
                entropy = (ent.pop(lay) / max(n_queries, 1)).cpu().numpy()
                yield LayerAttention(lay, gene_arr.copy(), per_head.cpu().numpy(), n_cells.copy(), entropy)
                del per_head


def extract_attention(model: GeneTokenModel, adata, genes: Genes, **kwargs) -> dict[int, LayerAttention]:
    """All requested layers at once, ``{layer: LayerAttention}`` (for small ``G``; one sweep over cells).

    Keyword arguments are those of :func:`iter_layer_attention`; ``layers_per_pass`` defaults to all
    requested layers (memory: one accumulator per layer).
    """
    kwargs.setdefault("layers_per_pass", len(model.check_layers(kwargs.get("layers"))))
    return {la.layer: la for la in iter_layer_attention(model, adata, genes, **kwargs)}


def cell_embeddings(
    model: GeneTokenModel, adata, genes: Genes, batch_size: int = 32, pooling: str | None = None,
    layer: int = -1,
) -> np.ndarray:
    """``(n_cells, d_model)`` cell embeddings (mean-pooled gene tokens or ``<cls>``); see
    :meth:`GeneTokenModel.cell_embeddings`. Used for the kNN / Leiden strata of CSSI."""
    return model.cell_embeddings(adata, genes, batch_size=batch_size, pooling=pooling, layer=layer)


class _progress:
    """Context manager giving an ``advance()`` callable that reports to :mod:`perturblab.runs.progress` (shown
    only where the command line installs a reporter); ``enabled=False`` reports nothing."""

    def __init__(self, enabled: bool, total: int, description: str = "attention extraction"):
        self.enabled, self.total, self.description = enabled, total, description
        self._ctx = None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from ..runs import progress

        self._ctx = progress.task(self.description, total=self.total)
        task = self._ctx.__enter__()
        return task.advance

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False
