"""A TopK sparse autoencoder on one layer's residual stream, and its feature -> gene-set edges.

Sparse autoencoders (SAEs) decompose a model's hidden states into many sparsely active features, which are
often more interpretable than attention heads. sae-lens (the well-kept library) trains SAEs through
TransformerLens hooks on language-model token datasets; gene-token models are neither, so a small TopK SAE
(Gao et al. 2024, "Scaling and evaluating sparse autoencoders") is implemented here in torch:

* encoder ``z = TopK(W_enc (x - b_dec) + b_enc)`` (the ``k`` largest pre-activations kept, then ReLU), decoder
  ``x_hat = W_dec z + b_dec`` with unit-norm decoder rows (re-normalised after every step), ``b_dec``
  initialised at the mean; loss = mean squared error; Adam. The auxiliary dead-latent loss of Gao et al. is
  left out (small SAEs here); dead features are reported (``dead_fraction``).
* training data: the residual stream after layer ``l`` (hidden state ``l + 1``) at every token of a gene under
  study, over cells (:func:`collect_residuals`, a seeded sample of at most ``max_tokens`` tokens).

Interpretation: the feature x gene matrix (mean activation of each feature on each gene's tokens,
:func:`feature_gene_matrix`); feature -> gene-set edges by a hypergeometric test of each feature's top genes
against each gene set (:func:`feature_gene_set_edges`, BH over all pairs); and gene x gene edges, the cosine
similarity of the genes' feature profiles (:func:`sae_edge_scores`), for the usual evaluations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError
from ._types import Genes
from .edges import EdgeScores
from .embedding_edges import cosine_matrix
from .models.base import GeneTokenModel
from .registry_rows import registry_row

__all__ = [
    "SAE_DEFAULTS",
    "SAEResult",
    "TopKSAE",
    "collect_residuals",
    "feature_gene_matrix",
    "feature_gene_set_edges",
    "feature_gene_set_rows",
    "sae_edge_scores",
    "sae_gene_set_null",
    "train_sae",
]

#: Defaults of the SAE analysis: the layer (-1: last), dictionary size as a multiple of d_model, k, training.
SAE_DEFAULTS = {"layer": -1, "expansion": 4, "k": 8, "max_tokens": 50_000, "epochs": 20, "lr": 1e-3,
                "batch_size": 1024, "top_genes": 20}


def _torch_module():
    import torch
    from torch import nn

    class _TopKSAE(nn.Module):
        def __init__(self, d: int, n_features: int, k: int):
            super().__init__()
            self.k = k
            self.W_enc = nn.Parameter(torch.empty(n_features, d))
            self.b_enc = nn.Parameter(torch.zeros(n_features))
            self.W_dec = nn.Parameter(torch.empty(n_features, d))
            self.b_dec = nn.Parameter(torch.zeros(d))
            nn.init.kaiming_uniform_(self.W_dec)
            with torch.no_grad():
                self.W_dec.copy_(self.W_dec / self.W_dec.norm(dim=1, keepdim=True))
                self.W_enc.copy_(self.W_dec)

        def encode(self, x):
            pre = (x - self.b_dec) @ self.W_enc.T + self.b_enc
            val, idx = pre.topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter_(-1, idx, torch.relu(val))

        def forward(self, x):
            z = self.encode(x)
            return z @ self.W_dec + self.b_dec, z

    return _TopKSAE


class TopKSAE:
    """A trained TopK sparse autoencoder (wraps the torch module; see the module docstring).

    Attributes
    ----------
    module
        The ``torch.nn.Module`` (``W_enc (F, d)``, ``b_enc (F,)``, ``W_dec (F, d)``, ``b_dec (d,)``).
    k
        Active features per input.
    """

    def __init__(self, d: int, n_features: int, k: int, random_state: int = 0):
        import torch

        if not 1 <= k <= n_features:
            raise InputError(f"need 1 <= k <= n_features, got k={k}, n_features={n_features}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            self.module = _torch_module()(d, n_features, k)
        self.k, self.n_features, self.d = k, n_features, d

    def encode(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """``(n, F)`` float32 feature activations of inputs ``X (n, d)``."""
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, X.shape[0], batch_size):
                out.append(self.module.encode(torch.as_tensor(X[i : i + batch_size], dtype=torch.float32)).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_features), np.float32)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """``(n, d)`` reconstructions."""
        import torch

        with torch.no_grad():
            return self.module(torch.as_tensor(X, dtype=torch.float32))[0].numpy()


@dataclass
class SAEResult:
    """:func:`train_sae`'s result: the SAE and its training history (``epoch, mse, fvu, dead_fraction``)."""

    sae: TopKSAE
    history: pd.DataFrame


