"""A cell-type annotator fine-tuned from a gene-token transformer: the audit's seventh classifier.

A stand-in for scGPT / Geneformer annotators (Cui et al. 2024; Theodoris et al. 2023), small enough to attack on a
CPU: perturblab's own gene-token transformer (:class:`perturblab.interpret.models.OwnGeneTransformer`) over a panel
of the most variable genes, pretrained by masked expression modelling on the data at hand
(:func:`perturblab.interpret.train_masked_expression`, as scGPT's masked value prediction), then fine-tuned end to end
with a linear classification head on the ``<cls>`` token (cross-entropy), as scGPT's cell-type annotation
fine-tuning. Every gene of the panel is a token (zeros included), so the model input is the panel's log1p
expression and the annotator is a differentiable function of it (:meth:`TransformerAnnotator.torch_module`): FGSM and
PGD attack it, and so do the single-gene, max-change and CGD attacks (per-cell logits).

A real checkpoint enters through the interpret wing's adapters (:func:`perturblab.interpret.models.load_model`):
``TransformerAnnotator(checkpoint=PATH, checkpoint_kind="own")`` fine-tunes a saved own model (no pretraining),
differentiably; ``checkpoint_kind="geneformer"`` / ``"scgpt"`` (or ``"auto"``) train a linear head on the adapter's
frozen cell embeddings (Geneformer's rank tokens are not a differentiable function of expression, so those annotators
take raw counts, are attacked by the black-box attacks only, and ``torch_module`` is absent).

Importing :mod:`perturblab.bridges` registers the class as the classifier ``"transformer"``.
"""

from __future__ import annotations

import logging

import numpy as np

from .._device import torch_threads
from ..classifiers._preprocess import log1p_matrix, model_input
from ..classifiers.base import CellTypeClassifier
from ..exceptions import InputError

__all__ = ["TransformerAnnotator"]

log = logging.getLogger(__name__)




def _module_class():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class AnnotatorModule(nn.Module):
        """Panel log1p expression (cells x genes, float32) -> logits: ``<cls>`` + one token per panel gene with
        its value, the backbone's encoder layers and final norm, a linear head on ``<cls>``.

        The layers are run with the backbone's own weights through ``scaled_dot_product_attention`` (the same
        function as :class:`~perturblab.interpret.models.layers.EncoderLayer`, without materialising the attention
        weights, which only the interpretability analyses need; dropout is not applied)."""

        def __init__(self, backbone, gene_ids, n_classes: int):
            super().__init__()
            self.backbone = backbone
            self.register_buffer("ids", torch.as_tensor(np.concatenate([[1], gene_ids]), dtype=torch.int64))
            self.head = nn.Linear(backbone.norm.normalized_shape[0], n_classes)

        def _layer(self, layer, x, cls_only: bool = False):
            """One encoder layer; with ``cls_only`` only the ``<cls>`` row is computed (queries of the other
            tokens are not needed after the last layer): O(S d^2) instead of O(S^2 d) per cell."""
            att = layer.self_attn
            B, S, d = x.shape
            H, dh = att.n_heads, att.d_head
            W, b = att.in_proj_weight, att.in_proj_bias

            def attn(h):
                kv = F.linear(h, W[d:], b[d:]).view(B, S, 2, H, dh)
                k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
                hq = h[:, :1] if cls_only else h
                q = F.linear(hq, W[:d], b[:d]).view(B, hq.shape[1], H, dh).transpose(1, 2)
                ctx = F.scaled_dot_product_attention(q, k, v)
                return att.out_proj(ctx.transpose(1, 2).reshape(B, hq.shape[1], d))

            def ff(h):
                return layer.linear2(F.relu(layer.linear1(h)))

            rows = x[:, :1] if cls_only else x
            if layer.norm_first:
                rows = rows + attn(layer.norm1(x))
                return rows + ff(layer.norm2(rows))
            rows = layer.norm1(rows + attn(x))
            return layer.norm2(rows + ff(rows))

        def forward(self, x):
            b = x.shape[0]
            values = torch.cat([x.new_zeros(b, 1), x], dim=1)
            hidden = self.backbone.embed(self.ids.unsqueeze(0).expand(b, -1), values)
            last = len(self.backbone.layers) - 1
            for i, layer in enumerate(self.backbone.layers):
                hidden = self._layer(layer, hidden, cls_only=i == last)
            return self.head(self.backbone.norm(hidden[:, 0]))

    return AnnotatorModule


