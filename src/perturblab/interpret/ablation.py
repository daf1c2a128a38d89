"""Causal ablation of attention heads, layers and MLPs, and the ablation experiment of Kendiukhov 2026.

Interventions (context managers; they work for every :class:`~perturblab.interpret.models.GeneTokenModel`
through its hook points):

- :func:`zero_heads` - zero heads ``[(layer, head), ...]``: their slice of the attention context is set to 0
  before the output projection (Geneformer: before ``attention.output.dense``), and their returned attention
  weights are 0, as the ``head_mask`` of transformers 4 did;
- :func:`zero_layer_attention` - all heads of a layer;
- :func:`uniform_attention` - a layer's attention replaced by uniform weights over the cell's tokens;
- :func:`zero_mlp` - a layer's feed-forward branch set to 0.

:func:`fidelity` measures how much an intervention changes the model (hidden-state cosine shift per layer and its
maximum, output and cell-embedding shift). :func:`rank_heads` ranks heads by reference AUROC, perturbation AUROC
or both (composite); :func:`ablation_experiment` runs top-k / bottom-k / entropy-matched random-k head ablations
and layer-level interventions and measures **downstream** outcomes, never the attention it replaced:

- the perturbation AUROC (per perturbation, through a caller-supplied ``evaluate``) of the attention of the heads
  *downstream* of the intervention - every head of the layers after the first intervened layer, the intervened
  heads themselves left out - against the intact model's attention over the same heads (zeroing a whole layer
  and re-scoring that layer's attention would give 0.5 mechanically);
- the model's output: masked-expression prediction error per cell (models with a ``<mask>`` value, such as the
  own model; scGPT-style expression decoders: reconstruction error; none for Geneformer's MLM head), output and
  cell-embedding cosine shift;
- fidelity: hidden-state cosine shift per layer, maximum over layers.

:func:`ablation_effects` turns the tables into the quantities of criterion (d) (see :mod:`.stats`).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError, PerturblabWarning, UnknownNameError
from ._types import Genes
from .extraction import LayerAttention, _scatter_batch
from .head_ranking import HEAD_RANKINGS, entropy_matched_heads, rank_heads, regulatory_layers
from .interventions import _check_heads, uniform_attention, zero_heads, zero_layer_attention, zero_mlp
from .models.base import GeneTokenModel

__all__ = [
    "HEAD_RANKINGS",
    "INTERVENTIONS",
    "AblationEffects",
    "AblationResult",
    "Fidelity",
    "ablation_effects",
    "ablation_experiment",
    "entropy_matched_heads",
    "fidelity",
    "rank_heads",
    "regulatory_layers",
    "uniform_attention",
    "zero_heads",
    "zero_layer_attention",
    "zero_mlp",
]

#: Ablation interventions of :func:`ablation_experiment`.
INTERVENTIONS = ("top", "bottom", "random", "layer", "uniform", "mlp")


def _cosine_shift(a, b, valid) -> np.ndarray:
    """Per cell ``1 - cos`` between ``a`` and ``b`` flattened over valid tokens."""
    import torch

    w = valid.to(a.dtype).view(*valid.shape, *([1] * (a.dim() - 2)))
    a, b = (a * w).flatten(1).double(), (b * w).flatten(1).double()
    return (1 - torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12)).cpu().numpy()


def _pooled(model: GeneTokenModel, hidden, batch):
    """Cell embeddings of a batch as :meth:`GeneTokenModel.cell_embeddings` pools them."""
    if model.default_pooling == "cls" and not bool(batch.gene_token_mask[:, 0].any()):
        return hidden[:, 0].double()
    w = batch.gene_token_mask.to(hidden.dtype).unsqueeze(-1)
    return ((hidden * w).sum(1) / w.sum(1).clamp(min=1)).double()


@dataclass
class Fidelity:
    """How much an intervention changes the model (means over cells of ``1 - cosine``, intact vs intervened).

    Attributes
    ----------
    hidden
        Maximum over layers of the hidden-state shift (Kendiukhov 2026 counts an ablation only when it exceeds
        0.02; the maximum, because an intervention can change middle layers and be washed out by the last).
    hidden_last
        Shift of the last layer's hidden state.
    hidden_per_layer
        ``(n_layers,)`` shift after each layer.
    output
        Shift of the output (logits / predicted expression), flattened over the cell's tokens.
    embedding
        Shift of the cell embedding (pooled as the adapter does).
    """

    hidden: float
    hidden_last: float
    hidden_per_layer: np.ndarray
    output: float
    embedding: float


class _ShiftMeter:
    """Accumulates per-cell shifts of hidden states, outputs and embeddings over batches."""

    def __init__(self, n_layers: int):
        self.hidden: list[list[np.ndarray]] = [[] for _ in range(n_layers)]
        self.output: list[np.ndarray] = []
        self.embedding: list[np.ndarray] = []

    def add(self, model, batch, ref, abl) -> None:
        for lay in range(len(self.hidden)):
            self.hidden[lay].append(_cosine_shift(ref.hidden_states[lay + 1], abl.hidden_states[lay + 1],
                                                  batch.attention_mask))
        self.output.append(_cosine_shift(ref.logits, abl.logits, batch.attention_mask))
        import torch

        a, b = _pooled(model, ref.hidden_states[-1], batch), _pooled(model, abl.hidden_states[-1], batch)
        self.embedding.append((1 - torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12)).cpu().numpy())

    def result(self) -> Fidelity:
        per_layer = np.array([np.concatenate(h).mean() for h in self.hidden])
        return Fidelity(float(per_layer.max()), float(per_layer[-1]), per_layer,
                        float(np.concatenate(self.output).mean()), float(np.concatenate(self.embedding).mean()))


def fidelity(model: GeneTokenModel, adata, genes: Genes, intervention: Callable[[], AbstractContextManager],
             batch_size: int = 16) -> Fidelity:
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
    Fidelity
        ``hidden`` is the maximum over layers of the mean hidden-state cosine shift.
    """
    import torch

    meter = _ShiftMeter(model.n_layers)
    with torch.no_grad():
        for batch in model.tokenize(adata, genes, batch_size=batch_size):
            batch = batch.to(model.device)
            ref = model.forward(batch, output_attentions=False, output_logits=True)
            with intervention():
                abl = model.forward(batch, output_attentions=False, output_logits=True)
            meter.add(model, batch, ref, abl)
    return meter.result()


