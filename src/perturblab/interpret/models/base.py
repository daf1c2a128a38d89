"""The interface every gene-token transformer adapter implements (:class:`GeneTokenModel`).

An adapter wraps one PyTorch network (Geneformer's ``BertForMaskedLM``, an scGPT-style encoder,
perturblab's own model) and exposes the same things to the interpretability analyses:

- ``tokenize(adata, genes)``: cells x genes expression -> batches of tokens (:class:`TokenBatch`);
- ``forward(batch)``: per-layer attention ``(B, H, S, S)``, hidden states and, on request, outputs;
- ``n_layers``, ``n_heads``, ``d_model``;
- hook points for causal ablation (:mod:`perturblab.interpret.ablation`):
  ``attention_module(layer)`` (a module returning ``(context (B, S, H*d_head), weights (B, H, S, S))``,
  called with the layer's attention input as first positional argument), ``value_states(layer, x)``,
  ``mlp_output_module(layer)`` (its output is the MLP branch added to the residual stream);
- ``cell_embeddings(adata, genes)``: ``(n_cells, d_model)`` mean-pooled or ``<cls>`` embeddings;
- ``match_genes(adata, genes)``: which genes under study have a token in the model's vocabulary
  (:class:`GeneMatch`); the others are left out of the analysis, logged once, never an error.

Layers are run one by one by :meth:`GeneTokenModel.forward`, so a forward can stop after the last
layer it needs and keep only the attention of the requested layers (memory: one batch).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..._device import get_device
from ...exceptions import InputError
from .._types import Genes
from ..tokenizers import TokenBatch, gene_positions

if TYPE_CHECKING:
    import torch

__all__ = ["GeneMatch", "GeneTokenModel", "ModelOutput", "TokenBatch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneMatch:
    """Genes under study that the model can tokenize, and those it cannot (no token in its vocabulary).

    Attributes
    ----------
    genes
        ``(G,)`` the genes asked for (``adata.var_names``), in the caller's order.
    kept
        The genes with a token, in the caller's order: the analysis runs on these.
    dropped
        The genes without a token (not in the vocabulary, or, for Geneformer, without a gene median), left out.
    id_key
        The ``adata.var`` column whose ids were looked up in the vocabulary (None: ``var_names``).
    """

    genes: np.ndarray
    kept: np.ndarray
    dropped: np.ndarray
    id_key: str | None = None

    @property
    def n_dropped(self) -> int:
        """Number of genes left out."""
        return int(self.dropped.size)

    def describe(self, max_names: int = 20) -> str:
        """One line for logs and reports, e.g. ``"1 of 300 genes have no token ... left out: MT-ND6"``."""
        where = "adata.var_names" if self.id_key is None else f"adata.var[{self.id_key!r}]"
        if not self.n_dropped:
            return f"all {self.genes.size} genes have a token in the model's vocabulary (ids from {where})"
        names = ", ".join(map(str, self.dropped[:max_names])) + (", ..." if self.n_dropped > max_names else "")
        return (f"{self.n_dropped} of {self.genes.size} genes have no token in the model's vocabulary (ids from "
                f"{where}) and are left out of the analysis: {names}")


@dataclass
class ModelOutput:
    """Result of :meth:`GeneTokenModel.forward`.

    Attributes
    ----------
    attentions
        ``{layer: (B, H, S, S)}`` attention weights (rows: queries, columns: keys) of the requested layers.
    hidden_states
        ``[embeddings, after layer 0, ..., after the last layer run]``, each ``(B, S, d_model)``.
    logits
        Model output per token when requested (Geneformer: MLM logits ``(B, S, vocab)``; scGPT and the
        own model: predicted expression ``(B, S)``), else None.
    """

    attentions: dict = field(default_factory=dict)
    hidden_states: list = field(default_factory=list)
    logits: torch.Tensor | None = None


class GeneTokenModel(ABC):
    """Base class (and protocol) of the gene-token transformer adapters.

    Subclasses set ``n_layers``, ``n_heads``, ``d_model``, ``network`` (the ``torch.nn.Module``) and
    ``default_pooling`` ("mean" or "cls"), and implement ``tokenize``, ``_embed``, ``_layer``,
    ``_output``, ``attention_module``, ``value_states`` and ``mlp_output_module``.
    """

    n_layers: int
    n_heads: int
    d_model: int
    default_pooling: str = "mean"

    def __init__(self, network, device=None):
        self.device = get_device(device)
        self.network = network.to(self.device).eval()
        self._key_valid = None  # (B, S) padding mask of the batch being run, read by ablation hooks
        self.gene_match: GeneMatch | None = None  # result of the last match_genes / tokenize
        self._logged_drops: set[tuple[str, ...]] = set()

    # ---- vocabulary -------------------------------------------------------------------------------
    def _in_vocabulary(self, adata, genes: np.ndarray) -> np.ndarray:
        """``(G,)`` bool: True where gene ``genes[i]`` (a name in ``adata.var_names``) has a token."""
        return np.ones(genes.size, dtype=bool)

    _id_key: str | None = None  # the adata.var column an adapter looks genes up by (None: var_names)

    def match_genes(self, adata, genes: Genes) -> GeneMatch:
        """Split the genes under study into those with a token in the model's vocabulary and those without.

        ``tokenize`` calls it, so genes without a token never abort a run: they are left out, the analysis
        runs on the intersection, and one line naming them is logged (WARNING, once per model and gene set).
        The result is also kept in :attr:`gene_match` for the report.

        Parameters
        ----------
        adata
            Cells x genes AnnData holding ``genes`` in ``var_names``.
        genes
            ``(G,)`` genes under study.

        Returns
        -------
        GeneMatch

        Raises
        ------
        InputError
            If ``genes`` is empty, has duplicates or names genes absent from ``adata.var_names``, or if none of
            them has a token (the message names the id column used and how to change it).
        """
        names = np.asarray(genes, dtype=str)
        gene_positions(adata, names)
        ok = np.array(self._in_vocabulary(adata, names), dtype=np.bool_)
        match = GeneMatch(names, names[ok], names[~ok], self._id_key)
        self.gene_match = match
        if not ok.any():
            where = "adata.var_names" if self._id_key is None else f"adata.var[{self._id_key!r}]"
            raise InputError(
                f"none of the {names.size} genes is in the model's vocabulary (ids from {where}, first: "
                f"{names[:5].tolist()}); pass gene_id_key, the adata.var column holding the ids the model knows "
                "(Ensembl ids for Geneformer, gene symbols for scGPT)"
            )
        key = tuple(match.dropped.tolist())
        if match.n_dropped and key not in self._logged_drops:
            self._logged_drops.add(key)
            logger.warning(match.describe())
        return match

    # ---- to implement -------------------------------------------------------------------------
    @abstractmethod
    def tokenize(self, adata, genes: Genes, batch_size: int = 32) -> Iterator[TokenBatch]:
        """Yield :class:`TokenBatch` es of ``batch_size`` cells (in AnnData order) over ``genes``."""

    @abstractmethod
    def _embed(self, batch: TokenBatch):
        """Input embeddings ``(B, S, d_model)``."""

    @abstractmethod
    def _layer(self, layer: int, hidden, batch: TokenBatch):
        """Run encoder layer ``layer`` on ``hidden``; returns ``(B, S, d_model)``."""

    @abstractmethod
    def _output(self, hidden, batch: TokenBatch):
        """Model output head on the last hidden state."""

    @abstractmethod
    def attention_module(self, layer: int):
        """Module returning ``(context (B, S, H*d_head), weights (B, H, S, S))`` for ``layer``."""

    @abstractmethod
    def value_states(self, layer: int, x):
        """Value projections ``(B, S, H*d_head)`` of the attention input ``x`` of ``layer``."""

    @abstractmethod
    def mlp_output_module(self, layer: int):
        """Module whose output is the MLP (feed-forward) branch of ``layer``."""

    # ---- shared -------------------------------------------------------------------------------
    def check_layers(self, layers: Iterable[int] | None) -> list[int]:
        """Validate layer indices (None -> all layers); returns a sorted list.

        Raises
        ------
        ValueError
            If a layer is outside ``0 .. n_layers - 1`` or the list is empty.
        """
        if layers is None:
            return list(range(self.n_layers))
        out = sorted({int(x) for x in layers})
        bad = [x for x in out if not 0 <= x < self.n_layers]
        if bad or not out:
            raise InputError(f"layers {bad or '[]'} invalid: this model has layers 0..{self.n_layers - 1}")
        return out

    def forward(
        self,
        batch: TokenBatch,
        output_attentions: bool = True,
        layers: Iterable[int] | None = None,
        stop_after: int | None = None,
        output_logits: bool = False,
    ) -> ModelOutput:
        """Run the model on one batch.

        Parameters
        ----------
        batch
            Tokens from :meth:`tokenize`.
        output_attentions
            Return attention weights of ``layers`` (all layers if None).
        layers
            Layers whose attention is kept; the forward stops after the last of them unless
            ``stop_after`` or ``output_logits`` asks for more.
        stop_after
            Last layer to run (default: the last requested layer, or the last layer).
        output_logits
            Also run the output head (needs all layers).

        Gradients follow the caller's grad mode (wrap in ``torch.no_grad()`` for inference).
        """

        batch = batch.to(self.device)
        wanted = self.check_layers(layers) if output_attentions else []
        if output_logits:
            last = self.n_layers - 1
        elif stop_after is not None:
            last = self.check_layers([stop_after])[0]
        else:
            last = max(wanted) if (wanted and layers is not None) else self.n_layers - 1
        captured: dict[int, torch.Tensor] = {}

        def capture(layer):
            def hook(module, args, output):
                captured[layer] = output[1]

            return hook

        handles = [self.attention_module(lay).register_forward_hook(capture(lay)) for lay in wanted if lay <= last]
        self._key_valid = batch.attention_mask
        try:
            hidden = self._embed(batch)
            states = [hidden]
            for lay in range(last + 1):
                hidden = self._layer(lay, hidden, batch)
                states.append(hidden)
            logits = self._output(hidden, batch) if output_logits else None
        finally:
            for h in handles:
                h.remove()
            self._key_valid = None
        return ModelOutput(attentions=captured, hidden_states=states, logits=logits)

    def cell_embeddings(
        self,
        adata,
        genes: Genes,
        batch_size: int = 32,
        pooling: str | None = None,
        layer: int = -1,
    ) -> np.ndarray:
        """Cell embeddings ``(n_cells, d_model)`` float32.

        Parameters
        ----------
        adata, genes
            As for :meth:`tokenize` (representation documented by the adapter).
        pooling
            ``"mean"`` (average over all gene tokens - for Geneformer the whole transcriptome's, context genes
            included - special tokens and padding excluded; Geneformer's default) or ``"cls"`` (the ``<cls>``
            token, scGPT's default); None uses the adapter's default.
        layer
            Index into the hidden states (0 = embeddings, -1 = last layer).
        """
        import torch

        pooling = pooling or self.default_pooling
        if pooling not in {"mean", "cls"}:
            raise InputError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        out = []
        with torch.no_grad():
            for batch in self.tokenize(adata, genes, batch_size=batch_size):
                batch = batch.to(self.device)
                hidden = self.forward(batch, output_attentions=False).hidden_states[layer]
                if pooling == "cls":
                    if bool(batch.gene_token_mask[:, 0].any()):
                        raise InputError("pooling='cls' needs a <cls> token first; this model's tokens have none")
                    out.append(hidden[:, 0].float().cpu().numpy())
                else:
                    w = batch.gene_token_mask.to(hidden.dtype).unsqueeze(-1)
                    out.append(((hidden * w).sum(1) / w.sum(1).clamp(min=1)).float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32)
