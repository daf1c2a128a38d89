"""Transformer encoder layers that return attention weights.

The parameter names are those of :class:`torch.nn.TransformerEncoderLayer` (``self_attn.in_proj_weight``,
``self_attn.in_proj_bias``, ``self_attn.out_proj``, ``linear1``, ``linear2``, ``norm1``, ``norm2``), which is
what scGPT's ``TransformerModel.transformer_encoder.layers.N`` holds, so scGPT state dicts load directly.
PyTorch's stock layer returns no attention weights (its fast path never computes them); this one always
does, per head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...exceptions import InputError

__all__ = ["SelfAttention", "EncoderLayer"]


class SelfAttention(nn.Module):
    """Multi-head self-attention with packed Q/K/V projections (``nn.MultiheadAttention`` layout).

    ``forward(x (B, S, d), key_valid (B, S) bool)`` returns ``(context (B, S, d), weights (B, H, S, S))``;
    the output projection ``out_proj`` is applied by the caller (:class:`EncoderLayer`), so that ablation
    hooks can edit the per-head context before it.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise InputError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        nn.init.xavier_uniform_(self.in_proj_weight)

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """Value projections ``(B, S, d)`` of ``x``."""
        d = x.shape[-1]
        return F.linear(x, self.in_proj_weight[2 * d :], self.in_proj_bias[2 * d :])

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor):
        B, S, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(B, S, 3, self.n_heads, self.d_head).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, S, d_head)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d_head)
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        probs = F.dropout(weights, self.dropout, self.training)
        context = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, d)
        return context, weights


class EncoderLayer(nn.Module):
    """Transformer encoder layer (ReLU feed-forward), post-norm like PyTorch's default and scGPT, or pre-norm.

    Parameters
    ----------
    d_model, n_heads, d_ff
        Width, number of attention heads, feed-forward width.
    dropout
        Dropout of attention probabilities and residual branches (only active in training mode).
    norm_first
        False: ``x = norm1(x + attn(x)); x = norm2(x + ff(x))`` (PyTorch default, scGPT).
        True: ``x = x + attn(norm1(x)); x = x + ff(norm2(x))``.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        self.self_attn = SelfAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def _attn(self, x, key_valid):
        context, _ = self.self_attn(x, key_valid)
        return self.dropout1(self.self_attn.out_proj(context))

    def _ff(self, x):
        return self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x)))))

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attn(self.norm1(x), key_valid)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._attn(x, key_valid))
        return self.norm2(x + self._ff(x))
