"""Metrics that need every target of a benchmark at once: cell-eval's discrimination scores and
``de_spearman_sig``, and Systema's centroid accuracy, with resampling intervals.

Input: for each target (held-out cell type), the AnnData of its predicted, real stimulated and real control
cells, log-normalised, all with the same genes in the same order. A benchmark that cannot keep every
prediction stores one :class:`TargetSummary` per unit (:func:`summarise_target`: mean deltas, their
resampled values and DEG counts) and computes the table from them later (:func:`targets_table`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InputError, UnknownNameError
from . import de as DE
from . import metrics_de as MD
from .evaluate import _to_dense_checked, source_index
from .intervals import CI_METHODS, ResamplingPlan, bootstrap_interval
from .metrics_targets import centroid_accuracy, discrimination_score, perfect_discrimination_l2
from .suite import metric_bounds

__all__ = ["TARGET_METRICS", "TargetSummary", "evaluate_targets", "summarise_target", "targets_table"]

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
    "perfect_discrimination_l2_shifted_control": "perturblab: the discrimination_score_l2 a perfect prediction is "
                                                 "expected to reach when made by shifting the control cells "
                                                 "(it carries their sample mean); a property of the data, the "
                                                 "same for every model",
    "perfect_discrimination_l2_decoded": "perturblab: the discrimination_score_l2 a perfect prediction is expected "
                                         "to reach when it does not carry the control cells' sample mean "
                                         "(decoded cells); a property of the data, the same for every model",
}


def _target_scores(deltas: tuple[np.ndarray, np.ndarray], exclude) -> dict[str, np.ndarray]:
    deltas_pred, deltas_real = deltas
    out = {f"discrimination_score_{m}": discrimination_score(deltas_pred, deltas_real, m, exclude)
           for m in ("l1", "l2", "cosine")}
    out["centroid_accuracy"] = centroid_accuracy(deltas_pred, deltas_real)
    return out


def _nsig(P, S, C, fdr) -> tuple[int, int]:
    return MD.de_nsig_counts(DE.differential_expression(S, C), DE.differential_expression(P, C), fdr)


@dataclass
class TargetSummary:
    """What the metrics over targets need from one target's cells (see :func:`summarise_target`).

    Attributes
    ----------
    genes
        Gene names (the order of every vector).
    delta_pred, delta_real
        ``mean(pred) - mean(ctrl)`` and ``mean(real stimulated) - mean(ctrl)`` per gene (log-normalised units).
    boot_pred, boot_real
        The same deltas in each resample (resamples x genes; 0 rows without resampling).
    nsig
        ``(real DEGs, predicted DEGs)`` against the control cells (pdex Wilcoxon, BH FDR below ``fdr``).
    boot_nsig
        The DEG counts in each resample (resamples x 2), or None when they were not recomputed.
    paired
        Whether the prediction was resampled together with its control cells.
    own_variance
        ``(sum_g s2_stim / n_stim, sum_g s2_ctrl / n_ctrl)``: the sampling variances of the real stimulated and
        control means, summed over genes (log-normalised units squared; sample variances, ddof 1), for
        :func:`~perturblab.predict.metrics_targets.perfect_discrimination_l2`; None in summaries stored before
        it was recorded.
    """

    genes: list
    delta_pred: np.ndarray
    delta_real: np.ndarray
    boot_pred: np.ndarray
    boot_real: np.ndarray
    nsig: tuple[float, float]
    boot_nsig: np.ndarray | None = None
    paired: bool = False
    own_variance: tuple[float, float] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The summary as numeric arrays (for a unit store); :meth:`from_arrays` reads them back."""
        out = {"delta_pred": self.delta_pred, "delta_real": self.delta_real, "boot_pred": self.boot_pred,
               "boot_real": self.boot_real, "nsig": np.asarray(self.nsig, dtype=float),
               "paired": np.asarray([self.paired])}
        if self.boot_nsig is not None:
            out["boot_nsig"] = self.boot_nsig
        if self.own_variance is not None:
            out["own_variance"] = np.asarray(self.own_variance, dtype=float)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], genes) -> TargetSummary:
        """The summary stored by :meth:`arrays` (``genes``: the gene names, in order)."""
        return cls(list(genes), np.asarray(arrays["delta_pred"], np.float64),
                   np.asarray(arrays["delta_real"], np.float64), np.asarray(arrays["boot_pred"], np.float64),
                   np.asarray(arrays["boot_real"], np.float64), tuple(np.asarray(arrays["nsig"], float)),
                   np.asarray(arrays["boot_nsig"], float) if "boot_nsig" in arrays else None,
                   bool(np.asarray(arrays["paired"]).ravel()[0]),
                   tuple(np.asarray(arrays["own_variance"], float)) if "own_variance" in arrays else None)


