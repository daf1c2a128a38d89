"""Multilayer-perceptron cell-type classifier (adverSCarial's scMLP), in PyTorch."""

from __future__ import annotations

import numpy as np

from .._device import get_device, torch_threads
from ..exceptions import InputError
from ._preprocess import log1p_matrix, model_input
from .base import CellTypeClassifier

__all__ = ["MLPClassifier"]




def _network(n_genes: int, n_classes: int, dropout: float):
    from torch import nn

    return nn.Sequential(
        nn.Linear(n_genes, 128), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(64, n_classes),
    )


class MLPClassifier(CellTypeClassifier):
    """Dense 128 ReLU - Dropout - Dense 64 ReLU - Dropout - softmax, on log1p-normalised expression.

    As adverSCarial's scMLP (Keras): Adam (learning rate 1e-3), cross-entropy, ``epochs=20``,
    ``batch_size=32``, dropout 0.5. PyTorch initialisation (not Keras' Glorot) is used.
    Training is seeded and deterministic for a given device: weights are initialised and
    batches shuffled under ``random_state`` inside a forked RNG (the global torch RNG is untouched).
    On CPU, training runs with ``n_threads`` torch threads (default 1; the caller's setting is
    restored afterwards): CPU float sums depend on the thread count, so a fixed count makes a
    seed's weights independent of ``torch.get_num_threads()``, and the small batches gain little
    from more threads while oversubscribed cores cost a lot (PBMC3k train half on 2 cores shared
    with other jobs, load average ~7.5: one epoch 12.0 s with 2 threads, 1.5 s with 1; the
    20-epoch fit 21 s with 1 thread, where 2 threads had taken 538 s under heavier load).

    Rank-one access for attacks: the first layer is affine, ``H = X @ W1.T + b1`` with
    ``W1 = first_layer_weight_`` (128 x n_genes). :meth:`hidden1` returns ``H`` (pre-activation);
    :meth:`from_hidden1` maps ``H`` to the class probabilities. Changing gene ``j`` of a cell by
    ``delta`` changes its ``H`` by ``delta * W1[:, j]``, so
    ``from_hidden1(H + delta * W1[:, j])`` scores the modified cells without redoing the
    n_genes-wide product.

    Parameters
    ----------
    epochs, batch_size, learning_rate, dropout
        Training settings (defaults of the paper: 20, 32, 1e-3, 0.5).
    device
        ``None``/``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``.
    n_threads
        Torch CPU threads while training (``torch.set_num_threads``; default 1); ``None`` keeps
        the caller's setting. Prediction is not affected.
    random_state
        Seed of initialisation, shuffling and dropout.
    """

    representation = "log1p"
    standard_preprocess = True
    score_kind = "logit"

    def __init__(self, epochs: int = 20, batch_size: int = 32, learning_rate: float = 1e-3, dropout: float = 0.5,
                 device: str | None = None, random_state: int = 0, n_threads: int | None = 1):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> log1p-normalised float32 matrix (cells x ``genes_``)."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> MLPClassifier:
        """Train on raw-count ``adata`` (cells x genes) with labels in ``adata.obs[label_key]``."""
        import torch

        if self.n_threads is not None and self.n_threads < 1:
            raise InputError(f"n_threads must be >= 1 or None, got {self.n_threads}")
        y = self._labels(adata, label_key)
        X = log1p_matrix(adata)
        classes, codes = np.unique(y, return_inverse=True)
        device = get_device(self.device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.n_threads):
            torch.manual_seed(self.random_state)
            net = _network(X.shape[1], len(classes), self.dropout).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
            Xt = torch.from_numpy(X).to(device)
            yt = torch.from_numpy(codes.astype(np.int64)).to(device)
            gen = torch.Generator().manual_seed(self.random_state)
            loss_fn = torch.nn.CrossEntropyLoss()
            net.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(yt), generator=gen).to(device)
                for start in range(0, len(yt), self.batch_size):
                    batch = order[start:start + self.batch_size]
                    opt.zero_grad()
                    loss_fn(net(Xt[batch]), yt[batch]).backward()
                    opt.step()
        net.eval()
        self.net_ = net
        self.device_ = device
        self.genes_ = np.asarray(adata.var_names.astype(str))
        self.classes_ = classes.astype(object)
        return self

    @property
    def first_layer_weight_(self) -> np.ndarray:
        """``W1`` (128 x n_genes, float32): the first dense layer's weight matrix."""
        self._check_fitted()
        return self.net_[0].weight.detach().cpu().numpy()

    @property
    def first_layer_bias_(self) -> np.ndarray:
        """``b1`` (128,): the first dense layer's bias."""
        self._check_fitted()
        return self.net_[0].bias.detach().cpu().numpy()

    def _run(self, module, A: np.ndarray, batch: int = 4096) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for s in range(0, A.shape[0], batch):
                out.append(module(torch.from_numpy(A[s:s + batch]).to(self.device_)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def hidden1(self, X: np.ndarray) -> np.ndarray:
        """First-layer pre-activations ``H = X @ W1.T + b1`` (n_cells x 128) of model input ``X``."""
        X = self._check_input(X)
        return self._run(self.net_[0], X)

    def from_hidden1(self, H: np.ndarray) -> np.ndarray:
        """Class probabilities (n_cells x n_classes) from first-layer pre-activations ``H`` (n_cells x 128)."""
        import torch

        self._check_fitted()
        H = np.ascontiguousarray(H, dtype=np.float32)
        if H.ndim != 2 or H.shape[1] != self.net_[0].out_features:
            raise InputError(f"H must be n_cells x {self.net_[0].out_features}, got shape {H.shape}")
        rest = torch.nn.Sequential(*list(self.net_)[1:], torch.nn.Softmax(dim=1))
        return self._run(rest, H).astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Softmax class probabilities (n_cells x n_classes) of the log1p model input ``X``."""
        return self.from_hidden1(self.hidden1(X))

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Pre-softmax outputs (n_cells x n_classes, float64) of the log1p model input ``X``."""
        X = self._check_input(X)
        return self._run(self.net_, X).astype(np.float64)

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: the logits (:meth:`logits`). Differs from adverSCarial's scMLP
        wrapper, which hands CGD the softmax probabilities (saturated where one class dominates)."""
        return self.logits(X)

    def torch_module(self):
        """The network (``torch.nn.Module``, evaluation mode): log1p model input -> logits."""
        self._check_fitted()
        self.net_.eval()
        return self.net_