# ---- head rankings -------------------------------------------------------------------------------------------
@dataclass
class AblationResult:
    """Tables of :func:`ablation_experiment`.

    Attributes
    ----------
    runs
        One row per run: ``intervention`` ("none" for the intact model), ``k`` (heads zeroed; layer-level: heads
        per layer; mlp: 0), ``seed`` (random-k; else -1), ``layer`` (layer-level; else -1), ``heads``
        ("L0H1;L2H3"), ``entropy_mean`` (of the ablated heads), ``outcome_heads`` (number of downstream heads the
        attention outcome is computed from), ``outcome_layers`` ("1-3"), ``auroc_intact``, ``auroc_ablated``
        (means over perturbations of the downstream attention's perturbation AUROC), ``degradation`` (intact -
        ablated; positive = worse), ``fidelity_hidden`` (maximum over layers), ``fidelity_hidden_last``,
        ``fidelity_output``, ``embedding_shift``, ``expression_error`` (``"masked"``, ``"reconstruction"`` or
        ``"none"``), ``error_intact``, ``error_ablated`` (mean per-cell MSE), ``error_p`` (one-sided Wilcoxon
        over cells: the error rises).
    perturbations
        One row per (run, perturbation): ``intervention, k, seed, layer, perturbation, auroc_intact,
        auroc_ablated, degradation``.
    ks, ranking, n_layers
        The head counts run, the ranking used (best first) and the model's layers.
    regulatory_layers
        :func:`regulatory_layers` of the ranking at the smallest k.
    """

    runs: pd.DataFrame
    perturbations: pd.DataFrame
    ks: list[int] = field(default_factory=list)
    ranking: list[tuple[int, int]] = field(default_factory=list)
    n_layers: int = 0
    regulatory_layers: list[int] = field(default_factory=list)


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


def _supports_value_mask(model: GeneTokenModel) -> bool:
    try:
        return "value_mask" in inspect.signature(model._embed).parameters
    except (TypeError, ValueError):
        return False


