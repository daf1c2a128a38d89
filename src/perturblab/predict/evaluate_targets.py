"""Metrics that need every target of a benchmark at once: cell-eval's discrimination scores and
``de_spearman_sig``, and Systema's centroid accuracy, with resampling intervals.

Input: for each target (held-out cell type), the AnnData of its predicted, real stimulated and real control
cells, log-normalised, all with the same genes in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..exceptions import InputError, UnknownNameError
from . import de as DE
from . import metrics_de as MD
from .evaluate import _to_dense_checked, source_index
from .intervals import CI_METHODS, ResamplingPlan, bootstrap_interval
from .metrics_targets import centroid_accuracy, discrimination_score
from .suite import metric_bounds

__all__ = ["TARGET_METRICS", "evaluate_targets"]

#: Definitions of the rows of :func:`evaluate_targets`.
TARGET_METRICS = {
    "discrimination_score_l1": "cell-eval: 1 - rank/T of the target's own real delta among all targets' real deltas, "
                               "by L1 distance to its predicted delta (deltas from each target's own control)",
    "discrimination_score_l2": "as discrimination_score_l1 with Euclidean distance (cell-eval)",
    "discrimination_score_cosine": "as discrimination_score_l1 with cosine distance (cell-eval)",
    "centroid_accuracy": "Systema: share of the other targets whose real delta is farther from the predicted delta "
                         "than the target's own (Euclidean)",
    "de_spearman_sig": "cell-eval: Spearman r over targets of the numbers of real and predicted DEGs "
                       "(pdex, FDR < 0.05)",
}


def _target_scores(deltas: tuple[np.ndarray, np.ndarray], exclude) -> dict[str, np.ndarray]:
    deltas_pred, deltas_real = deltas
    out = {f"discrimination_score_{m}": discrimination_score(deltas_pred, deltas_real, m, exclude)
           for m in ("l1", "l2", "cosine")}
    out["centroid_accuracy"] = centroid_accuracy(deltas_pred, deltas_real)
    return out


def _nsig(P, S, C, fdr) -> tuple[int, int]:
    return MD.de_nsig_counts(DE.differential_expression(S, C), DE.differential_expression(P, C), fdr)


def evaluate_targets(groups: Mapping, n_bootstrap: int = 100, ci: float = 0.95, ci_method: str = "centered",
                     paired="auto", layer: str | None = None, exclude: Mapping | None = None, fdr: float = 0.05,
                     de_resample: bool = False, random_state: int = 0) -> pd.DataFrame:
    """Discrimination scores, centroid accuracy and ``de_spearman_sig`` over several targets.

    Parameters
    ----------
    groups
        ``{target: (pred, real_stim, ctrl)}``: AnnData of the predicted, real stimulated and real control
        cells of each target (log-normalised, same genes). At least 2 targets.
    n_bootstrap
        Resamples for the intervals (0: none). Every target's cells are resampled within the target in the
        same resample (paired prediction and control cells together, see :func:`evaluate`).
    ci, ci_method
        Coverage and interval method (:mod:`perturblab.predict.intervals`).
    paired
        As :func:`evaluate`.
    layer
        Layer to read instead of ``X``.
    exclude
        Optional ``{target: [gene names]}`` left out of that target's discrimination distances (the target
        gene of a genetic perturbation; cell types have none).
    fdr
        FDR threshold of the DEG counts of ``de_spearman_sig``.
    de_resample
        Recompute the DEGs of every target in every resample for the interval of ``de_spearman_sig``
        (2 x targets Wilcoxon tests per resample); False (default): point estimate only, flagged.
    random_state
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        ``target, metric, gene_set, value, ci_low, ci_high, n_bootstrap, definition, ci_method, ci_flag,
        bias, paired``: one row per target and per-target metric, a row ``target="mean"`` with each
        metric's mean over targets, and ``de_spearman_sig`` with ``target="all"``. Deltas are taken from
        each target's OWN control cells: with cell types as targets a shared control would let the score
        recognise the cell type (which every prediction inherits from its control cells) instead of the
        response.

    Raises
    ------
    InputError
        Fewer than 2 targets, genes that differ, or a group with fewer than 2 cells.

    Examples
    --------
    >>> groups = {t: (preds[t], splits[t].target_stim, splits[t].target_ctrl) for t in targets}  # doctest: +SKIP
    >>> table = evaluate_targets(groups, n_bootstrap=100)                                        # doctest: +SKIP
    """
    if ci_method not in CI_METHODS:
        raise UnknownNameError("interval method", ci_method, CI_METHODS)
    targets = list(groups)
    if len(targets) < 2:
        raise InputError(f"metrics over targets need at least 2 targets, got {len(targets)}")
    genes = list(groups[targets[0]][0].var_names)
    data, plans = [], []
    seeds = np.random.SeedSequence(random_state).spawn(len(targets))
    for t, seed in zip(targets, seeds, strict=True):
        pred, stim, ctrl = groups[t]
        for name, a in (("pred", pred), ("real_stim", stim), ("ctrl", ctrl)):
            if list(a.var_names) != genes:
                raise InputError(f"{name} of target {t!r} has other genes than the first target's; use the same "
                                 "genes in the same order for every target")
        arrays = tuple(_to_dense_checked(a, f"{n} of {t!r}", layer) for n, a in
                       (("pred", pred), ("real_stim", stim), ("ctrl", ctrl)))
        if min(len(x) for x in arrays) < 2:
            raise InputError(f"target {t!r} has a group with fewer than 2 cells; drop it or add cells")
        src = source_index(pred, ctrl, paired)
        data.append(arrays)
        plans.append(ResamplingPlan({"pred": len(arrays[0]), "stim": len(arrays[1]), "ctrl": len(arrays[2])},
                                    pairs={"pred": ("ctrl", src)} if src is not None else None,
                                    random_state=int(seed.generate_state(1)[0])))
    names = pd.Index(genes)
    excl = [names.get_indexer(list((exclude or {}).get(t, []))) for t in targets]
    excl = [e[e >= 0] for e in excl]

    def deltas(samples):
        dp = np.vstack([P.mean(0) - C.mean(0) for P, _, C in samples])
        dr = np.vstack([S.mean(0) - C.mean(0) for _, S, C in samples])
        return dp, dr

    point = _target_scores(deltas(data), excl)
    counts = np.array([_nsig(P, S, C, fdr) for P, S, C in data], dtype=float)
    point_de = MD.de_spearman_sig(counts[:, 0], counts[:, 1])
    draws: dict[str, list] = {m: [] for m in point}
    draws_de: list[float] = []
    for _ in range(n_bootstrap):
        sample = []
        for (P, S, C), plan in zip(data, plans, strict=True):
            idx = plan.draw()
            sample.append((P[idx["pred"]], S[idx["stim"]], C[idx["ctrl"]]))
        for m, v in _target_scores(deltas(sample), excl).items():
            draws[m].append(v)
        if de_resample:
            c = np.array([_nsig(P, S, C, fdr) for P, S, C in sample], dtype=float)
            draws_de.append(MD.de_spearman_sig(c[:, 0], c[:, 1]))

    is_paired = all(p.pairs for p in plans)
    rows = []

    def add(target, metric, value, values, flag_extra=""):
        iv = bootstrap_interval(float(value), values, ci=ci, method=ci_method)
        lo, hi = metric_bounds(metric)
        flag = "; ".join(f for f in (iv.flag, flag_extra) if f)
        rows.append({"target": target, "metric": metric, "gene_set": "all", "value": float(value),
                     "ci_low": float(np.clip(iv.low, lo, hi)), "ci_high": float(np.clip(iv.high, lo, hi)),
                     "n_bootstrap": int(n_bootstrap), "definition": TARGET_METRICS[metric],
                     "ci_method": iv.method if len(values) else "none", "ci_flag": flag, "bias": iv.bias,
                     "paired": is_paired})

    for m, values in point.items():
        d = np.asarray(draws[m]) if draws[m] else np.zeros((0, len(targets)))
        for i, t in enumerate(targets):
            add(t, m, values[i], d[:, i] if len(d) else [])
        add("mean", m, values.mean(), d.mean(axis=1) if len(d) else [])
    add("all", "de_spearman_sig", point_de, draws_de,
        "" if de_resample or not n_bootstrap else "no interval: DEGs not recomputed in resamples (de_resample=False)")
    return pd.DataFrame(rows)
