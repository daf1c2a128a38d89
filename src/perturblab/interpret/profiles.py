"""Layer profiles of reference recovery and depth-trend tests: "PPI early, regulation late" (Kendiukhov 2026, s. 3).

The paper reports that attention recovers protein-protein interactions (STRING) best in early layers (L0 AUROC
.64) and transcription-factor regulation (TRRUST) best in late layers (L15 .75). :func:`layer_profiles` takes
the per-layer recovery table of :func:`~perturblab.interpret.references.reference_recovery` (run over STRING
>= 700, STRING >= 900 and TRRUST: :func:`profile_references`) and tests, per reference, whether recovery
changes with depth: Spearman's rho of the metric against the layer index, BH-adjusted over the references.

The paper's exact test is not published; Spearman's rank correlation with layer is the standard monotone
trend test and is used here. With few layers the usual t approximation of its p-value is wrong (4 layers:
rho = 1 gets p = 0), so the p-value is exact (all permutations) up to ``exact_max`` points and a seeded
Monte-Carlo permutation p-value above. Two units are offered: ``"summary"`` (the mean / max over heads of each
layer: ``L`` points; with 4 layers the smallest two-sided p is 2/24 = 0.083, so no trend can be significant)
and ``"head"`` (every head's recovery with its layer: ``L x H`` points, ties in the layer handled by ranks).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError, MissingKeyError
from ._types import records
from .references import Reference, load_reference
from .registry_rows import registry_row

__all__ = ["PROFILE_REFERENCES", "layer_profile_rows", "layer_profiles", "profile_references", "spearman_trend"]

#: The references of the layer-profile analysis: (loader name, STRING minimum score).
PROFILE_REFERENCES = (("string", 700), ("string", 900), ("trrust", None))


def profile_references() -> list[Reference]:
    """STRING v12 >= 700, STRING v12 >= 900 (undirected) and TRRUST v2 (directed), via :mod:`perturblab.datasets`."""
    out = []
    for name, score in PROFILE_REFERENCES:
        out.append(load_reference(name, string_min_score=score) if score is not None else load_reference(name))
    return out


def _perm_p(x: np.ndarray, y: np.ndarray, rho: float, exact_max: int, n_perm: int, rng) -> float:
    """Two-sided permutation p-value of Spearman's rho (ranks of ``y`` permuted against ranks of ``x``)."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx = (rx - rx.mean()) / np.sqrt(((rx - rx.mean()) ** 2).sum())
    ry = ry - ry.mean()
    ry = ry / np.sqrt((ry**2).sum())
    n = x.size
    if n <= exact_max:
        perms = np.array(list(itertools.permutations(range(n))))
        null = ry[perms] @ rx
        return float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
    perms = np.argsort(rng.random((n_perm, n)), axis=1)
    null = ry[perms] @ rx
    return float((1 + np.sum(np.abs(null) >= abs(rho) - 1e-12)) / (1 + n_perm))


