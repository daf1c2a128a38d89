"""Causal ablation of attention heads, layers and MLPs, and the ablation experiment of Kendiukhov 2026.

Interventions (context managers; they work for every :class:`~perturblab.interpret.models.GeneTokenModel`
through its hook points):

- :func:`zero_heads` - zero heads ``[(layer, head), ...]``: their slice of the attention context is set to 0
  before the output projection (Geneformer: before ``attention.output.dense``), and their returned attention
  weights are 0, as the ``head_mask`` of transformers 4 did;
- :func:`zero_layer_attention` - all heads of a layer;
- :func:`uniform_attention` - a layer's attention replaced by uniform weights over the cell's tokens;
- :func:`zero_mlp` - a layer's feed-forward branch set to 0.

:func:`fidelity` measures how much an intervention changes the model (hidden-state and output cosine shift);
:func:`ablation_experiment` zeroes top-k / bottom-k / random-k heads of a ranking and whole layers, re-extracts
attention and scores it with a caller-supplied ``evaluate`` (the perturbation AUROC of part B).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack, contextmanager

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError, PerturblabWarning
from .extraction import extract_attention
from .models.base import GeneTokenModel

__all__ = ["zero_heads", "zero_layer_attention", "uniform_attention", "zero_mlp", "fidelity", "ablation_experiment"]

#: Ablation interventions of :func:`ablation_experiment`.
INTERVENTIONS = ("top", "bottom", "random", "layer", "uniform", "mlp")


def _check_heads(model: GeneTokenModel, heads: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        layer, head = int(layer), int(head)
        if not (0 <= layer < model.n_layers and 0 <= head < model.n_heads):
            raise InputError(f"head ({layer}, {head}) invalid: the model has {model.n_layers} layers x {model.n_heads} heads")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


@contextmanager
def _hooks(register: Iterable[Callable[[], object]]):
    handles = [r() for r in register]
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

    return _hooks(
        (lambda m=model.attention_module(lay), h=hook_for(hs): m.register_forward_hook(h)) for lay, hs in by_layer.items()
    )


def zero_layer_attention(model: GeneTokenModel, layer: int):
    """Context manager zeroing every attention head of ``layer``."""
    return zero_heads(model, [(layer, h) for h in range(model.n_heads)])


def uniform_attention(model: GeneTokenModel, layers: int | Iterable[int]):
    """Context manager replacing the attention of ``layers`` by uniform weights over each cell's tokens
    (padding excluded): every query receives the mean of the value vectors."""
    layers = model.check_layers([layers] if np.isscalar(layers) else layers)

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

    return _hooks((lambda m=model.attention_module(lay), h=hook_for(lay): m.register_forward_hook(h)) for lay in layers)


def zero_mlp(model: GeneTokenModel, layers: int | Iterable[int]):
    """Context manager setting the feed-forward (MLP) branch of ``layers`` to 0."""
    layers = model.check_layers([layers] if np.isscalar(layers) else layers)
    hook = lambda module, args, output: output * 0  # noqa: E731
    return _hooks((lambda m=model.mlp_output_module(lay): m.register_forward_hook(hook)) for lay in layers)


def _cosine_shift(a, b, valid) -> np.ndarray:
    """Per cell ``1 - cos`` between ``a`` and ``b`` flattened over valid tokens."""
    import torch

    w = valid.to(a.dtype).view(*valid.shape, *([1] * (a.dim() - 2)))
    a, b = (a * w).flatten(1).double(), (b * w).flatten(1).double()
    return (1 - torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12)).cpu().numpy()


def fidelity(model: GeneTokenModel, adata, genes: Sequence[str], intervention: Callable[[], object],
             batch_size: int = 16) -> tuple[float, float]:
    """How much an intervention changes the model on the same cells.

    Parameters
    ----------
    model, adata, genes
        As for :func:`~perturblab.interpret.extraction.iter_layer_attention`.
    intervention
        Zero-argument callable returning a context manager, e.g. ``lambda: zero_heads(model, [(0, 1)])``.
    batch_size
        Cells per forward.

    Returns
    -------
    (fidelity_hidden, fidelity_output)
        Mean over cells of ``1 - cosine`` between the intact and the ablated model of the last hidden state
        and of the output (logits / predicted expression), each flattened over the cell's tokens. Kendiukhov
        2026 counts an ablation only when the shift exceeds 0.02.
    """
    import torch

    hid, out = [], []
    with torch.no_grad():
        for batch in model.tokenize(adata, genes, batch_size=batch_size):
            batch = batch.to(model.device)
            ref = model.forward(batch, output_attentions=False, output_logits=True)
            with intervention():
                abl = model.forward(batch, output_attentions=False, output_logits=True)
            hid.append(_cosine_shift(ref.hidden_states[-1], abl.hidden_states[-1], batch.attention_mask))
            out.append(_cosine_shift(ref.logits, abl.logits, batch.attention_mask))
    return float(np.concatenate(hid).mean()), float(np.concatenate(out).mean())


def _ranking_list(model: GeneTokenModel, head_ranking) -> list[tuple[int, int]]:
    if isinstance(head_ranking, pd.DataFrame):
        for col in ("layer", "head"):
            if col not in head_ranking.columns:
                raise MissingKeyError(f"head_ranking has no {col!r} column (needs 'layer' and 'head', best first)")
        head_ranking = list(zip(head_ranking["layer"], head_ranking["head"]))
    ranking = [(int(a), int(b)) for a, b in head_ranking]
    _check_heads(model, ranking)
    if len(set(ranking)) != len(ranking):
        raise InputError("head_ranking has duplicate heads")
    return ranking


def ablation_experiment(
    model: GeneTokenModel,
    adata,
    genes: Sequence[str],
    head_ranking,
    evaluate: Callable[[dict], float],
    ks: Sequence[int] = (5, 10, 20, 50),
    n_random_seeds: int = 3,
    layers: Iterable[int] | None = None,
    interventions: Sequence[str] = ("top", "bottom", "random", "layer", "uniform", "mlp"),
    batch_size: int = 16,
    random_state: int = 0,
) -> pd.DataFrame:
    """Zero top-k / bottom-k / random-k heads and whole layers, re-extract attention and re-score it.

    Parameters
    ----------
    model, adata, genes
        As for :func:`~perturblab.interpret.extraction.extract_attention` (e.g. control cells, HVGs).
    head_ranking
        Heads best first: a sequence of ``(layer, head)`` or a DataFrame with ``layer`` and ``head`` columns
        in ranked order (e.g. by reference AUROC per head). Bottom-k = its last k.
    evaluate
        ``evaluate({layer: LayerAttention}) -> float``, e.g. the mean perturbation AUROC (part B).
    ks
        Numbers of heads (values above the ranking's length are skipped with a warning).
    n_random_seeds
        Random-k repetitions (seeds ``random_state + s``).
    layers
        Layers for the layer-level interventions ("layer": zero all heads, "uniform", "mlp"); default all.
    interventions
        Subset of ``("top", "bottom", "random", "layer", "uniform", "mlp")``.
    batch_size
        Cells per forward.
    random_state
        Seed of the random-k head draws.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``intervention`` ("none" for the intact model), ``k`` (heads zeroed; layer-level:
        heads per layer), ``seed`` (random-k; else -1), ``layer`` (layer-level; else -1), ``heads``
        ("L0H1;L2H3"), ``score``, ``fidelity_hidden``, ``fidelity_output``. Paired tests are done by the caller.
    """
    for name in interventions:
        if name not in INTERVENTIONS:
            from ..exceptions import UnknownNameError

            raise UnknownNameError("ablation intervention", name, INTERVENTIONS)
    ranking = _ranking_list(model, head_ranking)
    layer_list = model.check_layers(layers)
    if too_big := [k for k in ks if k > len(ranking) or k < 1]:
        warnings.warn(f"ks {too_big} skipped: the ranking holds {len(ranking)} heads", PerturblabWarning, stacklevel=2)
    ks = [int(k) for k in ks if 1 <= k <= len(ranking)]
    all_heads = [(lay, h) for lay in range(model.n_layers) for h in range(model.n_heads)]

    runs: list[tuple[str, int, int, int, list, Callable]] = [("none", 0, -1, -1, [], None)]
    for k in ks:
        if "top" in interventions:
            runs.append(("top", k, -1, -1, ranking[:k], None))
        if "bottom" in interventions:
            runs.append(("bottom", k, -1, -1, ranking[-k:], None))
        if "random" in interventions:
            for s in range(n_random_seeds):
                pick = np.random.default_rng(random_state + s).choice(len(all_heads), size=k, replace=False)
                runs.append(("random", k, s, -1, [all_heads[i] for i in sorted(pick)], None))
    for lay in layer_list:
        if "layer" in interventions:
            runs.append(("layer", model.n_heads, -1, lay, [(lay, h) for h in range(model.n_heads)], None))
        if "uniform" in interventions:
            runs.append(("uniform", model.n_heads, -1, lay, [], lambda lay=lay: uniform_attention(model, lay)))
        if "mlp" in interventions:
            runs.append(("mlp", 0, -1, lay, [], lambda lay=lay: zero_mlp(model, lay)))

    rows = []
    for name, k, seed, lay, heads, factory in runs:
        if factory is None:
            factory = (lambda heads=heads: zero_heads(model, heads)) if heads else ExitStack
        with factory():
            score = float(evaluate(extract_attention(model, adata, genes, batch_size=batch_size)))
        fid = (0.0, 0.0) if name == "none" else fidelity(model, adata, genes, factory, batch_size=batch_size)
        rows.append({
            "intervention": name, "k": k, "seed": seed, "layer": lay,
            "heads": ";".join(f"L{a}H{b}" for a, b in heads), "score": score,
            "fidelity_hidden": fid[0], "fidelity_output": fid[1],
        })
    return pd.DataFrame(rows)
