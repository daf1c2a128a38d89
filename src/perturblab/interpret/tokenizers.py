"""Tokenizers that turn cells x genes expression into gene-token sequences.

Two schemes of single-cell foundation models are implemented from their sources:

- **rank-value** (Geneformer; Theodoris et al. 2023, ``geneformer/tokenizer.py``): counts are normalised
  to 10,000 per cell, divided by each gene's non-zero median over the pre-training corpus, and the
  expressed genes are ranked by that value, highest first, then truncated to the model's input size;
- **value binning** (scGPT; Cui et al. 2024, ``scgpt/preprocess.py::binning``): each cell's non-zero values
  are put into ``n_bins - 1`` quantile bins of that cell (bin 0 is reserved for zero).

Both produce a :class:`TokenBatch`: padded token ids, a padding mask, optional values and, for every
token, the position of its gene in the caller's gene list of genes under study (``gene_index``; ``-1`` for
special tokens, padding and context genes), which is what the attention extraction needs to map tokens back
to genes. Geneformer tokenises a cell's whole transcriptome (:func:`iter_csr_chunks`): the genes under study
are a subset of the tokens, the other expressed genes are context tokens (``gene_token`` True, ``gene_index``
-1).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .._validation import check_counts, to_dense
from ..exceptions import InputError
from ._types import Genes

if TYPE_CHECKING:  # torch is imported lazily at run time
    import torch

__all__ = [
    "TokenBatch",
    "bin_values",
    "gene_positions",
    "iter_cell_chunks",
    "iter_csr_chunks",
    "iter_token_batches",
    "load_gene_dict",
    "pad_sequences",
    "rank_value_order",
]


@dataclass
class TokenBatch:
    """A padded batch of gene-token sequences (one row per cell).

    Attributes
    ----------
    input_ids
        ``(B, S)`` int64 token ids, padded with the model's pad id.
    attention_mask
        ``(B, S)`` bool, True for real tokens (special tokens included), False for padding.
    gene_index
        ``(B, S)`` int64 position of each token's gene in the gene list given to ``tokenize``;
        ``-1`` for special tokens (``<cls>``, ``<eos>``) and padding.
    values
        ``(B, S)`` float32 expression values attached to tokens (scGPT bins, own model log1p values),
        or None for rank-value models.
    cell_index
        ``(B,)`` row of each cell in the AnnData that was tokenized.
    gene_token
        ``(B, S)`` bool, True for every gene token - genes under study and context genes (Geneformer tokenises
        the whole transcriptome) - and False for special tokens and padding; None when every gene token is a
        gene under study (then it equals ``gene_index >= 0``, see :attr:`gene_token_mask`).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    gene_index: torch.Tensor
    values: torch.Tensor | None
    cell_index: np.ndarray
    gene_token: torch.Tensor | None = None

    @property
    def gene_token_mask(self):
        """``(B, S)`` bool: True for gene tokens (under study or context), False for special tokens and padding."""
        return self.gene_index >= 0 if self.gene_token is None else self.gene_token

    def to(self, device) -> TokenBatch:
        """Return the batch with its tensors on ``device``."""
        return TokenBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.gene_index.to(device),
            None if self.values is None else self.values.to(device),
            self.cell_index,
            None if self.gene_token is None else self.gene_token.to(device),
        )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def gene_positions(adata, genes: Genes) -> np.ndarray:
    """Column positions of ``genes`` in ``adata.var_names``.

    Raises
    ------
    InputError
        If ``genes`` is empty, has duplicates, or names genes absent from ``adata.var_names``.
    """
    genes = np.asarray(genes, dtype=str)
    if genes.size == 0:
        raise InputError("genes is empty: pass the gene names (adata.var_names) to tokenize")
    uniq, counts = np.unique(genes, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"genes has duplicates: {uniq[counts > 1][:10].tolist()}")
    index = {g: i for i, g in enumerate(map(str, adata.var_names))}
    missing = [g for g in genes if g not in index]
    if missing:
        raise InputError(
            f"{len(missing)} genes are not in adata.var_names (first: {missing[:10]}); "
            "pass genes that the AnnData holds"
        )
    return np.array([index[g] for g in genes], dtype=np.int64)