class _Intact:
    """Intact per-head maps: from a mapping, a loader ``layer -> LayerAttention``, or extracted here one layer at
    a time into a temporary folder and memory-mapped (memory: one layer during extraction, pages on access)."""

    def __init__(self, model, adata, genes, intact, batch_size):
        import tempfile

        from .extraction import iter_layer_attention

        self._given = intact
        self._tmp = None
        self._meta: dict[int, LayerAttention] = {}
        if intact is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="perturblab-ablation-")
            for la in iter_layer_attention(model, adata, genes, batch_size=batch_size):
                path = f"{self._tmp.name}/layer{la.layer}.npy"
                np.save(path, la.per_head)
                la.per_head = np.load(path, mmap_mode="r")
                self._meta[la.layer] = la

    def __getitem__(self, layer: int) -> LayerAttention:
        if layer in self._meta:
            return self._meta[layer]
        if isinstance(self._given, Mapping):
            return self._given[layer]
        return self._given(layer)

    def close(self) -> None:
        self._meta.clear()
        if self._tmp is not None:
            self._tmp.cleanup()


def _summary(maps: Iterable[np.ndarray], how: str) -> np.ndarray | None:
    out, n = None, 0
    for m in maps:
        m = np.asarray(m, dtype=np.float64)
        if out is None:
            out = m.copy()
        elif how == "max":
            np.maximum(out, m, out=out)
        else:
            out += m
        n += 1
    if out is not None and how == "mean":
        out /= n
    return out