def summarise_target(pred, real_stim, ctrl, n_bootstrap: int = 100, paired="auto", layer: str | None = None,
                     fdr: float = 0.05, de_resample: bool = False, nsig: tuple[float, float] | None = None,
                     random_state: int = 0, name: str = "target") -> TargetSummary:
    """Mean deltas of one target's predicted and real stimulated cells from its control cells, in the full data
    and in ``n_bootstrap`` resamples, and the DEG counts: all :func:`targets_table` needs.

    Parameters
    ----------
    pred, real_stim, ctrl
        AnnData of the target's predicted, real stimulated and real control cells (log-normalised, same genes).
    n_bootstrap
        Resamples (0: none). Cells are drawn with replacement within each group; predicted cells made from
        control cells (``obs["source_cell"]``) are drawn together with them (see :func:`evaluate`).
    paired, layer
        As :func:`evaluate`.
    fdr
        FDR threshold of the DEG counts.
    de_resample
        Also count the DEGs in every resample (2 Wilcoxon tests per resample).
    nsig
        The DEG counts when already known (e.g. :func:`evaluate`'s ``de_nsig_counts_real/pred`` rows).
    random_state
        Seed of the resampling.
    name
        The target's name in error messages.

    Returns
    -------
    TargetSummary

    Raises
    ------
    InputError
        Genes that differ, or a group with fewer than 2 cells.
    """
    genes = list(pred.var_names)
    for what, a in (("real_stim", real_stim), ("ctrl", ctrl)):
        if list(a.var_names) != genes:
            raise InputError(f"{what} of target {name!r} has other genes than its prediction; use the same genes "
                             "in the same order")
    P, S, C = (_to_dense_checked(a, f"{n} of {name!r}", layer) for n, a in
               (("pred", pred), ("real_stim", real_stim), ("ctrl", ctrl)))
    if min(len(P), len(S), len(C)) < 2:
        raise InputError(f"target {name!r} has a group with fewer than 2 cells; drop it or add cells")
    src = source_index(pred, ctrl, paired)
    plan = ResamplingPlan({"pred": len(P), "stim": len(S), "ctrl": len(C)},
                          pairs={"pred": ("ctrl", src)} if src is not None else None, random_state=random_state)
    boot_p, boot_r, boot_n = [], [], []
    for _ in range(n_bootstrap):
        idx = plan.draw()
        p, s, c = P[idx["pred"]], S[idx["stim"]], C[idx["ctrl"]]
        cm = c.mean(0)
        boot_p.append(p.mean(0) - cm)
        boot_r.append(s.mean(0) - cm)
        if de_resample:
            boot_n.append(_nsig(p, s, c, fdr))
    cm = C.mean(0)
    known = nsig if nsig is not None else _nsig(P, S, C, fdr)
    counts = (float(known[0]), float(known[1]))
    shape = (0, len(genes))
    own_variance = (float(S.var(0, ddof=1, dtype=np.float64).sum() / len(S)),
                    float(C.var(0, ddof=1, dtype=np.float64).sum() / len(C)))
    return TargetSummary(genes, P.mean(0) - cm, S.mean(0) - cm,
                         np.asarray(boot_p) if boot_p else np.zeros(shape), np.asarray(boot_r) if boot_r else
                         np.zeros(shape), counts, np.asarray(boot_n, float) if de_resample else None,
                         src is not None, own_variance)


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
        metric's mean over targets, and ``de_spearman_sig`` with ``target="all"``; with them, per target and
        mean, ``perfect_discrimination_l2_shifted_control`` and ``perfect_discrimination_l2_decoded``: the
        l2 score a perfect prediction is expected to reach
        (:func:`~perturblab.predict.metrics_targets.perfect_discrimination_l2`, on all genes: ``exclude`` is
        not applied to them), which tells how far a model's score can go on these data. Deltas are taken from
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
    seeds = np.random.SeedSequence(random_state).spawn(len(targets))
    summaries = {t: summarise_target(groups[t][0], groups[t][1], groups[t][2], n_bootstrap=n_bootstrap,
                                     paired=paired, layer=layer, fdr=fdr,
                                     de_resample=de_resample, random_state=int(seed.generate_state(1)[0]), name=t)
                 for t, seed in zip(targets, seeds, strict=True)}
    return targets_table(summaries, ci=ci, ci_method=ci_method, exclude=exclude)


