"""Which heads to ablate: rankings of attention heads (reference recovery, perturbation AUROC or both), random heads
matched on attention entropy, and the layers a ranking points to. Used by :mod:`perturblab.interpret.ablation`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import InputError, UnknownNameError

__all__ = ["HEAD_RANKINGS", "entropy_matched_heads", "rank_heads", "regulatory_layers"]

#: Ways :func:`rank_heads` orders heads.
HEAD_RANKINGS = ("composite", "reference", "perturbation")


def rank_heads(reference_auroc: pd.DataFrame | None = None, perturbation_auroc: pd.DataFrame | None = None,
               method: str = "composite", entropy: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank attention heads, best first (Kendiukhov 2026: by reference AUROC, perturbation AUROC, or both).

    Parameters
    ----------
    reference_auroc, perturbation_auroc
        Tables with ``layer, head, auroc`` (several rows per head - references or perturbations - are averaged,
        NaN ignored).
    method
        ``"reference"``, ``"perturbation"`` or ``"composite"``: the mean of the two percentile ranks (a head
        missing one of them is ranked by the other).
    entropy
        Optional ``layer, head, entropy`` (mean attention entropy, nats), carried into the result.

    Returns
    -------
    ``layer, head, reference_auroc, perturbation_auroc, entropy, composite, rank`` (1 = best), best first; ties
    broken by layer then head.

    Raises
    ------
    UnknownNameError
        For an unknown method. InputError when the table the method needs is missing.
    """
    if method not in HEAD_RANKINGS:
        raise UnknownNameError("head ranking", method, HEAD_RANKINGS)

    def mean_by_head(df, name):
        if df is None or df.empty:
            return pd.Series(dtype=float, name=name)
        d = df.assign(layer=df["layer"].astype(int), head=df["head"].astype(int))
        return d.groupby(["layer", "head"])["auroc"].mean().rename(name)

    ref, pert = mean_by_head(reference_auroc, "reference_auroc"), mean_by_head(perturbation_auroc, "perturbation_auroc")
    if method in ("reference", "composite") and ref.empty and (method == "reference" or pert.empty):
        raise InputError(f"head ranking {method!r} needs per-head reference AUROCs")
    if method == "perturbation" and pert.empty:
        raise InputError("head ranking 'perturbation' needs per-head perturbation AUROCs")
    t = pd.concat([ref, pert], axis=1)
    if entropy is not None and len(entropy):
        e = entropy.assign(layer=entropy["layer"].astype(int), head=entropy["head"].astype(int))
        t = t.join(e.set_index(["layer", "head"])["entropy"], how="left")
    else:
        t["entropy"] = np.nan
    pr = {c: t[c].rank(pct=True) for c in ("reference_auroc", "perturbation_auroc")}
    if method == "reference":
        t["composite"] = pr["reference_auroc"]
    elif method == "perturbation":
        t["composite"] = pr["perturbation_auroc"]
    else:
        t["composite"] = pd.concat(pr, axis=1).mean(axis=1, skipna=True)
    t = t.reset_index().sort_values(["composite", "layer", "head"], ascending=[False, True, True],
                                    na_position="last", kind="stable")
    t["rank"] = np.arange(1, len(t) + 1)
    return t.reset_index(drop=True)[["layer", "head", "reference_auroc", "perturbation_auroc", "entropy",
                                     "composite", "rank"]]


def entropy_matched_heads(top: Sequence[tuple[int, int]], all_heads: Sequence[tuple[int, int]],
                          entropy: Mapping[tuple[int, int], float] | None, rng: np.random.Generator,
                          pool: int = 3) -> list[tuple[int, int]]:
    """Random control heads for a set of top heads, one per top head, matched on attention entropy.

    For each top head in turn one head is drawn uniformly among the ``pool`` unused heads closest to it in mean
    attention entropy (a diffuse head is matched by a diffuse one, a sharp head by a sharp one), so that a
    top-vs-random difference is not a difference in how focused the ablated heads were. Heads are drawn outside
    the top set when enough remain, else from all heads. ``entropy=None``: uniform random heads.
    """
    top = [(int(h[0]), int(h[1])) for h in top]
    outside = [h for h in all_heads if h not in set(top)]
    avail = list(outside) if len(outside) >= len(top) else list(all_heads)
    if entropy is None or any(not np.isfinite(entropy.get(h, np.nan)) for h in [*top, *avail]):
        pick = rng.choice(len(avail), size=len(top), replace=False)
        return sorted(avail[i] for i in pick)
    chosen = []
    for t in top:
        dist = np.array([abs(entropy[h] - entropy[t]) for h in avail])
        near = np.argsort(dist, kind="stable")[: max(1, min(pool, len(avail)))]
        i = int(near[rng.integers(near.size)])
        chosen.append(avail.pop(i))
    return sorted(chosen)


def regulatory_layers(ranking: Sequence[tuple[int, int]], k: int, n_layers: int) -> list[int]:
    """The layers holding the top ``k`` heads of a ranking that have a later layer (downstream attention to
    measure); empty when all of them sit in the last layer."""
    return sorted({int(layer) for layer, _ in list(ranking)[:k] if int(layer) < n_layers - 1})


# ---- the experiment ------------------------------------------------------------------------------------------