def iter_cell_chunks(adata, positions: np.ndarray, batch_size: int, layer: str | None = None):
    """Yield ``(cell_index (b,), X (b, G) float64 dense, library_size (b,))`` chunks of cells.

    ``library_size`` is the row sum over *all* genes of the AnnData (the cell's total counts), so
    that normalisation does not depend on which genes were selected. Only one chunk is dense at a time.

    Raises
    ------
    ValueError
        If ``batch_size < 1`` or the matrix has negative / non-finite values (raw counts expected).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    X = adata.layers[layer] if layer is not None else adata.X
    for start in range(0, adata.n_obs, batch_size):
        rows = np.arange(start, min(start + batch_size, adata.n_obs))
        block = X[rows]
        check_counts(block, "adata.X" if layer is None else f"adata.layers[{layer!r}]")
        library = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
        sub = block[:, positions]
        yield rows, to_dense(sub, np.float64) if sp.issparse(sub) else np.asarray(sub, np.float64), library


def iter_csr_chunks(adata, columns: np.ndarray, batch_size: int, aggregate=None):
    """Yield ``(cell_index (b,), X (b, k) CSR float64, library_size (b,))`` chunks over ``columns``, sparse.

    For tokenisers that read a cell's whole transcriptome (Geneformer: every gene of the vocabulary, about
    760 expressed genes per PBMC cell out of 25,000): only the expressed genes of a chunk are materialised.

    Parameters
    ----------
    adata
        Cells x genes raw counts (dense or sparse ``X``).
    columns
        ``(k,)`` column positions in ``adata.var`` to keep, in the order of the output columns.
    batch_size
        Cells per chunk.
    aggregate
        Optional ``(k, u)`` sparse 0/1 matrix summing columns that stand for the same token (Geneformer's
        collapse of duplicate Ensembl ids); the output then has ``u`` columns.

    Notes
    -----
    ``library_size`` is the float64 row sum over *all* genes of the AnnData (Geneformer's ``n_counts``). Each
    output row holds its non-zero entries only (explicit zeros removed), with column indices in increasing
    order - the order in which Geneformer's tokenizer sees a cell's expressed genes.

    Raises
    ------
    InputError
        If ``batch_size < 1`` or the matrix has negative / non-finite values (raw counts expected).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}; pass a positive number of cells per batch")
    X = adata.X
    columns = np.asarray(columns, dtype=np.int64)
    for start in range(0, adata.n_obs, batch_size):
        rows = np.arange(start, min(start + batch_size, adata.n_obs))
        block = X[rows]
        check_counts(block, "adata.X")
        block = sp.csr_matrix(block) if not sp.issparse(block) else block.tocsr()
        library = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
        sub = block[:, columns].astype(np.float64)
        if aggregate is not None:
            sub = sub @ aggregate
        sub = sp.csr_matrix(sub)
        sub.sum_duplicates()
        sub.eliminate_zeros()
        sub.sort_indices()
        yield rows, sub, library


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain containers, str, int, float and NumPy scalars."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
    })

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: gene dictionaries may hold only dict/str/int/float "
            "(convert the file to JSON if it holds anything else)"
        )