def collect_residuals(model: GeneTokenModel, adata, genes: Genes, layer: int = -1, max_tokens: int = 50_000,
                      batch_size: int = 32, random_state: int = 0, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Residual-stream vectors after ``layer`` at the tokens of the genes under study.

    Returns
    -------
    (X ``(n, d_model)`` float32, gene_index ``(n,)`` int: position in ``genes``). At most ``max_tokens`` tokens,
    a seeded uniform sample (reservoir over batches, so memory stays ``max_tokens x d_model``).
    """
    import torch

    from .._device import get_device

    lay = model.check_layers([layer % model.n_layers])[0]
    if device is not None:
        model.device = get_device(device)
        model.network.to(model.device)
    rng = np.random.default_rng(random_state)
    X = np.zeros((0, model.d_model), np.float32)
    gi_all = np.zeros(0, np.int64)
    keys = np.zeros(0)
    with torch.no_grad():
        for batch in model.tokenize(adata, genes, batch_size=batch_size):
            batch = batch.to(model.device)
            h = model.forward(batch, output_attentions=False, stop_after=lay).hidden_states[lay + 1]
            sel = batch.gene_index >= 0
            x = h[sel].float().cpu().numpy()
            g = batch.gene_index[sel].cpu().numpy()
            k = rng.random(g.size)  # random keys: keeping the max_tokens smallest is a uniform sample
            X, gi_all, keys = np.vstack([X, x]), np.concatenate([gi_all, g]), np.concatenate([keys, k])
            if keys.size > max_tokens:
                keep = np.argpartition(keys, max_tokens)[:max_tokens]
                X, gi_all, keys = X[keep], gi_all[keep], keys[keep]
    order = np.argsort(keys, kind="stable")
    return X[order], gi_all[order]


def train_sae(X: np.ndarray, n_features: int | None = None, k: int = 8, epochs: int = 20, lr: float = 1e-3,
              batch_size: int = 1024, expansion: int = 4, random_state: int = 0) -> SAEResult:
    """Train a :class:`TopKSAE` on vectors ``X (n, d)`` (e.g. :func:`collect_residuals`).

    Parameters
    ----------
    n_features
        Dictionary size (default ``expansion * d``).
    k
        Active features per input.
    epochs, lr, batch_size
        Adam on shuffled mini-batches (seeded).
    random_state
        Seed of the initialisation and the batch order.

    Returns
    -------
    SAEResult, with ``history``: ``epoch, mse, fvu`` (fraction of variance unexplained) and ``dead_fraction``
    (features never active in that epoch).
    """
    import torch

    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] < 2:
        raise InputError(f"X must be (n >= 2, d), got {X.shape}")
    d = X.shape[1]
    sae = TopKSAE(d, n_features or expansion * d, k, random_state=random_state)
    m = sae.module
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        m.b_dec.copy_(Xt.mean(0))
    var = float(((Xt - Xt.mean(0)) ** 2).sum(1).mean())
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(random_state)
    rows = []
    for epoch in range(epochs):
        perm = torch.randperm(Xt.shape[0], generator=gen)
        sse, fired = 0.0, torch.zeros(sae.n_features, dtype=torch.bool)
        for i in range(0, Xt.shape[0], batch_size):
            xb = Xt[perm[i : i + batch_size]]
            xh, z = m(xb)
            loss = ((xh - xb) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                m.W_dec /= m.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-12)
            sse += float(loss.detach()) * xb.shape[0]
            fired |= (z > 0).any(0)
        mse = sse / Xt.shape[0]
        rows.append({"epoch": epoch, "mse": mse / d, "fvu": mse / var if var > 0 else np.nan,
                     "dead_fraction": float((~fired).float().mean())})
    return SAEResult(sae, pd.DataFrame(rows))


def feature_gene_matrix(sae: TopKSAE, X: np.ndarray, gene_index: np.ndarray, n_genes: int) -> np.ndarray:
    """``(G, F)`` mean activation of each feature over each gene's tokens (0 for genes without tokens)."""
    Z = sae.encode(X)
    gi = np.asarray(gene_index, dtype=np.int64)
    sums = np.zeros((n_genes, Z.shape[1]))
    np.add.at(sums, gi, Z)
    counts = np.bincount(gi, minlength=n_genes)[:, None]
    return sums / np.maximum(counts, 1)


def feature_gene_set_edges(feature_gene: np.ndarray, genes: Genes, gene_sets: pd.DataFrame,
                           top_genes: int = 20, min_size: int = 5, max_size: int = 300,
                           alpha: float = 0.05) -> pd.DataFrame:
    """Feature -> gene-set edges: hypergeometric enrichment of each feature's top genes in each gene set.

    Parameters
    ----------
    feature_gene
        ``(G, F)`` from :func:`feature_gene_matrix`.
    genes
        ``(G,)`` gene names (the universe).
    gene_sets
        ``gene_set, gene`` table (:func:`perturblab.datasets.gene_sets`), restricted here to ``genes``; sets of
        ``min_size`` to ``max_size`` genes are tested.
    top_genes
        Genes with the largest mean activation per feature (only genes with activation > 0 count).
    alpha
        FDR level of ``significant``.

    Returns
    -------
    One row per (feature, set) with at least one overlapping gene: ``feature, gene_set, set_size, n_top, overlap,
    expected, odds_ratio`` (with 0.5 added to every cell), ``p`` (hypergeometric upper tail), ``q`` (BH over every
    feature x set pair tested, overlaps of 0 included with p = 1), ``significant``; sorted by ``p``.
    """
    from scipy.stats import hypergeom
    from statsmodels.stats.multitest import multipletests

    if {"gene_set", "gene"} - set(gene_sets.columns):
        raise MissingKeyError("gene-set table needs columns 'gene_set' and 'gene'")
    genes = np.asarray(genes).astype(str)
    A = np.asarray(feature_gene, dtype=float)
    if A.shape[0] != genes.size:
        raise InputError(f"feature_gene has {A.shape[0]} rows for {genes.size} genes")
    pos = {g: i for i, g in enumerate(genes)}
    s = gene_sets.astype(str).drop_duplicates()
    s = s[s["gene"].isin(pos)]
    size = s.groupby("gene_set")["gene"].transform("size")
    s = s[(size >= min_size) & (size <= max_size)]
    names = np.array(sorted(s["gene_set"].unique()))
    if names.size == 0:
        raise InputError(f"no gene set has {min_size}-{max_size} genes among the {genes.size} genes")
    M = np.zeros((genes.size, names.size), dtype=bool)
    M[s["gene"].map(pos).to_numpy(), np.searchsorted(names, s["gene_set"].to_numpy())] = True
    F = A.shape[1]
    top = np.zeros((genes.size, F), dtype=bool)
    order = np.argsort(-A, axis=0, kind="stable")[:top_genes]
    for f in range(F):
        idx = order[:, f]
        idx = idx[A[idx, f] > 0]
        top[idx, f] = True
    n_top = top.sum(0)
    overlap = top.T.astype(int) @ M.astype(int)  # (F, S)
    set_size = M.sum(0)
    N = genes.size
    p = hypergeom.sf(overlap - 1, N, set_size[None, :], n_top[:, None])
    p = np.where(n_top[:, None] > 0, p, 1.0)
    q = multipletests(p.ravel(), method="fdr_bh")[1].reshape(p.shape)
    fi, si = np.nonzero(overlap > 0)
    a = overlap[fi, si] + 0.5
    b = n_top[fi] - overlap[fi, si] + 0.5
    c = set_size[si] - overlap[fi, si] + 0.5
    d = N - n_top[fi] - set_size[si] + overlap[fi, si] + 0.5
    out = pd.DataFrame({"feature": fi, "gene_set": names[si], "set_size": set_size[si], "n_top": n_top[fi],
                        "overlap": overlap[fi, si], "expected": n_top[fi] * set_size[si] / N,
                        "odds_ratio": a * d / (b * c), "p": p[fi, si], "q": q[fi, si]})
    out["significant"] = out["q"] < alpha
    out.attrs["n_tests"] = int(p.size)
    return out.sort_values(["p", "feature"]).reset_index(drop=True)


def feature_gene_set_rows(table: pd.DataFrame, n_null_significant: Sequence[int] | None = None) -> list[dict]:
    """Registry row of :func:`feature_gene_set_edges` (exploratory): are more (feature, set) pairs significant than
    under gene-label permutations? ``n_null_significant``: the number of significant pairs in each permutation
    (see :func:`sae_gene_set_null`); without it, one row with the best pair's BH q is returned."""
    n_sig = int(table["significant"].sum()) if len(table) else 0
    if n_null_significant is not None and len(n_null_significant):
        null = np.asarray(n_null_significant)
        p = (1 + np.sum(null >= n_sig)) / (1 + null.size)
        return [registry_row("SAE features", "SAE features are enriched for gene sets beyond gene-label permutations",
                             "permutation of gene labels", p, n_sig, int(table.attrs.get("n_tests", len(table))),
                             effect="significant (feature, set) pairs", statistic=float(null.mean()))]
    best = table.iloc[0] if len(table) else None
    return [registry_row("SAE features", "some SAE feature is enriched for a gene set", "hypergeometric, BH",
                         best["q"] if best is not None else np.nan, n_sig, int(table.attrs.get("n_tests", len(table))),
                         effect="significant (feature, set) pairs")]


def sae_gene_set_null(feature_gene: np.ndarray, genes: Genes, gene_sets: pd.DataFrame, n_perm: int = 20,
                      random_state: int = 0, **kwargs) -> np.ndarray:
    """Number of significant (feature, set) pairs when the gene labels of ``feature_gene`` are permuted."""
    rng = np.random.default_rng(random_state)
    genes = np.asarray(genes).astype(str)
    return np.array([int(feature_gene_set_edges(feature_gene, genes[rng.permutation(genes.size)], gene_sets,
                                                **kwargs)["significant"].sum()) for _ in range(n_perm)])


def sae_edge_scores(feature_gene: np.ndarray, genes: Genes, layer: int | None = None) -> EdgeScores:
    """Gene x gene edge scores: cosine similarity of the genes' SAE feature profiles (kind ``"sae"``)."""
    name = "SAE feature similarity" + (f" L{layer}" if layer is not None else "")
    return EdgeScores(name, cosine_matrix(feature_gene), np.asarray(genes).astype(str), "sae", layer, None)
