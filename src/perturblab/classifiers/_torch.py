"""Torch views of perturblab's classifiers, for white-box (gradient) attacks.

- :class:`LinearScores`: ``x -> x[:, used] @ W + b`` (scType's raw scores; a linear model's
  decision scores);
- :class:`StandardizedLinear`: CellTypist's prediction (standardise the used genes with the
  model's scaler, values above ``clip`` clipped, then the linear decision scores);
- :class:`PlattLinearSVMs`: one linear SVM per cell type with Platt-scaled probabilities
  (``p_t = sigmoid(-(a_t f_t + b_t))``), returning ``log p_t`` (the SVM classifier's
  :meth:`~perturblab.classifiers.base.CellTypeClassifier.class_scores`);
- :class:`CountsToModelInput` / :func:`torch_preprocess`: a classifier's own preprocessing
  (``normalize_total(1e4)`` over all genes, ``log1p``, gene selection, fit-time z-scoring clipped
  at +-10 for the ``"scaled"`` representation) as a differentiable torch module, so that attacks
  on raw counts differentiate through it.

All modules are in evaluation mode and hold float32 buffers (no trainable parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import InputError
from ._preprocess import CLIP, TARGET_SUM

__all__ = ["CountsToModelInput", "LinearScores", "PlattLinearSVMs", "StandardizedLinear", "torch_preprocess"]


def _nn():
    from torch import nn

    return nn


if TYPE_CHECKING:
    from torch.nn import Module as _Module
else:
    _Module = _nn().Module


def _buffer(x, dtype=None):
    import torch

    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype or torch.float32)


class LinearScores(_Module):
    """``scores = x[:, used] @ W + bias`` (cells x classes).

    Parameters
    ----------
    used
        Column indices of the model input that enter the scores.
    W
        ``len(used) x n_classes`` weights.
    bias
        ``n_classes`` intercepts (default 0).
    """

    def __init__(self, used, W, bias=None):
        super().__init__()
        W = np.asarray(W, dtype=np.float32)
        self.register_buffer("used", _buffer(np.asarray(used, dtype=np.int64), dtype=_long()))
        self.register_buffer("W", _buffer(W))
        self.register_buffer("bias", _buffer(np.zeros(W.shape[1]) if bias is None else np.asarray(bias, np.float32)))
        self.eval()

    def forward(self, x):
        return x.index_select(1, self.used) @ self.W + self.bias


class StandardizedLinear(_Module):
    """CellTypist's decision scores: ``z = (x[:, used] - mean) / scale``, ``z[z > clip] = clip``,
    ``scores = z @ coef.T + intercept``."""

    def __init__(self, used, mean, scale, coef, intercept, clip: float = CLIP):
        super().__init__()
        self.register_buffer("used", _buffer(np.asarray(used, dtype=np.int64), dtype=_long()))
        self.register_buffer("mean", _buffer(np.asarray(mean, np.float32)))
        self.register_buffer("scale", _buffer(np.asarray(scale, np.float32)))
        self.register_buffer("coef", _buffer(np.asarray(coef, np.float32).T))
        self.register_buffer("intercept", _buffer(np.asarray(intercept, np.float32)))
        self.clip = float(clip)
        self.eval()

    def forward(self, x):
        import torch

        z = (x.index_select(1, self.used) - self.mean) / self.scale
        z = torch.clamp(z, max=self.clip)
        return z @ self.coef + self.intercept


class PlattLinearSVMs(_Module):
    """One linear SVM per class with Platt scaling; returns log-probabilities (cells x classes).

    Class ``t`` reads the model-input columns ``idx[t]``: ``f_t = x[:, idx_t] @ w_t + c_t`` and
    ``log p_t = log sigmoid(-(a_t f_t + b_t))`` (scikit-learn's ``_SigmoidCalibration``).
    """

    def __init__(self, idx: list, w: list, c, a, b):
        super().__init__()
        n = len(idx)
        width = max(len(i) for i in idx)
        Im = np.zeros((n, width), dtype=np.int64)
        Wm = np.zeros((n, width), dtype=np.float32)
        for t in range(n):  # padded gather: unused slots read column 0 with weight 0
            Im[t, : len(idx[t])] = idx[t]
            Wm[t, : len(idx[t])] = w[t]
        self.register_buffer("idx", _buffer(Im, dtype=_long()))
        self.register_buffer("w", _buffer(Wm))
        self.register_buffer("c", _buffer(np.asarray(c, np.float32)))
        self.register_buffer("a", _buffer(np.asarray(a, np.float32)))
        self.register_buffer("b", _buffer(np.asarray(b, np.float32)))
        self.eval()

    def forward(self, x):
        import torch.nn.functional as F

        f = (x[:, self.idx] * self.w).sum(dim=2) + self.c  # cells x classes
        return F.logsigmoid(-(self.a * f + self.b))


class CountsToModelInput(_Module):
    """Raw counts (cells x all genes of the dataset) -> a classifier's model input, differentiably.

    ``normalize_total(1e4)`` with the library size over **all** columns (as
    :func:`perturblab.classifiers._preprocess.log1p_matrix`), ``log1p``, the classifier's genes
    (``cols``), then for the ``"scaled"`` representation ``(x - mean) / std`` clipped at +-10.

    ``library_size`` (optional, cells) replaces the per-cell column sums: an attack that keeps the
    library size fixed passes the unmodified sums (and keeps the counts summing to them).
    """

    def __init__(self, cols, representation: str, mean=None, std=None):
        super().__init__()
        if representation not in ("log1p", "scaled"):
            raise InputError(f"representation {representation!r} has no torch preprocessing; use 'log1p' or 'scaled'")
        self.register_buffer("cols", _buffer(np.asarray(cols, dtype=np.int64), dtype=_long()))
        self.scaled = representation == "scaled"
        if self.scaled:
            self.register_buffer("mean", _buffer(np.asarray(mean, np.float32)))
            self.register_buffer("std", _buffer(np.asarray(std, np.float32)))
        self.eval()

    def forward(self, counts, library_size=None):
        import torch

        lib = counts.sum(dim=1, keepdim=True) if library_size is None else library_size.reshape(-1, 1)
        lib = torch.where(lib > 0, lib, torch.ones_like(lib))
        x = torch.log1p(counts.index_select(1, self.cols) * (TARGET_SUM / lib))
        if self.scaled:
            x = torch.clamp((x - self.mean) / self.std, -CLIP, CLIP)
        return x


def torch_preprocess(classifier, var_names) -> CountsToModelInput:
    """The preprocessing of fitted ``classifier`` from raw counts with columns ``var_names``.

    Parameters
    ----------
    classifier
        A fitted classifier with ``genes_`` and ``representation`` ``"log1p"`` or ``"scaled"``
        (then with the fit-time ``scaler_``).
    var_names
        Genes of the count matrix (all genes of the dataset; the library size sums over them).

    Raises
    ------
    InputError
        If some of ``classifier.genes_`` are not in ``var_names`` or the representation has no
        torch preprocessing.
    """
    names = np.asarray(var_names).astype(str)
    pos = {g: i for i, g in enumerate(names)}
    genes = np.asarray(classifier.genes_).astype(str)
    missing = [g for g in genes if g not in pos]
    if missing:
        raise InputError(
            f"{len(missing)} of the classifier's genes are not among the count matrix's genes "
            f"(e.g. {missing[:5]}); pass counts with every gene the classifier was fitted on"
        )
    rep = getattr(classifier, "representation", "log1p")
    scaler = getattr(classifier, "scaler_", None)
    return CountsToModelInput([pos[g] for g in genes], rep, getattr(scaler, "mean", None), getattr(scaler, "std", None))


def _long():
    import torch

    return torch.int64
