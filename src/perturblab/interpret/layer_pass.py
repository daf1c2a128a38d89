"""Attention streamed to disk one layer at a time, and the per-layer analyses run one layer at a time.

A model's attention over ``G`` genes is ``L x H x G^2`` float32 (16 GB for 18 x 18 heads at G = 2,000). The
pipeline never holds more than one layer: :func:`extract_layers` writes each layer's ``(H, G, G)`` maps as a unit
of the run's store as soon as the streamed extraction yields it (a killed run keeps the finished layers), and
:func:`analyse_layers` runs reference recovery and the perturbation-first AUROC of each layer's summaries and
heads in units (in parallel worker processes with ``n_jobs``; each worker reads its layer from disk), building
one float64 ``(G, G)`` head matrix at a time. :func:`load_layer` reads a layer back when a later stage needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_npz
from .edges import EdgeScores
from .extraction import LayerAttention
from .perturbation import TargetLabels

__all__ = ["LayerScores", "analyse_layers", "extract_layers", "layer_summary_scores", "load_counts", "load_layer"]

log = logging.getLogger(__name__)


class LayerScores(Sequence):
    """The edge scores of one layer - mean and max over heads, then each head - built one at a time on access.

    A lazy sequence: ``reference_recovery`` and ``perturbation_auroc`` iterate it and every item is a new float64
    :class:`EdgeScores` that lives only while it is scored. ``summaries`` / ``per_head`` select the items.
    """

    def __init__(self, la: LayerAttention, per_head: bool = True, summaries: bool = True):
        self.la = la
        self._items = (["mean", "max"] if summaries else []) + (list(range(la.n_heads)) if per_head else [])

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        item = self._items[i]
        la = self.la
        if item == "mean":
            return EdgeScores(f"attention L{la.layer} mean", la.head_mean, la.genes, "attention", la.layer, "mean")
        if item == "max":
            return EdgeScores(f"attention L{la.layer} max", la.head_max, la.genes, "attention", la.layer, "max")
        return EdgeScores(f"attention L{la.layer} H{item}", la.per_head[item], la.genes, "attention", la.layer,
                          str(item))


def _key(layer) -> dict:
    return {"stage": "attention", "layer": layer}


def extract_layers(store, model, adata, genes, batch_size: int = 16, device=None) -> dict[int, Path]:
    """Extract the attention of every layer not yet in ``store`` and persist each layer as it comes.

    Returns
    -------
    ``{layer: path of its arrays.npz}`` (``per_head`` float32 (H, G, G), ``entropy`` (H,), ``genes``); the
    co-occurrence counts ``n_cells`` (G, G) are stored once, under the key ``{"stage": "attention", "layer":
    "counts"}``.
    """
    from .extraction import iter_layer_attention

    layers = list(range(model.n_layers))
    missing = [la for la in layers if not store.done(_key(la))]
    if missing or not store.done(_key("counts")):
        log.info("[stage] attention: layers %s, one at a time", missing or layers)
        for la in iter_layer_attention(model, adata, genes, batch_size=batch_size, layers=missing or [0],
                                       device=device, progress=True):
            if not store.done(_key("counts")):
                store.save(_key("counts"), arrays={"n_cells": la.n_cells, "genes": la.genes.astype(str)})
            if la.layer in missing:
                store.save(_key(la.layer), arrays={"per_head": la.per_head, "genes": la.genes.astype(str),
                                                    "entropy": la.entropy if la.entropy is not None
                                                    else np.full(la.n_heads, np.nan)})
            del la
    else:
        log.info("[resume] attention")
    return {la: store.path(_key(la)) / "arrays.npz" for la in layers}


def load_layer(path: Path, counts: np.ndarray | None = None, layer: int | None = None) -> LayerAttention:
    """A stored layer back as :class:`LayerAttention` (``counts``: the stored ``n_cells``, else zeros-free
    placeholder of ones; only the ablation needs them)."""
    a = read_npz(path)
    lay = int(layer) if layer is not None else -1
    G = a["genes"].size
    return LayerAttention(lay, a["genes"].astype(str), a["per_head"],
                          counts if counts is not None else np.ones((G, G), dtype=np.int64),
                          a.get("entropy"))


def layer_summary_scores(path: Path, layer: int, summary: str) -> EdgeScores:
    """The ``summary`` ("mean" / "max") over heads of a stored layer as :class:`EdgeScores`."""
    la = load_layer(path, layer=layer)
    return LayerScores(la, per_head=False)[0 if summary == "mean" else 1]


def load_counts(store) -> np.ndarray:
    """The stored co-occurrence counts ``n_cells`` (G, G) of the extraction."""
    return read_npz(store.path(_key("counts")) / "arrays.npz")["n_cells"]


@dataclass
class _LayerContext:
    references: list
    tfs: list | None
    targets: TargetLabels  # the DE targets over the layers' genes (megabytes; the DE table can be gigabytes)


def _analyse(ctx: _LayerContext, task) -> dict[str, pd.DataFrame]:
    """One layer: reference recovery of its summaries and heads, perturbation AUROC (AUPRC for summaries)."""
    from .perturbation import perturbation_auroc
    from .references import reference_recovery

    layer, path = task
    la = load_layer(Path(path), layer=layer)
    scores = LayerScores(la)
    rec = reference_recovery(scores, ctx.references, tfs=ctx.tfs)
    summ = perturbation_auroc(LayerScores(la, per_head=False), None, targets=ctx.targets)
    heads = perturbation_auroc(LayerScores(la, summaries=False), None, auprc=False, targets=ctx.targets)
    ent = pd.DataFrame({"layer": layer, "head": np.arange(la.n_heads),
                        "entropy": la.entropy if la.entropy is not None else np.nan})
    return {"recovery": rec, "perturbation": summ, "perturbation_heads": heads, "entropy": ent}


def analyse_layers(store, layer_paths: dict[int, Path], references, tfs, de: pd.DataFrame, genes,
                   n_jobs: int = 1) -> dict[str, pd.DataFrame]:
    """Per-layer analyses for every layer (finished layers are read back from ``store``).

    Returns
    -------
    ``{"recovery", "perturbation", "perturbation_heads", "entropy"}`` concatenated over layers: reference
    recovery rows of every summary and head, per-perturbation AUROC/AUPRC of the summaries, per-perturbation
    AUROC of each head, mean attention entropy per head.
    """
    from ..runs import execute, progress

    keys = {la: {"stage": "layer_analysis", "layer": la} for la in layer_paths}
    todo = [(la, str(p)) for la, p in layer_paths.items() if not store.done(keys[la])]
    if todo:
        log.info("[stage] layer analysis: layers %s", [t[0] for t in todo])
        ctx = _LayerContext(list(references), None if tfs is None else list(tfs), TargetLabels(de, np.asarray(genes)))
        with progress.task("layer analyses", total=len(layer_paths), completed=len(layer_paths) - len(todo)) as bar:
            for task, tables in execute(_analyse, todo, shared={"layers": ctx}, n_jobs=n_jobs):
                store.save(keys[task[0]], tables=tables)
                bar.advance()
    else:
        log.info("[resume] layer analysis")
    parts: dict[str, list[pd.DataFrame]] = {}
    for la in sorted(layer_paths):
        for name, df in store.load(keys[la]).tables.items():
            parts.setdefault(name, []).append(df)
    return {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