def ablation_experiment(
    model: GeneTokenModel,
    adata,
    genes: Genes,
    head_ranking,
    evaluate: Callable[[np.ndarray], pd.Series] | None = None,
    ks: Sequence[int] = (5, 10, 20, 50),
    n_random_seeds: int = 3,
    layers: Iterable[int] | None = None,
    interventions: Sequence[str] = INTERVENTIONS,
    random_heads: str = "entropy-matched",
    head_entropy: Mapping[tuple[int, int], float] | None = None,
    summary: str = "mean",
    intact: Mapping[int, LayerAttention] | Callable[[int], LayerAttention] | None = None,
    mask_fraction: float = 0.15,
    batch_size: int = 16,
    random_state: int = 0,
) -> AblationResult:
    """Ablate top-k / bottom-k / random-k heads and whole layers; measure downstream outcomes.

    Parameters
    ----------
    model, adata, genes
        As for :func:`~perturblab.interpret.extraction.extract_attention` (e.g. control cells, HVGs).
    head_ranking
        Heads best first: a sequence of ``(layer, head)`` or a DataFrame with ``layer`` and ``head`` columns in
        ranked order (e.g. from :func:`rank_heads`). Bottom-k = its last k.
    evaluate
        ``evaluate(matrix) -> pandas.Series``: the per-perturbation outcome (e.g. AUROC of the DE targets) of a
        ``(G, G)`` edge-score matrix, indexed by perturbation; higher = better. None: no attention outcome.
    ks
        Numbers of heads; values below 1 or not below the number of ranked heads (top-k would equal random-k)
        are skipped with a warning.
    n_random_seeds
        Random-k draws (seeds ``random_state + s``).
    layers
        Layers of the layer-level interventions ("layer": zero all heads, "uniform", "mlp"); default all.
    interventions
        Subset of :data:`INTERVENTIONS`.
    random_heads
        ``"entropy-matched"`` (:func:`entropy_matched_heads`) or ``"uniform"``.
    head_entropy
        ``{(layer, head): mean attention entropy}``; default: from the intact extraction.
    summary
        ``"mean"`` or ``"max"`` over the downstream heads (as the tested layer summary).
    intact
        The intact per-head maps of ``adata`` and ``genes`` (``{layer: LayerAttention}`` or a loader), to save
        one extraction; extracted here when None.
    mask_fraction
        Share of gene tokens masked for the masked-expression error (seeded per batch).
    batch_size, random_state
        Cells per forward; seed of the random heads and the masks.

    Returns
    -------
    AblationResult

    Notes
    -----
    The attention outcome of a run is computed from the heads of the layers after its first intervened layer,
    without the intervened heads, before (intact) and after the intervention; an intervention confined to the
    last layer has no downstream attention (NaN) and is judged by the model's output only. Cost per run: one
    pass over the cells with an intact and an intervened forward (plus a masked one for the own model). Memory:
    the downstream layers' ``(H, G, G)`` accumulators of one run, and one intact layer at a time (memory-mapped
    when extracted here).

    Examples
    --------
    >>> res = ablation_experiment(model, ctrl, genes, ranking, evaluate=my_auroc, ks=(2, 4))  # doctest: +SKIP
    >>> res.runs[["intervention", "k", "degradation", "fidelity_hidden"]]  # doctest: +SKIP
    """
    import torch

    for name in interventions:
        if name not in INTERVENTIONS:
            raise UnknownNameError("ablation intervention", name, INTERVENTIONS)
    if random_heads not in ("entropy-matched", "uniform"):
        raise UnknownNameError("random head draw", random_heads, ("entropy-matched", "uniform"))
    if summary not in ("mean", "max"):
        raise UnknownNameError("layer summary", summary, ("mean", "max"))
    ranking = _ranking_list(model, head_ranking)
    layer_list = model.check_layers(layers)
    if bad := [k for k in ks if k >= len(ranking) or k < 1]:
        warnings.warn(f"ablation ks {bad} skipped: need 1 <= k < {len(ranking)} ranked heads (at k = all heads "
                      "top-k and random-k are the same heads)", PerturblabWarning, stacklevel=2)
    ks = sorted({int(k) for k in ks if 1 <= k < len(ranking)})
    gene_arr = np.asarray(genes, dtype=str)
    all_heads = [(lay, h) for lay in range(model.n_layers) for h in range(model.n_heads)]
    maps = _Intact(model, adata, gene_arr, intact, batch_size)
    if head_entropy is None and random_heads == "entropy-matched":
        head_entropy = {}
        for lay in range(model.n_layers):
            ent = maps[lay].entropy
            for h in range(model.n_heads):
                head_entropy[(lay, h)] = float(ent[h]) if ent is not None else np.nan

    runs: list[tuple[str, int, int, int, list, Callable | None, int]] = []
    for k in ks:
        if "top" in interventions:
            runs.append(("top", k, -1, -1, ranking[:k], None, min(lay for lay, _ in ranking[:k])))
        if "bottom" in interventions:
            runs.append(("bottom", k, -1, -1, ranking[-k:], None, min(lay for lay, _ in ranking[-k:])))
        if "random" in interventions:
            for s in range(n_random_seeds):
                rng = np.random.default_rng(random_state + s)
                pick = entropy_matched_heads(ranking[:k], all_heads,
                                             head_entropy if random_heads == "entropy-matched" else None, rng)
                runs.append(("random", k, s, -1, pick, None, min(lay for lay, _ in pick)))
    for lay in layer_list:
        full = [(lay, h) for h in range(model.n_heads)]
        if "layer" in interventions:
            runs.append(("layer", model.n_heads, -1, lay, full, None, lay))
        if "uniform" in interventions:
            runs.append(("uniform", model.n_heads, -1, lay, full, lambda lay=lay: uniform_attention(model, lay), lay))
        if "mlp" in interventions:
            runs.append(("mlp", 0, -1, lay, [], lambda lay=lay: zero_mlp(model, lay), lay))

    masked = _supports_value_mask(model)
    intact_err = _intact_errors(model, adata, gene_arr, batch_size, mask_fraction, random_state) if masked else None
    counts = maps[0].n_cells
    G = gene_arr.size
    run_rows: list[dict] = [{"intervention": "none", "k": 0, "seed": -1, "layer": -1, "heads": "",
                             "entropy_mean": np.nan, "outcome_heads": 0, "outcome_layers": "", "auroc_intact": np.nan,
                             "auroc_ablated": np.nan, "degradation": 0.0, "fidelity_hidden": 0.0,
                             "fidelity_hidden_last": 0.0, "fidelity_output": 0.0, "embedding_shift": 0.0,
                             "expression_error": "masked" if masked else "none",
                             "error_intact": float(intact_err.mean()) if intact_err is not None else np.nan,
                             "error_ablated": float(intact_err.mean()) if intact_err is not None else np.nan,
                             "error_p": np.nan}]
    pert_rows: list[pd.DataFrame] = []
    for name, k, seed, lay, heads, factory, first in runs:
        cut = set(heads)
        down_layers = list(range(first + 1, model.n_layers))
        down = [(a, b) for a in down_layers for b in range(model.n_heads) if (a, b) not in cut]
        if factory is None:
            factory = (lambda heads=heads: zero_heads(model, heads)) if heads else ExitStack
        acc = {a: torch.zeros(model.n_heads, G * G, dtype=torch.float32, device=model.device) for a in down_layers}
        meter = _ShiftMeter(model.n_layers)
        err_i, err_a, kind = [], [], "masked" if masked else "none"
        with torch.no_grad():
            for b_i, batch in enumerate(model.tokenize(adata, list(gene_arr), batch_size=batch_size)):
                batch = batch.to(model.device)
                ref = model.forward(batch, output_attentions=False, output_logits=True)
                with factory():
                    abl = model.forward(batch, layers=down_layers or None, output_attentions=bool(down_layers),
                                        output_logits=True)
                    if masked:
                        err_a.append(_masked_error(model, batch, mask_fraction, random_state + b_i))
                for a in down_layers:
                    _scatter_batch(acc[a], abl.attentions[a], batch.gene_index, G)
                meter.add(model, batch, ref, abl)
                logits: Any = ref.logits
                if not masked and logits is not None and logits.dim() == 2 and batch.values is not None:
                    kind = "reconstruction"
                    err_i.append(_reconstruction_error(ref.logits, batch))
                    err_a.append(_reconstruction_error(abl.logits, batch))
        fid = meter.result()
        ei = intact_err if masked else (np.concatenate(err_i) if err_i else None)
        ea = np.concatenate(err_a) if err_a else None
        errors = (ei, ea) if ei is not None and ea is not None else None
        row = {"intervention": name, "k": k, "seed": seed, "layer": lay,
               "heads": ";".join(f"L{a}H{b}" for a, b in heads),
               "entropy_mean": float(np.mean([head_entropy.get(h, np.nan) for h in heads])) if heads and head_entropy
               else np.nan, "outcome_heads": len(down),
               "outcome_layers": f"{down_layers[0]}-{down_layers[-1]}" if down_layers else "",
               "fidelity_hidden": fid.hidden, "fidelity_hidden_last": fid.hidden_last, "fidelity_output": fid.output,
               "embedding_shift": fid.embedding, "expression_error": kind if errors else "none",
               "error_intact": float(errors[0].mean()) if errors else np.nan,
               "error_ablated": float(errors[1].mean()) if errors else np.nan,
               "error_p": _one_sided_wilcoxon(errors[1] - errors[0]) if errors else np.nan}
        auroc_i = auroc_a = None
        if evaluate is not None and down:
            denom = torch.as_tensor(np.maximum(counts, 1), dtype=torch.float32, device=model.device)
            ablated = _summary((acc[a].view(model.n_heads, G, G)[b].div(denom).cpu().numpy() for a, b in down), summary)
            intact_m = _summary((maps[a].per_head[b] for a, b in down), summary)
            if intact_m is not None and ablated is not None:
                auroc_i, auroc_a = evaluate(intact_m), evaluate(ablated)
        del acc
        if auroc_i is not None:
            both = pd.DataFrame({"auroc_intact": auroc_i, "auroc_ablated": auroc_a})
            both["degradation"] = both["auroc_intact"] - both["auroc_ablated"]
            both = both.rename_axis("perturbation").reset_index()
            pert_rows.append(both.assign(intervention=name, k=k, seed=seed, layer=lay))
            row.update(auroc_intact=float(both["auroc_intact"].mean()),
                       auroc_ablated=float(both["auroc_ablated"].mean()), degradation=float(both["degradation"].mean()))
        else:
            row.update(auroc_intact=np.nan, auroc_ablated=np.nan, degradation=np.nan)
        run_rows.append(row)
    maps.close()
    cols = ["intervention", "k", "seed", "layer", "perturbation", "auroc_intact", "auroc_ablated", "degradation"]
    per = pd.concat(pert_rows, ignore_index=True)[cols] if pert_rows else pd.DataFrame(columns=cols)
    return AblationResult(pd.DataFrame(run_rows), per, ks, ranking, model.n_layers,
                          regulatory_layers(ranking, ks[0], model.n_layers) if ks else [])


