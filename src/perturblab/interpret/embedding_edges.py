"""Edge scores from gene representations: token-embedding and hidden-state similarity.

Beyond attention: a 2026 benchmark found that scGPT gene-embedding similarity beats classical GRN methods on
STRING. Here each gene's representation is its token's vector averaged over the cells in which it is a token,
at the input (hidden state 0: the token embedding, which for value-embedding models - scGPT, the own model -
includes the embedded expression value; Geneformer's includes the position) or after a layer (the contextual
hidden state). The edge score of genes ``i, j`` is the cosine similarity of their mean vectors, symmetric;
genes never seen as a token get similarity 0 with every gene. The scores go through the same evaluations as
attention (reference recovery, perturbation-first, baselines, incremental value).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exceptions import InputError
from ._types import Genes
from .edges import EdgeScores
from .models.base import GeneTokenModel

__all__ = ["cosine_matrix", "embedding_similarity_scores", "gene_embeddings"]


def gene_embeddings(model: GeneTokenModel, adata, genes: Genes, layers: Sequence[int] = (0, -1),
                    batch_size: int = 32, device=None) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Mean vector of each gene's token over cells, at hidden-state indices ``layers``.

    Parameters
    ----------
    model
        A :class:`~perturblab.interpret.models.GeneTokenModel`.
    adata
        Cells x genes in the adapter's input representation (raw counts for the bundled adapters).
    genes
        ``(G,)`` genes under study.
    layers
        Indices into the hidden states: 0 = input embeddings, ``l + 1`` = after layer ``l``, -1 = last layer.
    batch_size, device
        Forward batch size and torch device (None: the model's).

    Returns
    -------
    ({hidden-state index (normalised, 0..n_layers): (G, d_model) float64 mean}, counts (G,) int: cells where the
    gene is a token)
    """
    import torch

    from .._device import get_device

    n_states = model.n_layers + 1
    idx = sorted({int(i) % n_states if -n_states <= int(i) < n_states else -999 for i in layers})
    if not idx or idx[0] == -999:
        raise InputError(f"layers must be hidden-state indices in -{n_states}..{n_states - 1}, got {list(layers)}")
    if device is not None:
        model.device = get_device(device)
        model.network.to(model.device)
    genes = np.asarray(genes, dtype=str)
    G = genes.size
    sums = {i: torch.zeros(G, model.d_model, dtype=torch.float64, device=model.device) for i in idx}
    counts = torch.zeros(G, dtype=torch.float64, device=model.device)
    last = max(idx)
    with torch.no_grad():
        for batch in model.tokenize(adata, genes, batch_size=batch_size):
            batch = batch.to(model.device)
            if last == 0:
                states = [model._embed(batch)]
            else:
                states = model.forward(batch, output_attentions=False, stop_after=last - 1).hidden_states
            gi = batch.gene_index
            sel = gi >= 0
            g = gi[sel]
            counts.index_add_(0, g, torch.ones_like(g, dtype=torch.float64))
            for i in idx:
                sums[i].index_add_(0, g, states[i][sel].to(torch.float64))
    n = counts.clamp(min=1)[:, None]
    return {i: (sums[i] / n).cpu().numpy() for i in idx}, counts.round().long().cpu().numpy()


def cosine_matrix(E: np.ndarray) -> np.ndarray:
    """``(G, G)`` cosine similarity of the rows of ``E`` (0 for zero rows, 1 on the diagonal)."""
    E = np.asarray(E, dtype=np.float64)
    norm = np.linalg.norm(E, axis=1)
    Z = E / np.where(norm > 0, norm, 1.0)[:, None]
    C = np.clip(Z @ Z.T, -1.0, 1.0)
    np.fill_diagonal(C, 1.0)
    return C


def embedding_similarity_scores(model: GeneTokenModel, adata, genes: Genes, layers: Sequence[int] = (0, -1),
                                batch_size: int = 32, device=None) -> list[EdgeScores]:
    """Cosine-similarity edge scores of mean gene representations (kind ``"embedding"``).

    Names: ``"token-embedding similarity"`` for hidden state 0, ``"hidden-state similarity L<l>"`` after layer
    ``l`` (``layer`` attribute ``l``).

    Examples
    --------
    >>> emb = embedding_similarity_scores(model, ctrl, genes)  # doctest: +SKIP
    >>> reference_recovery([*emb, corr], refs, tfs=tfs)  # doctest: +SKIP
    """
    means, _ = gene_embeddings(model, adata, genes, layers, batch_size=batch_size, device=device)
    genes = np.asarray(genes, dtype=str)
    out = []
    for i, E in sorted(means.items()):
        if i == 0:
            out.append(EdgeScores("token-embedding similarity", cosine_matrix(E), genes, "embedding", None, None))
        else:
            out.append(EdgeScores(f"hidden-state similarity L{i - 1}", cosine_matrix(E), genes, "embedding", i - 1,
                                  None))
    return out
