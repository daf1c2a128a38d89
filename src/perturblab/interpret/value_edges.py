"""Value-weighted edge scores: does the signal sit in the values rather than in the attention weights?

Attention weights say where a query looks, not what it takes. Two value-aware gene x gene scores per layer and
head, streamed over cells like :mod:`~perturblab.interpret.extraction` (one group of layers at a time, an
``(H, G * G)`` accumulator per measure, averaged over the cells where both genes are tokens):

* ``context`` - the cosine similarity of the two genes' attention outputs, ``c_i = sum_k A[i, k] v_k``
  (softmax(QK) . V, the head's context vector before the output projection): genes whose heads read the same
  mixture of values. Symmetric. This is the paper's "value-weighted context similarity" (its exact
  definition is not published; this is the direct reading of "softmax(QK) . V cosine").
* ``norm`` - the norm-based attribution of Kobayashi et al. 2020 ("Attention is not only a weight"),
  ``A[i, j] * ||v_j||``: how much of key ``j``'s value actually flows into query ``i``. Directed, like attention.

The value vectors come from the adapter's ``value_states(layer, x)`` with ``x`` the attention input captured
by a forward hook on ``attention_module(layer)``, so every adapter (Geneformer, scGPT, own) is supported.
Memory: per measure and layer ``H * G^2 * 4`` bytes plus one batch's ``(B, H, S, S)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError
from ._types import Genes
from .edges import EdgeScores
from .extraction import _count_batch, _progress, _scatter_batch, pass_plan
from .models.base import GeneTokenModel

__all__ = ["MEASURES", "LayerValueEdges", "iter_value_edges", "value_edge_scores"]

#: Value-aware measures of :func:`iter_value_edges`.
MEASURES = ("context", "norm")


@dataclass
class LayerValueEdges:
    """Value-weighted gene x gene scores of one layer and measure, averaged over cells.

    Attributes
    ----------
    layer, measure
        Layer index and measure (``"context"`` or ``"norm"``).
    genes
        ``(G,)`` gene names.
    per_head
        ``(H, G, G)`` float32 mean over the cells where both genes are tokens (0 where none is).
    n_cells
        ``(G, G)`` co-occurrence counts.
    """

    layer: int
    measure: str
    genes: np.ndarray
    per_head: np.ndarray
    n_cells: np.ndarray

    @property
    def head_mean(self) -> np.ndarray:
        return self.per_head.mean(axis=0)

    @property
    def head_max(self) -> np.ndarray:
        return self.per_head.max(axis=0)


def _attention_input(args, kwargs):
    if args:
        return args[0]
    for key in ("hidden_states", "x", "query"):
        if key in kwargs:
            return kwargs[key]
    raise InputError("could not find the attention input of the hooked attention module (no positional argument)")


def _batch_measures(model: GeneTokenModel, layer: int, x, weights, measures: Sequence[str]) -> dict:
    """``{measure: (B, H, S, S)}`` for one batch: context cosine and / or ``A * ||v||``."""
    import torch

    B, H, S, _ = weights.shape
    v = model.value_states(layer, x)
    v = v.reshape(B, S, H, -1).permute(0, 2, 1, 3).to(weights.dtype)  # (B, H, S, d_head)
    out = {}
    if "context" in measures:
        ctx = torch.matmul(weights, v)
        ctx = ctx / ctx.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        out["context"] = torch.matmul(ctx, ctx.transpose(-1, -2))
    if "norm" in measures:
        out["norm"] = weights * v.norm(dim=-1)[:, :, None, :]
    return out


def iter_value_edges(
    model: GeneTokenModel,
    adata,
    genes: Genes,
    layers: Iterable[int] | None = None,
    measures: Sequence[str] = MEASURES,
    batch_size: int = 16,
    device=None,
    layers_per_pass: int = 1,
    progress: bool = False,
) -> Iterator[LayerValueEdges]:
    """Stream value-weighted gene x gene scores, one :class:`LayerValueEdges` per (layer, measure).

    Parameters
    ----------
    model
        A :class:`~perturblab.interpret.models.GeneTokenModel` adapter.
    adata
        Cells x genes in the representation the adapter's ``tokenize`` expects (raw counts for the bundled
        adapters), e.g. the 2,000 control cells of the attention extraction.
    genes
        ``(G,)`` genes under study.
    layers
        Layers (default: all), yielded in increasing order.
    measures
        Subset of :data:`MEASURES`.
    batch_size, device, layers_per_pass, progress
        As in :func:`~perturblab.interpret.extraction.iter_layer_attention`.

    Yields
    ------
    LayerValueEdges

    Examples
    --------
    >>> edges = list(iter_value_edges(model, ctrl, genes, layers=[best_layer]))  # doctest: +SKIP
    >>> value_edge_scores(edges)  # doctest: +SKIP
    """
    import torch

    measures = tuple(measures)
    bad = [m for m in measures if m not in MEASURES]
    if bad or not measures:
        raise InputError(f"measures must be a non-empty subset of {MEASURES}, got {list(measures)}")
    groups, gene_arr, dev, n_batches = pass_plan(model, adata, genes, layers, layers_per_pass, device, batch_size)
    G, H = gene_arr.size, model.n_heads
    counts = None
    with _progress(progress, len(groups) * n_batches, "value-weighted edges") as advance:
        for group in groups:
            acc = {(lay, m): torch.zeros(H, G * G, dtype=torch.float32, device=dev) for lay in group for m in measures}
            new_counts = torch.zeros(G, G, dtype=torch.float64, device=dev) if counts is None else None
            captured: dict[int, tuple] = {}

            def hook_for(lay, store=captured):
                def hook(module, args, kwargs, output):
                    store[lay] = (_attention_input(args, kwargs), output[1])

                return hook

            handles = [model.attention_module(lay).register_forward_hook(hook_for(lay), with_kwargs=True)
                       for lay in group]
            try:
                for batch in model.tokenize(adata, gene_arr, batch_size=batch_size):
                    batch = batch.to(dev)
                    with torch.no_grad():
                        model.forward(batch, output_attentions=False, stop_after=group[-1])
                        for lay in group:
                            x, w = captured.pop(lay)
                            for m, val in _batch_measures(model, lay, x, w, measures).items():
                                _scatter_batch(acc[(lay, m)], val, batch.gene_index, G)
                        if new_counts is not None:
                            _count_batch(new_counts, batch.gene_index, G)
                    advance()
            finally:
                for h in handles:
                    h.remove()
            if counts is None:
                assert new_counts is not None  # built in the first pass over the cells
                counts = new_counts
                denom = counts.clamp(min=1).to(torch.float32)
                n_cells = counts.round().long().cpu().numpy()
            for lay in group:
                for m in measures:
                    per_head = acc.pop((lay, m)).view(H, G, G).div_(denom)
                    yield LayerValueEdges(lay, m, gene_arr.copy(), per_head.cpu().numpy(), n_cells.copy())


def value_edge_scores(items: Iterable[LayerValueEdges], per_head: bool = False) -> list[EdgeScores]:
    """:class:`~perturblab.interpret.edges.EdgeScores` (kind ``"value"``) named ``"value-<measure> L<l> mean"``
    / ``max`` (and ``H<h>`` with ``per_head``), ready for every evaluation of attention."""
    out: list[EdgeScores] = []
    for it in sorted(items, key=lambda a: (a.layer, a.measure)):
        base = f"value-{it.measure} L{it.layer}"
        out.append(EdgeScores(f"{base} mean", it.head_mean, it.genes, "value", it.layer, "mean"))
        out.append(EdgeScores(f"{base} max", it.head_max, it.genes, "value", it.layer, "max"))
        if per_head:
            out += [EdgeScores(f"{base} H{h}", it.per_head[h], it.genes, "value", it.layer, str(h))
                    for h in range(it.per_head.shape[0])]
    return out