def _mask(batch, fraction: float, seed: int):
    import torch

    from .training import _mask_tokens

    return _mask_tokens(batch, fraction, torch.Generator().manual_seed(int(seed)))


def _masked_error(model, batch, fraction: float, seed: int) -> np.ndarray:
    """Per-cell MSE of the predicted expression of masked gene tokens (seeded mask; own-model style ``_embed``)."""
    mask = _mask(batch, fraction, seed)
    model._key_valid = batch.attention_mask
    try:
        hidden = model._embed(batch, value_mask=mask)
        for lay in range(model.n_layers):
            hidden = model._layer(lay, hidden, batch)
        pred = model._output(hidden, batch)
    finally:
        model._key_valid = None
    sq = ((pred - batch.values) ** 2) * mask
    return (sq.sum(1) / mask.sum(1).clamp(min=1)).double().cpu().numpy()


def _reconstruction_error(pred, batch) -> np.ndarray:
    w = (batch.gene_index >= 0).to(pred.dtype)
    return ((((pred - batch.values) ** 2) * w).sum(1) / w.sum(1).clamp(min=1)).double().cpu().numpy()


def _intact_errors(model, adata, genes, batch_size, fraction, random_state) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for b_i, batch in enumerate(model.tokenize(adata, genes, batch_size=batch_size)):
            out.append(_masked_error(model, batch.to(model.device), fraction, random_state + b_i))
    return np.concatenate(out)