def load_gene_dict(path: str | Path) -> dict:
    """Read a gene -> value dictionary (token ids, gene medians) safely.

    Accepts JSON (``.json``), two-column TSV/CSV without header (``.tsv``, ``.csv``, ``.txt``) and
    pickle (``.pkl``, ``.pickle``; the format of the Geneformer repository's token dictionary and gene
    median files). Pickles are read with a restricted unpickler that allows only plain dicts, str, int,
    float and NumPy scalars, so a malicious file cannot run code. NumPy scalars become Python numbers.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    InputError
        If the suffix is unknown or the content is not a dictionary of numbers or ids (a ``ValueError``).
    pickle.UnpicklingError
        If a pickle references anything else than the allowed types.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"gene dictionary file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        obj = json.loads(path.read_text(encoding="utf-8"))
    elif suffix in {".tsv", ".csv", ".txt"}:
        sep = "," if suffix == ".csv" else "\t"
        obj = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                key, value = line.split(sep)[:2]
                num = float(value)
                obj[key] = int(num) if num.is_integer() and "." not in value else num
    elif suffix in {".pkl", ".pickle"}:
        with path.open("rb") as fh:
            obj = _RestrictedUnpickler(fh).load()
    else:
        raise InputError(f"unsupported gene dictionary format {suffix!r} ({path}): use .json, .tsv, .csv or .pkl")
    if not isinstance(obj, dict):
        raise InputError(f"{path} holds a {type(obj).__name__}, expected a dictionary gene -> value")
    out = {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in obj.items()}
    bad = [k for k, v in out.items() if not isinstance(v, int | float | str)]
    if bad:
        raise InputError(f"{path} maps {bad[:3]} to {type(out[bad[0]]).__name__} values; a gene dictionary maps gene "
                         "ids to numbers (token ids, medians) or to ids (Ensembl mapping)")
    return out


def rank_value_order(normalised: np.ndarray, max_length: int | None = None) -> np.ndarray:
    """Positions of the expressed genes of one cell ranked by value, highest first (Geneformer).

    Parameters
    ----------
    normalised
        ``(G,)`` values already normalised the Geneformer way (counts / library * 1e4 / gene median).
    max_length
        Keep at most this many genes (the top-ranked ones); None keeps all expressed genes.

    Returns
    -------
    np.ndarray
        ``(n,)`` int64 gene positions; zero-valued genes are left out.

    Notes
    -----
    Differs from Geneformer's ``tokenize_cell`` (``np.argsort`` quicksort): ties are broken by gene
    position with a stable sort, so the order is deterministic.
    """
    nonzero = np.flatnonzero(normalised > 0)
    order = nonzero[np.argsort(-normalised[nonzero], kind="stable")]
    return order if max_length is None else order[:max_length]


def bin_values(row: np.ndarray, n_bins: int = 51, rng: np.random.Generator | None = None) -> np.ndarray:
    """scGPT value binning of one cell: non-zero values into ``n_bins - 1`` per-cell quantile bins.

    Parameters
    ----------
    row
        ``(G,)`` non-negative expression of one cell. Any per-cell monotone transform gives the same bins
        (raw counts, normalised counts and log1p-normalised values are equivalent here), because the bin
        edges are quantiles of the cell's own non-zero values.
    n_bins
        Number of bins including the zero bin (scGPT: 51). Non-zero values get bins 1..n_bins-1.
    rng
        Generator for scGPT's random placement of values that fall on several equal bin edges
        (``_digitize(side="both")``); None uses ``np.random.default_rng(0)``.

    Returns
    -------
    np.ndarray
        ``(G,)`` int64 bins, 0 where ``row == 0``.

    Raises
    ------
    ValueError
        If ``n_bins < 3`` or ``row`` has negative values.
    """
    if n_bins < 3:
        raise InputError(f"n_bins must be >= 3, got {n_bins}")
    row = np.asarray(row, dtype=np.float64)
    if (row < 0).any():
        raise InputError("bin_values expects non-negative expression values")
    out = np.zeros(row.shape, dtype=np.int64)
    nz = np.flatnonzero(row)
    if nz.size == 0:
        return out
    rng = np.random.default_rng(0) if rng is None else rng
    x = row[nz]
    edges = np.quantile(x, np.linspace(0, 1, n_bins - 1))
    left = np.digitize(x, edges)
    right = np.digitize(x, edges, right=True)
    out[nz] = np.ceil(rng.random(x.size) * (right - left) + left).astype(np.int64)
    return out


def pad_sequences(
    ids: list[np.ndarray],
    gene_index: list[np.ndarray],
    values: list[np.ndarray] | None,
    cell_index: np.ndarray,
    pad_id: int,
    pad_value: float = 0.0,
    gene_token: list[np.ndarray] | None = None,
) -> TokenBatch:
    """Pad per-cell sequences to the longest one and build a :class:`TokenBatch`.

    ``gene_token`` (per cell, bool, True for gene tokens incl. context genes) is only needed when some gene
    tokens are not genes under study (``gene_index`` -1); see :attr:`TokenBatch.gene_token`.
    """
    import torch

    n, length = len(ids), max(len(s) for s in ids)
    out_ids = np.full((n, length), pad_id, dtype=np.int64)
    out_gene = np.full((n, length), -1, dtype=np.int64)
    mask = np.zeros((n, length), dtype=bool)
    out_val = None if values is None else np.full((n, length), pad_value, dtype=np.float32)
    out_tok = None if gene_token is None else np.zeros((n, length), dtype=bool)
    for b in range(n):
        m = len(ids[b])
        out_ids[b, :m] = ids[b]
        out_gene[b, :m] = gene_index[b]
        mask[b, :m] = True
        if out_val is not None and values is not None:
            out_val[b, :m] = values[b]
        if out_tok is not None and gene_token is not None:
            out_tok[b, :m] = gene_token[b]
    return TokenBatch(
        torch.from_numpy(out_ids),
        torch.from_numpy(mask),
        torch.from_numpy(out_gene),
        None if out_val is None else torch.from_numpy(out_val),
        np.asarray(cell_index),
        None if out_tok is None else torch.from_numpy(out_tok),
    )


def iter_token_batches(chunks, make_cell, pad_id: int, pad_value: float = 0.0) -> Iterator[TokenBatch]:
    """Apply ``make_cell(x (G,), library) -> (ids, gene_index, values | None)`` to every cell of every chunk
    from :func:`iter_cell_chunks` and yield the padded batches (shared by the adapters).

    Raises
    ------
    ValueError
        If a cell yields no token at all (no expressed gene among the selected genes and no special token).
    """
    for rows, X, library in chunks:
        cells = [make_cell(X[b], library[b]) for b in range(len(rows))]
        empty = [int(rows[b]) for b, c in enumerate(cells) if len(c[0]) == 0]
        if empty:
            raise InputError(
                f"cells {empty[:10]} express none of the selected genes and give an empty sequence; "
                "remove them or select more genes"
            )
        ids, genes, vals = zip(*cells)
        yield pad_sequences(list(ids), list(genes), None if vals[0] is None else list(vals), rows, pad_id, pad_value)
