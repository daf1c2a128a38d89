"""Geneformer adapter: Hugging Face ``BertForMaskedLM`` with the rank-value tokenizer.

Source: Theodoris et al. 2023 (Nature), Geneformer repository (``geneformer/tokenizer.py``,
``emb_extractor.py``); configurations V1-10M (6 layers x 4 heads, d 256), 12L-95M, V2-316M.
Attention comes from eager attention (``attn_implementation="eager"``); transformers 5 removed
``head_mask``, so heads are ablated by hooks on ``attention.self`` that zero the head's slice before
``attention.output.dense`` (:mod:`perturblab.interpret.ablation`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...io import write_json
from ..tokenizers import TokenBatch, gene_positions, iter_cell_chunks, iter_token_batches, load_gene_dict, rank_value_order
from .base import GeneTokenModel

__all__ = ["GeneformerModel"]


class GeneformerModel(GeneTokenModel):
    """Geneformer behind the :class:`GeneTokenModel` interface.

    Parameters
    ----------
    network
        A ``transformers.BertForMaskedLM`` (switched to eager attention).
    token_dictionary
        Gene id (Ensembl in the real model) -> token id; holds ``"<pad>"`` and, for V2 models,
        ``"<cls>"`` and ``"<eos>"``.
    gene_medians
        Gene id -> non-zero median of the normalised expression over the pre-training corpus.
    max_length
        Input size (V1: 2,048; V2: 4,096); default ``config.max_position_embeddings``.
    special_tokens
        Add ``<cls>`` first and ``<eos>`` last (V2 models); default: when both are in the dictionary.
    gene_id_key
        Column of ``adata.var`` holding the ids of the token dictionary (e.g. ``"gene_ids"`` for Ensembl);
        None uses ``adata.var_names``.
    target_sum
        Normalisation total per cell (Geneformer: 10,000).
    device
        ``None``/"auto", "cpu" or "cuda".

    Notes
    -----
    Input representation of ``tokenize``: raw counts, cells x genes. Each cell's counts over ``genes`` are
    divided by its total counts over all genes of the AnnData (Geneformer's ``n_counts``), times
    ``target_sum``, divided by the gene medians, and the expressed genes are ranked highest first and
    truncated to ``max_length`` (minus 2 with special tokens). Genes outside ``genes`` are not tokenized.
    """

    default_pooling = "mean"

    def __init__(
        self,
        network,
        token_dictionary: Mapping[str, int],
        gene_medians: Mapping[str, float],
        max_length: int | None = None,
        special_tokens: bool | None = None,
        gene_id_key: str | None = None,
        target_sum: float = 1e4,
        device=None,
    ):
        import transformers

        if int(transformers.__version__.split(".")[0]) < 5:
            raise ImportError(f"GeneformerModel needs transformers >= 5 (found {transformers.__version__})")
        network.set_attn_implementation("eager")
        cfg = network.config
        self.n_layers, self.n_heads, self.d_model = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size
        self.token_dictionary = {str(k): int(v) for k, v in token_dictionary.items()}
        self.gene_medians = {str(k): float(v) for k, v in gene_medians.items()}
        if "<pad>" not in self.token_dictionary:
            raise ValueError("token_dictionary has no '<pad>' token")
        has_special = "<cls>" in self.token_dictionary and "<eos>" in self.token_dictionary
        self.special_tokens = has_special if special_tokens is None else bool(special_tokens)
        if self.special_tokens and not has_special:
            raise ValueError("special_tokens=True but token_dictionary lacks '<cls>' or '<eos>'")
        self.max_length = int(max_length or cfg.max_position_embeddings)
        self.gene_id_key, self.target_sum = gene_id_key, float(target_sum)
        super().__init__(network, device)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, token_dictionary: str | Path | None = None, gene_medians: str | Path | None = None, **kwargs
    ) -> GeneformerModel:
        """Load a checkpoint directory (``BertForMaskedLM.from_pretrained``) and its dictionaries.

        ``token_dictionary`` / ``gene_medians`` default to ``token_dictionary.{json,pkl}`` and
        ``gene_median_dictionary.{json,pkl}`` inside ``path``; they are read by
        :func:`~perturblab.interpret.tokenizers.load_gene_dict` (JSON/TSV, or pickle through a restricted
        unpickler). Other keyword arguments go to the constructor.

        Raises
        ------
        FileNotFoundError
            If the checkpoint or a dictionary file is missing.
        """
        from transformers import BertForMaskedLM

        path = Path(path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a Hugging Face checkpoint directory (no config.json)")
        files = {}
        for name, given in (("token_dictionary", token_dictionary), ("gene_median_dictionary", gene_medians)):
            if given is None:
                found = [path / f"{name}{s}" for s in (".json", ".pkl", ".pickle", ".tsv") if (path / f"{name}{s}").exists()]
                if not found:
                    raise FileNotFoundError(f"no {name}.json/.pkl in {path}; pass the file explicitly")
                given = found[0]
            files[name] = load_gene_dict(given)
        network = BertForMaskedLM.from_pretrained(path, attn_implementation="eager")
        return cls(network, files["token_dictionary"], files["gene_median_dictionary"], **kwargs)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the network (safetensors) and both dictionaries (JSON) to the directory ``path``."""
        path = Path(path)
        self.network.save_pretrained(path)
        write_json(path / "token_dictionary.json", self.token_dictionary)
        write_json(path / "gene_median_dictionary.json", self.gene_medians)
        return path

    # ---- tokens -------------------------------------------------------------------------------
    def tokenize(self, adata, genes: Sequence[str], batch_size: int = 32) -> Iterator[TokenBatch]:
        """Rank-value tokens of raw counts (see the class notes); ``values`` is None."""
        genes = np.asarray(genes, dtype=str)
        pos = gene_positions(adata, genes)
        if self.gene_id_key is None:
            ids = genes
        else:
            if self.gene_id_key not in adata.var.columns:
                raise KeyError(f"gene_id_key {self.gene_id_key!r} is not a column of adata.var")
            ids = adata.var[self.gene_id_key].to_numpy().astype(str)[pos]
        missing = [g for g in ids if g not in self.token_dictionary or g not in self.gene_medians]
        if missing:
            raise ValueError(
                f"{len(missing)} genes have no token or no median in Geneformer's dictionaries "
                f"(first: {missing[:10]}); drop them from genes or set gene_id_key to the Ensembl id column"
            )
        tokens = np.array([self.token_dictionary[g] for g in ids], dtype=np.int64)
        medians = np.array([self.gene_medians[g] for g in ids], dtype=np.float64)
        if (medians <= 0).any():
            raise ValueError("gene medians must be > 0")
        n_keep = self.max_length - (2 if self.special_tokens else 0)
        cls_id, eos_id = self.token_dictionary.get("<cls>"), self.token_dictionary.get("<eos>")

        def make_cell(x, library):
            order = rank_value_order(x / max(library, 1.0) * self.target_sum / medians, n_keep)
            if not self.special_tokens:
                return tokens[order], order, None
            return (
                np.concatenate([[cls_id], tokens[order], [eos_id]]),
                np.concatenate([[-1], order, [-1]]),
                None,
            )

        return iter_token_batches(iter_cell_chunks(adata, pos, batch_size), make_cell, self.token_dictionary["<pad>"])

    # ---- network pieces -----------------------------------------------------------------------
    def _embed(self, batch):
        import torch

        mask = batch.attention_mask
        dtype = self.network.dtype
        self._mask4d = (~mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min
        return self.network.bert.embeddings(input_ids=batch.input_ids)

    def _layer(self, layer, hidden, batch):
        out = self.network.bert.encoder.layer[layer](hidden, self._mask4d)
        return out[0] if isinstance(out, tuple) else out

    def _output(self, hidden, batch):
        return self.network.cls(hidden)

    def attention_module(self, layer):
        return self.network.bert.encoder.layer[layer].attention.self

    def value_states(self, layer, x):
        return self.attention_module(layer).value(x)

    def mlp_output_module(self, layer):
        return self.network.bert.encoder.layer[layer].output.dense