def _one_sided_wilcoxon(d: np.ndarray) -> float:
    """p of "the differences are above 0" (Wilcoxon signed-rank, one-sided); 1 when every difference is 0,
    NaN without finite differences."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, alternative="greater").pvalue)


@dataclass
class AblationEffects:
    """The quantities of criterion (d), from :func:`ablation_effects` (degradations: positive = worse).

    Attributes
    ----------
    ks
        Head counts with both a top-k and a random-k run.
    top, random
        ``{k: mean degradation over perturbations}`` of top-k and of random-k (mean over seeds).
    n, top_vs_random_effect, top_vs_random_p
        Perturbations in the paired test; mean over them of ``mean_k (degradation_top - degradation_random)``;
        one-sided Wilcoxon signed-rank p (top degrades more).
    layer_tests
        ``{"uniform" | "mlp": {"layers", "n", "effect", "p"}}``: per perturbation, the degradation averaged over
        the regulatory layers; one-sided Wilcoxon p.
    fidelity_min
        Smallest top-k hidden-state shift (each the maximum over layers).
    regulatory_layers
        The layers of the layer-level tests.
    """

    ks: list[int]
    top: dict[int, float]
    random: dict[int, float]
    n: int
    top_vs_random_effect: float
    top_vs_random_p: float
    layer_tests: dict[str, dict]
    fidelity_min: float
    regulatory_layers: list[int]

    def to_dict(self) -> dict:
        return {"ks": self.ks, "top": {str(k): v for k, v in self.top.items()},
                "random": {str(k): v for k, v in self.random.items()}, "n": self.n,
                "top_vs_random_effect": self.top_vs_random_effect, "top_vs_random_p": self.top_vs_random_p,
                "layer_tests": self.layer_tests, "fidelity_min": self.fidelity_min,
                "regulatory_layers": self.regulatory_layers}


def ablation_effects(result: AblationResult, regulatory: Sequence[int] | None = None) -> AblationEffects:
    """Summarise an :class:`AblationResult` for criterion (d), pairing per perturbation (as Kendiukhov 2026).

    Parameters
    ----------
    result
        From :func:`ablation_experiment`.
    regulatory
        Layers of the uniform / MLP tests (default: ``result.regulatory_layers``).
    """
    per, runs = result.perturbations, result.runs
    regulatory = list(result.regulatory_layers if regulatory is None else regulatory)
    top_w = per[per["intervention"] == "top"].pivot_table(index="perturbation", columns="k", values="degradation")
    rnd_w = (per[per["intervention"] == "random"].groupby(["perturbation", "k"])["degradation"].mean()
             .unstack("k") if (per["intervention"] == "random").any() else pd.DataFrame())
    ks = [k for k in result.ks if k in top_w.columns and k in rnd_w.columns]
    top = {int(k): float(top_w[k].mean()) for k in top_w.columns}
    rnd = {int(k): float(rnd_w[k].mean()) for k in rnd_w.columns}
    if ks:
        d = (top_w[ks] - rnd_w.reindex(top_w.index)[ks]).mean(axis=1, skipna=True).dropna()
        n, eff, p = int(d.size), float(d.mean()) if d.size else float("nan"), _one_sided_wilcoxon(d.to_numpy())
    else:
        n, eff, p = 0, float("nan"), float("nan")
    tests = {}
    for kind in ("uniform", "mlp"):
        sel = per[(per["intervention"] == kind) & per["layer"].isin(regulatory)]
        if regulatory and len(sel):
            dd = sel.groupby("perturbation")["degradation"].mean().dropna()
            tests[kind] = {"layers": regulatory, "n": int(dd.size), "effect": float(dd.mean()) if dd.size else np.nan,
                           "p": _one_sided_wilcoxon(dd.to_numpy())}
    fid = runs.loc[runs["intervention"] == "top", "fidelity_hidden"]
    return AblationEffects(ks, {k: top[k] for k in ks}, {k: rnd[k] for k in ks}, n, eff, p, tests,
                           float(fid.min()) if len(fid) else float("nan"), regulatory)