def targets_table(summaries: Mapping[str, TargetSummary], ci: float = 0.95, ci_method: str = "centered",
                  exclude: Mapping | None = None) -> pd.DataFrame:
    """The table of :func:`evaluate_targets` from one :class:`TargetSummary` per target.

    Resample ``b`` of every target is combined with resample ``b`` of the others (targets are resampled
    independently); the number of resamples is the smallest among the targets. ``de_spearman_sig`` gets an
    interval only when every summary holds resampled DEG counts.

    Raises
    ------
    InputError
        Fewer than 2 targets, or summaries over different genes.
    """
    if ci_method not in CI_METHODS:
        raise UnknownNameError("interval method", ci_method, CI_METHODS)
    targets = list(summaries)
    if len(targets) < 2:
        raise InputError(f"metrics over targets need at least 2 targets, got {len(targets)}")
    genes = summaries[targets[0]].genes
    for t in targets:
        if list(summaries[t].genes) != list(genes):
            raise InputError(f"target {t!r} has other genes than the first target's; use the same genes in the "
                             "same order for every target")
    names = pd.Index(genes)
    excl = [names.get_indexer(list((exclude or {}).get(t, []))) for t in targets]
    excl = [e[e >= 0] for e in excl]
    sums = [summaries[t] for t in targets]
    point = _target_scores((np.vstack([s.delta_pred for s in sums]), np.vstack([s.delta_real for s in sums])), excl)
    counts = np.array([s.nsig for s in sums], dtype=float)
    point_de = MD.de_spearman_sig(counts[:, 0], counts[:, 1])
    n_bootstrap = min(len(s.boot_pred) for s in sums)
    draws: dict[str, list] = {m: [] for m in point}
    for b in range(n_bootstrap):
        scores = _target_scores((np.vstack([s.boot_pred[b] for s in sums]),
                                 np.vstack([s.boot_real[b] for s in sums])), excl)
        for m, v in scores.items():
            draws[m].append(v)
    de_resampled = n_bootstrap > 0 and all(s.boot_nsig is not None and len(s.boot_nsig) >= n_bootstrap
                                           for s in sums)
    boot_nsig = [np.asarray(s.boot_nsig) for s in sums] if de_resampled else []
    draws_de = ([MD.de_spearman_sig(np.array([bn[b, 0] for bn in boot_nsig]),
                                    np.array([bn[b, 1] for bn in boot_nsig])) for b in range(n_bootstrap)]
                if de_resampled else [])

    is_paired = all(s.paired for s in sums)
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
        "" if de_resampled or not n_bootstrap else "no interval: DEGs not recomputed in resamples (de_resample=False)")
    if all(s.own_variance is not None for s in sums):
        rows += _perfect_rows(targets, sums, is_paired)
    return pd.DataFrame(rows)


def _perfect_rows(targets, sums, is_paired: bool) -> list[dict]:
    """Rows of the l2 discrimination score a perfect prediction is expected to reach, per target and their mean,
    for a prediction that carries the control cells' sample mean and for one that does not (no interval: an
    expected value of the data)."""
    real = np.vstack([s.delta_real for s in sums])
    own = np.array([s.own_variance for s in sums], dtype=np.float64)  # targets x (stimulated, control)
    v_stim, v_ctrl = own[:, 0], own[:, 1]
    rows = []
    for kind, v in (("shifted_control", v_stim + v_ctrl), ("decoded", v_stim)):
        metric = f"perfect_discrimination_l2_{kind}"
        values = perfect_discrimination_l2(real, v)
        for t, value in [*zip(targets, values, strict=True), ("mean", values.mean())]:
            rows.append({"target": t, "metric": metric, "gene_set": "all", "value": float(value),
                         "ci_low": np.nan, "ci_high": np.nan, "n_bootstrap": 0, "definition": TARGET_METRICS[metric],
                         "ci_method": "none", "ci_flag": "expected value, no interval", "bias": np.nan,
                         "paired": is_paired})
    return rows