def spearman_trend(x, y, exact_max: int = 8, n_perm: int = 10_000, random_state: int = 0) -> dict:
    """Spearman's rho of ``y`` against ``x`` with a permutation p-value (exact for ``n <= exact_max``).

    Returns
    -------
    dict ``rho, p, n`` (NaN rho and p for fewer than 3 points or a constant input).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": float("nan"), "p": float("nan"), "n": int(x.size)}
    rho = float(stats.spearmanr(x, y).statistic)
    p = _perm_p(x, y, rho, exact_max, n_perm, np.random.default_rng(random_state))
    return {"rho": rho, "p": p, "n": int(x.size)}


def layer_profiles(recovery: pd.DataFrame, metric: str = "auroc", unit: str = "summary",
                   heads: Sequence[str] = ("mean", "max"), exact_max: int = 8, n_perm: int = 10_000,
                   random_state: int = 0) -> pd.DataFrame:
    """Depth trend of reference recovery per reference (and per head summary).

    Parameters
    ----------
    recovery
        :func:`~perturblab.interpret.references.reference_recovery` table with attention rows of several
        layers (columns ``kind, layer, head, reference`` and ``metric``).
    metric
        Column to profile (``auroc``, ``auprc``, ``epr``, ``topk_f1``).
    unit
        ``"summary"``: one point per layer for each head summary in ``heads`` (rows per reference x summary);
        ``"head"``: every individual head's value with its layer (one row per reference).
    heads
        Head summaries profiled with ``unit="summary"``.
    exact_max, n_perm, random_state
        Exact permutation p-value up to ``exact_max`` points, else ``n_perm`` seeded permutations.

    Returns
    -------
    One row per (reference, head): ``reference, head, unit, n_layers, n_points, rho, p, p_bh`` (BH over the
    rows of this table), ``trend`` (``"increasing"`` / ``"decreasing"`` when ``p_bh < 0.05``, else ``"none"``),
    ``peak_layer`` (layer of the largest mean value), ``first`` / ``last`` (mean value in the first / last
    layer) and ``metric``.

    Raises
    ------
    MissingKeyError, InputError
        If columns are missing or ``unit`` is unknown.

    Examples
    --------
    >>> rec = reference_recovery(attention_scores(layers), profile_references(), tfs=tfs)  # doctest: +SKIP
    >>> layer_profiles(rec)[["reference", "head", "rho", "p_bh", "peak_layer"]]  # doctest: +SKIP
    """
    from statsmodels.stats.multitest import multipletests

    need = {"kind", "layer", "head", "reference", metric}
    if need - set(recovery.columns):
        raise MissingKeyError(f"recovery table lacks column(s) {sorted(need - set(recovery.columns))}")
    if unit not in ("summary", "head"):
        raise InputError(f"unit must be 'summary' or 'head', got {unit!r}")
    att = recovery[recovery["kind"].eq("attention") & recovery["layer"].notna()].copy()
    att["layer"] = att["layer"].astype(int)
    summary = att["head"].isin(["mean", "max"])
    if unit == "summary":
        groups = [((ref, h), g) for (ref, h), g in att[summary & att["head"].isin(list(heads))].groupby(
            ["reference", "head"], sort=True)]
    else:
        groups = [((ref, "per head"), g) for ref, g in att[~summary & att["head"].astype(str).str.isdigit()].groupby(
            "reference", sort=True)]
    rows = []
    for (ref, h), g in groups:
        g = g.dropna(subset=[metric])
        t = spearman_trend(g["layer"], g[metric], exact_max=exact_max, n_perm=n_perm, random_state=random_state)
        per_layer = g.groupby("layer")[metric].mean()
        rows.append({"reference": ref, "head": h, "unit": unit, "n_layers": int(per_layer.size), "n_points": t["n"],
                     "rho": t["rho"], "p": t["p"],
                     "peak_layer": int(cast(int, per_layer.idxmax())) if per_layer.size else np.nan,
                     "first": float(per_layer.iloc[0]) if per_layer.size else np.nan,
                     "last": float(per_layer.iloc[-1]) if per_layer.size else np.nan, "metric": metric})
    out = pd.DataFrame(rows, columns=["reference", "head", "unit", "n_layers", "n_points", "rho", "p", "peak_layer",
                                      "first", "last", "metric"])
    out.insert(7, "p_bh", np.nan)
    ok = out["p"].notna()
    if ok.any():
        out.loc[ok, "p_bh"] = multipletests(out.loc[ok, "p"].to_numpy(float), method="fdr_bh")[1]
    out["trend"] = np.where(out["p_bh"] < 0.05, np.where(out["rho"] > 0, "increasing", "decreasing"), "none")
    return out


def layer_profile_rows(table: pd.DataFrame) -> list[dict]:
    """Registry rows of :func:`layer_profiles`: one Spearman trend test per (reference, head), exploratory.

    The claim "PPI early, regulation late" is tagged on STRING rows (expected rho < 0) and TRRUST rows
    (expected rho > 0).
    """
    rows = []
    for r in records(table):
        ref = str(r.reference).lower()
        claim = "PPI early, regulation late" if ("string" in ref or "trrust" in ref) else ""
        rows.append(registry_row(
            "layer profiles", f"attention ({r.head}) recovery of {r.reference} ({r.metric}) changes with layer depth",
            f"Spearman vs layer (permutation p, {r.unit})", r.p, r.rho, r.n_points, effect="Spearman rho",
            statistic=r.rho, claim=claim))
    return rows
