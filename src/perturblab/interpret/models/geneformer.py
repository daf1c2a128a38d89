"""Geneformer adapter: Hugging Face ``BertForMaskedLM`` with the rank-value tokenizer over the whole transcriptome.

Source: Theodoris et al. 2023 (Nature), Geneformer repository (``geneformer/tokenizer.py``,
``emb_extractor.py``); V1 models (Genecorpus-30M: 2,048 input tokens, no special tokens, 6L/12L) and V2 models
(Genecorpus-104M: 4,096 input tokens, ``<cls>`` first and ``<eos>`` last). Attention comes from eager attention
(``attn_implementation="eager"``); transformers 5 removed ``head_mask``, so heads are ablated by hooks on
``attention.self`` that zero the head's slice before ``attention.output.dense``
(:mod:`perturblab.interpret.ablation`). Checkpoint directories as shipped are found by
:func:`~perturblab.interpret.models.checkpoints.find_geneformer_files`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...exceptions import InputError, MissingKeyError, PerturblabWarning
from ...io import write_json
from .._types import Genes
from ..tokenizers import (
    TokenBatch,
    gene_positions,
    iter_csr_chunks,
    load_gene_dict,
    pad_sequences,
)
from .base import GeneTokenModel

__all__ = ["GeneformerModel"]

logger = logging.getLogger(__name__)

#: Below this many vocabulary genes in the AnnData, a warning says the ranks are not Geneformer's.
MIN_TRANSCRIPTOME_GENES = 5000
_SPECIAL = ("<pad>", "<mask>", "<cls>", "<eos>")


@dataclass
class _VocabularyPlan:
    """Which columns of an AnnData Geneformer tokenises, and as which tokens."""

    columns: np.ndarray  # (k,) adata columns with a token, in adata order
    aggregate: object  # None, or (k, u) sparse 0/1 summing columns with the same Ensembl id
    tokens: np.ndarray  # (u,) token id per distinct gene
    medians: np.ndarray  # (u,) gene median per distinct gene
    col_to_u: np.ndarray  # (n_vars,) distinct-gene index of each adata column, -1 without a token


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
    gene_mapping
        Geneformer's ``ensembl_mapping_dict`` (upper-case id -> Ensembl id of the vocabulary), used to
        collapse ids as its tokenizer does; None maps every vocabulary id to itself.
    device
        ``None``/"auto", "cpu" or "cuda".

    Notes
    -----
    ``tokenize(adata, genes)`` follows ``TranscriptomeTokenizer.tokenize_anndata`` of the Geneformer repository:
    input raw counts, cells x genes, over the **whole transcriptome** - every gene of the AnnData whose id
    (``gene_id_key``; upper-cased unless the dictionary holds it as given, then mapped through ``gene_mapping``,
    as Geneformer does) has a token and a
    gene median, the genes under study or not. Counts of columns with the same id are summed (Geneformer's
    ``collapse_gene_ids``). Each cell's counts are divided by its total counts over all genes of the AnnData
    (Geneformer's ``n_counts``), times ``target_sum``, divided by the gene medians; the expressed genes are
    ranked highest first with ``np.argsort(-values)`` on the cell's non-zero values in AnnData column order
    (the same call on the same array as Geneformer's ``rank_genes``, so ties fall the same way) and
    truncated to ``max_length`` (minus 2 with ``<cls>``/``<eos>``). The genes under study get
    ``gene_index`` = their position in ``genes``; the other expressed genes are context tokens (``gene_index``
    -1, ``gene_token`` True), so the attention between genes under study comes from the full-context forward.
    Genes under study without a token are left out (:meth:`match_genes`). Differences from Geneformer: cells
    with no expressed vocabulary gene raise an error (Geneformer drops them with a warning); when ids are
    collapsed the summed genes keep the position of their first column (Geneformer appends them at the end,
    which only matters for ties); the totals are float64 row sums, whereas Geneformer divides in the dtype of
    the user's ``obs["n_counts"]`` - with a float32 column its float32 rounding reorders near-ties (1 of 200
    PBMC3k cells differs).

    Examples
    --------
    >>> model = GeneformerModel.from_pretrained(  # doctest: +SKIP
    ...     "Geneformer/Geneformer-V1-10M", gene_id_key="gene_ids")
    >>> model.match_genes(adata, hvgs).dropped  # doctest: +SKIP
    >>> maps = extract_attention(model, adata, model.match_genes(adata, hvgs).kept)  # doctest: +SKIP
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
        gene_mapping: Mapping[str, str] | None = None,
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
            raise InputError("token_dictionary has no '<pad>' token; pass Geneformer's token dictionary")
        too_big = max(self.token_dictionary.values()) >= cfg.vocab_size
        if too_big:
            raise InputError(
                f"token_dictionary has token ids up to {max(self.token_dictionary.values())} but the model's "
                f"vocabulary has {cfg.vocab_size} entries; pass the token dictionary the model was trained with"
            )
        has_special = "<cls>" in self.token_dictionary and "<eos>" in self.token_dictionary
        self.special_tokens = has_special if special_tokens is None else bool(special_tokens)
        if self.special_tokens and not has_special:
            raise InputError("special_tokens=True but token_dictionary lacks '<cls>' or '<eos>'; pass a V2 dictionary")
        self.max_length = int(max_length or cfg.max_position_embeddings)
        if self.max_length > cfg.max_position_embeddings or self.max_length < (3 if self.special_tokens else 1):
            raise InputError(
                f"max_length={self.max_length} is outside 1..{cfg.max_position_embeddings} (the model's "
                "max_position_embeddings); pass a smaller max_length"
            )
        self.gene_id_key, self.target_sum = gene_id_key, float(target_sum)
        self._id_key = gene_id_key
        if gene_mapping is None:
            self.gene_mapping = None
        else:  # as Geneformer: keep the mappings whose target has a token
            self.gene_mapping = {str(k): str(v) for k, v in gene_mapping.items() if str(v) in self.token_dictionary}
        self._warned_small: set[int] = set()
        super().__init__(network, device)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        token_dictionary: str | Path | None = None,
        gene_median_file: str | Path | None = None,
        gene_id_key: str | None = None,
        gene_mapping_file: str | Path | None = None,
        max_length: int | None = None,
        special_tokens: bool | None = None,
        target_sum: float = 1e4,
        device=None,
    ) -> GeneformerModel:
        """Load a Geneformer checkpoint directory as shipped, with its dictionaries.

        Parameters
        ----------
        path
            Directory with ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``: the root of the
            Geneformer repository or one of its model folders (``Geneformer-V1-10M``, ``Geneformer-V2-104M``,
            ``gf-12L-30M-i2048``, ``geneformer-12L-30M``...), or a folder written by :meth:`save_pretrained`.
        token_dictionary, gene_median_file
            Explicit dictionary files (``.pkl`` as Geneformer ships them, or JSON/TSV); they override the
            lookup. By default the dictionaries are found next to the model as the repository lays them out:
            ``geneformer/token_dictionary_gc104M.pkl`` (V2), ``geneformer/gene_dictionaries_30m/*_gc30M.pkl``
            (V1), ``geneformer/token_dictionary.pkl`` / ``gene_median_dictionary.pkl`` (V1 before 2024), see
            :func:`~perturblab.interpret.models.checkpoints.find_geneformer_files`. Pickles are read by a
            restricted unpickler (plain dicts of str, numbers and NumPy scalars only).
        gene_id_key
            ``adata.var`` column with the ids of the dictionary (Ensembl ids, e.g. ``"gene_ids"``); None uses
            ``adata.var_names``.
        gene_mapping_file
            Geneformer's ``ensembl_mapping_dict_*.pkl``; default: the one next to the token dictionary, if any.
        max_length, special_tokens, target_sum, device
            As for the constructor.

        Raises
        ------
        InputError
            If the directory has no recognisable layout (the message lists the files expected), or the
            dictionaries do not fit the model (token ids beyond ``vocab_size``).
        """
        from transformers import BertForMaskedLM

        from .checkpoints import find_geneformer_files

        files = find_geneformer_files(path, token_dictionary, gene_median_file, gene_mapping_file)
        if files.architecture != "BertForMaskedLM":
            warnings.warn(
                f"{files.config} describes a {files.architecture}: its encoder is loaded into BertForMaskedLM and "
                "the masked-gene output head is randomly initialised, so output-based outcomes (fidelity_output) "
                "are meaningless; attention and hidden states are the checkpoint's",
                PerturblabWarning,
                stacklevel=2,
            )
        network = BertForMaskedLM.from_pretrained(files.folder, attn_implementation="eager")
        logger.info(
            "Geneformer %s from %s: dictionaries %s, %s",
            files.version,
            files.folder,
            files.token_dictionary,
            files.gene_median_file,
        )
        mapping = None if files.gene_mapping_file is None else load_gene_dict(files.gene_mapping_file)
        return cls(
            network,
            load_gene_dict(files.token_dictionary),
            load_gene_dict(files.gene_median_file),
            max_length=max_length,
            special_tokens=special_tokens,
            gene_id_key=gene_id_key,
            target_sum=target_sum,
            gene_mapping=mapping,
            device=device,
        )

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the network (safetensors) and both dictionaries (JSON) to the directory ``path``."""
        path = Path(path)
        self.network.save_pretrained(path)
        write_json(path / "token_dictionary.json", self.token_dictionary)
        write_json(path / "gene_median_dictionary.json", self.gene_medians)
        return path

    # ---- vocabulary ---------------------------------------------------------------------------
    def _gene_ids(self, adata) -> np.ndarray:
        if self.gene_id_key is None:
            return np.asarray(adata.var_names, dtype=str)
        if self.gene_id_key not in adata.var.columns:
            raise MissingKeyError(
                f"gene_id_key {self.gene_id_key!r} is not a column of adata.var (columns: "
                f"{', '.join(map(str, adata.var.columns[:20]))}); pass the column holding Ensembl ids"
            )
        return np.asarray(adata.var[self.gene_id_key].astype(str), dtype=str)

    def _plan(self, adata) -> _VocabularyPlan:
        tok, med = self.token_dictionary, self.gene_medians
        lookup = tok if self.gene_mapping is None else self.gene_mapping
        # Geneformer upper-cases ids before the lookup; an id the dictionary holds as given is taken as given
        ids = np.array([i if i in lookup else i.upper() for i in self._gene_ids(adata)], dtype=object)
        if self.gene_mapping is not None:
            ids = np.array([self.gene_mapping.get(i, "") for i in ids], dtype=object)
        ok = np.array([i in tok and i not in _SPECIAL and med.get(i, 0.0) > 0 for i in ids], dtype=bool)
        columns = np.flatnonzero(ok)
        uniq, first, inverse = np.unique(ids[columns], return_index=True, return_inverse=True)
        rank = np.empty(uniq.size, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)  # distinct genes in order of first column
        u_of_col = rank[inverse]
        ordered = np.empty(uniq.size, dtype=object)
        ordered[u_of_col] = ids[columns]
        aggregate = None
        if uniq.size < columns.size:
            aggregate = sp.csr_matrix(
                (np.ones(columns.size), (np.arange(columns.size), u_of_col)), shape=(columns.size, uniq.size)
            )
        col_to_u = np.full(adata.n_vars, -1, dtype=np.int64)
        col_to_u[columns] = u_of_col
        n_vocab = int(uniq.size)
        if n_vocab < MIN_TRANSCRIPTOME_GENES and adata.n_vars not in self._warned_small and n_vocab:
            self._warned_small.add(adata.n_vars)
            warnings.warn(
                f"only {n_vocab} genes of the AnnData have a Geneformer token; Geneformer ranks a cell's whole "
                "transcriptome (about 20,000 genes, no feature selection), so ranks among these genes only "
                "differ from the model's pre-training input",
                PerturblabWarning,
                stacklevel=3,
            )
        return _VocabularyPlan(
            columns=columns,
            aggregate=aggregate,
            tokens=np.array([tok[g] for g in ordered], dtype=np.int64),
            medians=np.array([med[g] for g in ordered], dtype=np.float64),
            col_to_u=col_to_u,
        )

    def _in_vocabulary(self, adata, genes: np.ndarray) -> np.ndarray:
        plan = self._plan(adata)
        if plan.columns.size == 0:
            raise InputError(self._no_vocabulary_message(adata))
        return plan.col_to_u[gene_positions(adata, genes)] >= 0

    def _no_vocabulary_message(self, adata) -> str:
        hits = []
        for col in adata.var.columns:
            values = adata.var[col]
            textual = values.dtype == object or str(values.dtype) in {"category", "string"}
            if textual and any(str(v).upper() in self.token_dictionary for v in values.iloc[:2000]):
                hits.append(col)
        where = "adata.var_names" if self.gene_id_key is None else f"adata.var[{self.gene_id_key!r}]"
        hint = f"columns holding ids the model knows: {hits}" if hits else "map the genes to Ensembl ids first"
        return (
            f"no gene of the AnnData has a Geneformer token (ids from {where}, e.g. "
            f"{self._gene_ids(adata)[:3].tolist()}); pass gene_id_key ({hint})"
        )

    def transcriptome_size(self, adata) -> int:
        """Number of distinct genes of ``adata`` that Geneformer tokenises (the vocabulary genes it holds)."""
        return int(self._plan(adata).tokens.size)

    # ---- tokens -------------------------------------------------------------------------------
    def tokenize(self, adata, genes: Genes, batch_size: int = 32) -> Iterator[TokenBatch]:
        """Rank-value tokens of each cell's whole transcriptome (see the class notes); ``values`` is None.

        ``gene_index`` marks the genes under study (``genes``); context genes have ``gene_index`` -1 and
        ``gene_token`` True. Genes under study without a token are left out (logged once, :meth:`match_genes`).

        Raises
        ------
        InputError
            If a cell expresses no gene of the vocabulary, if two genes under study have the same Ensembl id,
            or for the reasons of :meth:`match_genes`.
        """
        names = np.asarray(genes, dtype=str)
        self.match_genes(adata, names)
        plan = self._plan(adata)
        study = np.full(plan.tokens.size, -1, dtype=np.int64)
        for k, u in enumerate(plan.col_to_u[gene_positions(adata, names)]):
            if u < 0:
                continue
            if study[u] >= 0:
                raise InputError(
                    f"genes {names[study[u]]!r} and {names[k]!r} have the same Geneformer token; pass only one of them"
                )
            study[u] = k
        n_keep = self.max_length - (2 if self.special_tokens else 0)
        cls_id, eos_id = self.token_dictionary.get("<cls>"), self.token_dictionary.get("<eos>")
        pad_id = self.token_dictionary["<pad>"]
        return self._batches(adata, plan, study, n_keep, cls_id, eos_id, pad_id, batch_size)

    def _batches(self, adata, plan, study, n_keep, cls_id, eos_id, pad_id, batch_size):
        for rows, sub, library in iter_csr_chunks(adata, plan.columns, batch_size, plan.aggregate):
            ids, index, is_gene, empty = [], [], [], []
            for b in range(len(rows)):
                lo, hi = sub.indptr[b], sub.indptr[b + 1]
                u = sub.indices[lo:hi]
                if u.size == 0:
                    empty.append(int(rows[b]))
                    continue
                # Geneformer: X / n_counts * target_sum / median, then rank_genes = np.argsort(-values)
                values = sub.data[lo:hi] / library[b] * self.target_sum / plan.medians[u]
                u = u[np.argsort(-values)][:n_keep]
                tok, gi, gt = plan.tokens[u], study[u], np.ones(u.size, dtype=bool)
                if self.special_tokens:
                    tok = np.concatenate([[cls_id], tok, [eos_id]])
                    gi = np.concatenate([[-1], gi, [-1]])
                    gt = np.concatenate([[False], gt, [False]])
                ids.append(tok)
                index.append(gi)
                is_gene.append(gt)
            if empty:
                raise InputError(
                    f"cells {empty[:10]} express no gene of Geneformer's vocabulary; remove them "
                    "(Geneformer's tokenizer drops such cells) or check gene_id_key"
                )
            yield pad_sequences(ids, index, None, rows, pad_id, gene_token=is_gene)

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