class TransformerAnnotator(CellTypeClassifier):
    """Gene-token transformer fine-tuned as a cell-type classifier (see the module docstring).

    Input representation: ``"log1p"`` (``normalize_total(1e4)`` over all genes of the AnnData, ``log1p``) of the
    gene panel ``genes_``; ``fit`` and ``preprocess`` take raw counts. ``class_scores`` are the logits (``score_kind
    "logit"``).

    Parameters
    ----------
    n_genes
        Gene panel: the most variable genes of the training data (log1p variance; 200).
    d_model, n_heads, n_layers, d_ff
        Transformer size (16, 2, 1, 32: small enough that an exhaustive single-gene attack of a few hundred cells
        takes seconds on a CPU).
    pretrain_epochs
        Masked-expression pretraining epochs on the training cells (2; 0: none).
    epochs, batch_size, learning_rate
        Fine-tuning (AdamW; 15 epochs, batches of 64, 3e-3).
    checkpoint, checkpoint_kind
        Optional pretrained model (see the module docstring): a path for
        :func:`perturblab.interpret.models.load_model` and its kind (``"own"``, ``"geneformer"``, ``"scgpt"``,
        ``"auto"``).
    random_state
        Seeds initialisation, masking, batch order and dropout (same seed, same weights on CPU).
    n_threads
        Torch CPU threads while training (1, as the MLP: float sums then do not depend on the machine's cores).
    device
        ``None``/``"auto"``, ``"cpu"`` or ``"cuda"``.

    Examples
    --------
    >>> import perturblab as plab
    >>> import perturblab.bridges  # registers "transformer"
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.get_classifier("transformer", epochs=3).fit(train, "cell_type")  # doctest: +SKIP
    >>> plab.attack.whitebox_attack(clf, clf.preprocess(test), test.obs["cell_type"], "NK", k=5)  # doctest: +SKIP
    """

    representation = "log1p"
    score_kind = "logit"
    #: Exhaustive single-gene search up to this many stacked rows (genes x cluster cells); see
    #: :func:`perturblab.audit.units.choose_mode`.
    row_budget = 120_000

    def __init__(self, n_genes: int = 200, d_model: int = 16, n_heads: int = 2, n_layers: int = 1, d_ff: int = 32,
                 pretrain_epochs: int = 2, epochs: int = 15, batch_size: int = 64, learning_rate: float = 3e-3,
                 checkpoint=None, checkpoint_kind: str = "own", random_state: int = 0, n_threads: int | None = 1,
                 device=None):
        self.n_genes, self.d_model, self.n_heads, self.n_layers, self.d_ff = n_genes, d_model, n_heads, n_layers, d_ff
        self.pretrain_epochs, self.epochs, self.batch_size = pretrain_epochs, epochs, batch_size
        self.learning_rate = learning_rate
        self.checkpoint, self.checkpoint_kind = checkpoint, checkpoint_kind
        self.random_state, self.n_threads, self.device = random_state, n_threads, device

    # -- protocol ----------------------------------------------------------------------------------
    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> the panel's log1p expression (float32, cells x ``genes_``); raw counts of the panel
        for a frozen Geneformer / scGPT backbone."""
        if getattr(self, "frozen_", False):
            from .._validation import to_dense
            from ..classifiers._preprocess import gene_indices

            return to_dense(adata.X[:, gene_indices(adata, self.genes_)])
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> TransformerAnnotator:
        """Choose the gene panel, pretrain (masked expression) and fine-tune on raw-count ``adata``.

        Raises
        ------
        InputError
            Fewer than 2 cell types, a panel larger than the data's genes, bad sizes.
        """
        y = self._labels(adata, label_key)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise InputError(f"need at least 2 cell types to train the annotator, got {list(classes)}")
        if self.checkpoint is not None and self.checkpoint_kind != "own":
            return self._fit_frozen(adata, y)
        with torch_threads(self.n_threads):
            backbone = self._backbone(adata)
            self.classes_ = classes.astype(object)
            self._fine_tune(backbone, log1p_matrix(adata, self.genes_), codes)
        return self

    def _panel(self, adata) -> np.ndarray:
        if self.n_genes < 2:
            raise InputError(f"n_genes must be >= 2, got {self.n_genes}")
        L = log1p_matrix(adata)
        n = min(int(self.n_genes), L.shape[1])
        top = np.sort(np.argsort(-L.var(axis=0), kind="stable")[:n])
        return np.asarray(adata.var_names.astype(str))[top]

    def _backbone(self, adata):
        from ..interpret.models import OwnGeneTransformer, load_model
        from ..interpret.training import train_masked_expression

        if self.checkpoint is not None:
            own = load_model("own", self.checkpoint, device="cpu")
            known = set(own.genes.tolist())
            genes = [g for g in self._panel(adata) if g in known] if self.n_genes else list(own.genes)
            if len(genes) < 2:
                raise InputError("fewer than 2 of the data's most variable genes are in the checkpoint's vocabulary; "
                                 "raise n_genes or use data with the checkpoint's gene names")
            self.genes_ = np.asarray(genes)
            self.gene_ids_ = np.array([own._gene_id[g] for g in genes], dtype=np.int64)
            return own.network
        self.genes_ = self._panel(adata)
        own = OwnGeneTransformer(self.genes_, d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers,
                                 d_ff=self.d_ff, include_zero_genes=True, random_state=self.random_state,
                                 device="cpu")
        if self.pretrain_epochs:
            hist = train_masked_expression(own, adata, genes=self.genes_, epochs=int(self.pretrain_epochs),
                                           batch_size=self.batch_size, random_state=self.random_state,
                                           progress=False).history
            self.pretrain_history_ = hist
        self.gene_ids_ = np.array([own._gene_id[g] for g in self.genes_], dtype=np.int64)
        return own.network

    def _fine_tune(self, backbone, X: np.ndarray, codes: np.ndarray) -> None:
        import torch

        from .._device import get_device

        device = get_device(self.device)
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(self.random_state)
            net = _module_class()(backbone, self.gene_ids_, len(self.classes_)).to(device)
            opt = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=0.01)
            Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)
            yt = torch.from_numpy(codes.astype(np.int64)).to(device)
            gen = torch.Generator().manual_seed(self.random_state)
            loss_fn = torch.nn.CrossEntropyLoss()
            losses = []
            net.train()
            for _ in range(int(self.epochs)):
                order = torch.randperm(len(yt), generator=gen).to(device)
                total = 0.0
                for s in range(0, len(yt), self.batch_size):
                    batch = order[s:s + self.batch_size]
                    opt.zero_grad()
                    loss = loss_fn(net(Xt[batch]), yt[batch])
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(batch)
                losses.append(total / len(yt))
        net.eval()
        self.net_, self.device_, self.loss_history_ = net, device, losses

    def _fit_frozen(self, adata, y):
        """A linear head on a frozen Geneformer / scGPT adapter's cell embeddings (raw-count input)."""
        from sklearn.linear_model import LogisticRegression

        from ..interpret.models import load_model

        self.frozen_ = True
        self.backbone_ = load_model(self.checkpoint_kind, self.checkpoint, device=self.device)
        match = self.backbone_.match_genes(adata, np.asarray(adata.var_names.astype(str)))
        self.genes_ = np.asarray(match.kept)
        self.representation = "counts"
        self.score_kind = "decision_function"
        self.head_ = LogisticRegression(max_iter=1000).fit(self._embed(self.preprocess(adata)), y)
        self.classes_ = np.asarray(self.head_.classes_).astype(object)
        return self

    def _embed(self, C: np.ndarray) -> np.ndarray:
        import anndata as ad
        import pandas as pd

        a = ad.AnnData(np.asarray(C, dtype=np.float32), var=pd.DataFrame(index=self.genes_))
        return self.backbone_.cell_embeddings(a, self.genes_)

    # -- scoring -----------------------------------------------------------------------------------
    def logits(self, X: np.ndarray, batch: int = 2048) -> np.ndarray:
        """Logits (cells x classes, float64) of model input ``X``."""
        import torch

        X = self._check_input(X)
        if getattr(self, "frozen_", False):
            return np.asarray(self.head_.decision_function(self._embed(X)), dtype=np.float64).reshape(len(X), -1)
        out = []
        with torch.no_grad():
            for s in range(0, X.shape[0], batch):
                out.append(self.net_(torch.from_numpy(X[s:s + batch]).to(self.device_)).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.classes_)))

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: the logits."""
        return self.logits(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Softmax of the logits (cells x classes)."""
        L = self.logits(X)
        L = np.exp(L - L.max(axis=1, keepdims=True))
        return L / L.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Argmax of the logits."""
        return self.classes_[np.argmax(self.logits(X), axis=1)]

    def single_gene_scorer(self, Xc: np.ndarray, gene_idx: np.ndarray, V: np.ndarray):
        """Fast exhaustive single-gene scoring (the attack engine's hook, :mod:`perturblab.attack._fastpath`).

        With one encoder layer read out at ``<cls>``, changing gene ``j`` of a cell changes only token ``j``'s key
        and value in the ``<cls>`` attention, so the softmax sums are updated for that one token (float64,
        max-shifted) instead of running the cell again. Returns ``scores(s, e) -> (genes s:e, cells, classes)``
        logits, or None (several layers, a frozen backbone: the engine then scores the stacked variants).
        """
        import torch

        net = self.__dict__.get("net_")
        if net is None or len(net.backbone.layers) != 1 or not net.backbone.layers[0].norm_first:
            return None
        bb, layer = net.backbone, net.backbone.layers[0]
        att = layer.self_attn
        d, H, dh = att.out_proj.in_features, att.n_heads, att.d_head
        dev = next(net.parameters()).device

        def f64(t):
            return t.detach().to(dev, torch.float64)

        W, b = f64(att.in_proj_weight), f64(att.in_proj_bias)

        def embed(ids, values):  # (n, T) ids/values -> normed tokens (n, T, d), float64
            with torch.no_grad():
                e = bb.embed(ids.to(dev), values.to(dev, torch.float32)).to(torch.float64)
            return torch.nn.functional.layer_norm(e, (d,), f64(layer.norm1.weight), f64(layer.norm1.bias),
                                                  layer.norm1.eps), e

        Xt = torch.from_numpy(np.ascontiguousarray(Xc, dtype=np.float32))
        n = Xt.shape[0]
        ids = net.ids.cpu()
        h, raw = embed(ids.unsqueeze(0).expand(n, -1), torch.cat([Xt.new_zeros(n, 1), Xt], dim=1))
        q = (h[:, :1] @ W[:d].T + b[:d]).view(n, H, dh)  # <cls> query (the same for every cell)
        kv = (h @ W[d:].T + b[d:]).view(n, -1, 2, H, dh)
        k, v = kv[:, :, 0], kv[:, :, 1]  # (n, S, H, dh)
        scale = dh ** -0.5
        sc = torch.einsum("nhd,nshd->nsh", q, k) * scale  # (n, S, H)
        m = sc.max(dim=1).values  # (n, H)
        w = torch.exp(sc - m[:, None])
        Z, N = w.sum(dim=1), torch.einsum("nsh,nshd->nhd", w, v)
        x_cls = raw[:, 0]  # residual stream of <cls> (n, d)
        lin = [(f64(mod.weight), f64(mod.bias)) for mod in (att.out_proj, layer.linear1, layer.linear2, net.head)]
        norms = [(f64(nm.weight), f64(nm.bias), nm.eps) for nm in (layer.norm2, bb.norm)]
        gene_idx = np.asarray(gene_idx, dtype=np.int64)
        Vt = torch.from_numpy(np.ascontiguousarray(V, dtype=np.float32))

        def scores(s0, e0):
            pos = torch.from_numpy(gene_idx[s0:e0] + 1)  # token positions (after <cls>)
            g = len(pos)
            new_h, _ = embed(ids[pos].unsqueeze(0).expand(n, -1), Vt[:, s0:e0])
            nkv = (new_h @ W[d:].T + b[d:]).view(n, g, 2, H, dh)
            nk, nv = nkv[:, :, 0], nkv[:, :, 1]
            ns = torch.einsum("nhd,nghd->ngh", q, nk) * scale
            os_, ov = sc[:, pos], v[:, pos]  # old score and value of the changed token
            m2 = torch.maximum(m[:, None], ns)
            shift = torch.exp(m[:, None] - m2)
            wo, wn = torch.exp(os_ - m2), torch.exp(ns - m2)
            Z2 = Z[:, None] * shift - wo + wn
            N2 = N[:, None] * shift[..., None] - wo[..., None] * ov + wn[..., None] * nv
            ctx = (N2 / Z2[..., None]).reshape(n, g, d)
            rows = x_cls[:, None] + ctx @ lin[0][0].T + lin[0][1]
            hh = torch.nn.functional.layer_norm(rows, (d,), *norms[0])
            rows = rows + torch.relu(hh @ lin[1][0].T + lin[1][1]) @ lin[2][0].T + lin[2][1]
            out = torch.nn.functional.layer_norm(rows, (d,), *norms[1]) @ lin[3][0].T + lin[3][1]
            return out.transpose(0, 1).cpu().numpy()

        return scores

    def __getattr__(self, name):
        if name == "torch_module" and "net_" in self.__dict__:
            return self._torch_module
        raise AttributeError(name)

    def _torch_module(self):
        """The annotator (``torch.nn.Module``, evaluation mode): panel log1p expression -> logits."""
        self.net_.eval()
        return self.net_
