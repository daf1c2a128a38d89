"""Interventions on a gene-token transformer, as context managers: zero attention heads or a layer's attention,
make attention uniform, zero the feed-forward (MLP) branch. Used by :mod:`perturblab.interpret.ablation`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..exceptions import InputError
from .models.base import GeneTokenModel

__all__ = ["uniform_attention", "zero_heads", "zero_layer_attention", "zero_mlp"]


def _check_heads(model: GeneTokenModel, heads: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        layer, head = int(layer), int(head)
        if not (0 <= layer < model.n_layers and 0 <= head < model.n_heads):
            raise InputError(f"head ({layer}, {head}) invalid: the model has {model.n_layers} layers x "
                             f"{model.n_heads} heads")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


@contextmanager
def _hooks(register: Iterable[tuple[Any, Callable]]):
    """Register forward hooks ``(module, hook)`` for the duration of the block."""
    handles = [module.register_forward_hook(hook) for module, hook in register]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def zero_heads(model: GeneTokenModel, heads: Iterable[tuple[int, int]]):
    """Context manager zeroing attention heads ``[(layer, head), ...]`` (0-based).

    Raises
    ------
    ValueError
        If a (layer, head) is outside the model.
    """
    by_layer = _check_heads(model, heads)

    def hook_for(hs):
        def hook(module, args, output):
            context, weights = output[0], output[1]
            B, S, D = context.shape
            context = context.view(B, S, model.n_heads, D // model.n_heads).clone()
            context[:, :, hs] = 0
            weights = weights.clone()
            weights[:, hs] = 0
            return (context.view(B, S, D), weights, *output[2:])

        return hook

    return _hooks([(model.attention_module(lay), hook_for(hs)) for lay, hs in by_layer.items()])


def zero_layer_attention(model: GeneTokenModel, layer: int):
    """Context manager zeroing every attention head of ``layer``."""
    return zero_heads(model, [(layer, h) for h in range(model.n_heads)])


def uniform_attention(model: GeneTokenModel, layers: int | Iterable[int]):
    """Context manager replacing the attention of ``layers`` by uniform weights over each cell's tokens
    (padding excluded): every query receives the mean of the value vectors."""
    layers = model.check_layers([int(layers)] if isinstance(layers, int | np.integer) else layers)

    def hook_for(layer):
        def hook(module, args, output):
            valid = model._key_valid
            v = model.value_states(layer, args[0])
            B, S, D = v.shape
            w = valid.to(v.dtype) / valid.sum(1, keepdim=True).to(v.dtype)  # (B, S)
            mean_v = (w.unsqueeze(-1) * v).sum(1, keepdim=True)  # (B, 1, D)
            weights = w[:, None, None, :].expand(B, model.n_heads, S, S)
            return (mean_v.expand(B, S, D).contiguous(), weights.contiguous(), *output[2:])

        return hook

    return _hooks([(model.attention_module(lay), hook_for(lay)) for lay in layers])


def zero_mlp(model: GeneTokenModel, layers: int | Iterable[int]):
    """Context manager setting the feed-forward (MLP) branch of ``layers`` to 0."""
    layers = model.check_layers([int(layers)] if isinstance(layers, int | np.integer) else layers)
    hook = lambda module, args, output: output * 0  # noqa: E731
    return _hooks([(model.mlp_output_module(lay), hook) for lay in layers])
