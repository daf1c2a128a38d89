"""The data ceiling (positive control) and the calibration of metrics against positive and negative controls.

The ceiling answers "how well could any model score on these cells?": the real stimulated cells of the
target are split into two random halves and one half is evaluated as the "prediction" of the other, with
the same metric suite (cell-eval's ``--ceiling``, ``MetricsEvaluator.compute_ceiling``; Mejia et al. 2025's
"technical duplicate" positive control). A metric is calibrated (Mejia et al. 2025, "Diversity by design")
when this positive control scores clearly better than the negative control, a prediction that ignores the
target (the mean of the other cell types' stimulated cells, ``train_mean``).

Input representation: log-normalised AnnData (cells x genes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError, UnknownNameError
from .evaluate import evaluate
from .suite import higher_is_better

__all__ = ["calibrate", "ceiling", "higher_is_better", "split_halves"]


def ceiling(real_stim, ctrl, method: str = "split", random_state: int = 0, **evaluate_kwargs) -> pd.DataFrame:
    """Metric rows of the data ceiling of one target: half of its real stimulated cells as the prediction
    of the other half.

    Parameters
    ----------
    real_stim, ctrl
        Real stimulated and control cells of the target (log-normalised, same genes).
    method
        ``"split"`` (default): a seeded random split without replacement into two halves of
        ``floor(n/2)`` and ``ceil(n/2)`` cells (every cell used once; metrics are computed on half the
        cells, so the ceiling is conservative for metrics that improve with cell numbers).
        ``"bootstrap"``: cell-eval's ``_bootstrap_halves``, ``2n`` draws with replacement split into two
        halves of ``n`` (same sizes as the data, but duplicated cells: about 63% distinct per half).
    random_state
        Seed of the split (and of :func:`evaluate`'s resampling unless given there).
    **evaluate_kwargs
        Passed to :func:`evaluate` (``n_bootstrap``, ``n_degs``, ``perturbed_reference``...). The "prediction"
        half is not made from control cells, so the resampling is unpaired.

    Returns
    -------
    pandas.DataFrame
        :func:`evaluate`'s table with ``ceiling_method`` and ``n_half`` (cells in the prediction half) added.

    Raises
    ------
    InputError
        Fewer than 4 stimulated cells, or an unknown method.

    Examples
    --------
    >>> rows = ceiling(split.target_stim, split.target_ctrl, n_bootstrap=50)   # doctest: +SKIP
    """
    half_pred, half_real = split_halves(real_stim, method, random_state)
    kwargs = {"random_state": random_state, **evaluate_kwargs, "paired": False}
    table = evaluate(half_pred, half_real, ctrl, **kwargs)
    return table.assign(ceiling_method=method, n_half=half_pred.n_obs)


def split_halves(real_stim, method: str = "split", random_state: int = 0):
    """The two halves of :func:`ceiling`: ``(prediction half, truth half)`` of the real stimulated cells.

    Parameters
    ----------
    real_stim
        Real stimulated cells of one target (AnnData, cells x genes).
    method, random_state
        As :func:`ceiling` (``"split"``: ``floor(n/2)`` and ``ceil(n/2)`` cells without replacement;
        ``"bootstrap"``: cell-eval's two halves of ``n`` draws with replacement).

    Returns
    -------
    tuple of anndata.AnnData
        Copies with unique obs names.

    Raises
    ------
    InputError
        Fewer than 4 stimulated cells.
    UnknownNameError
        An unknown method.
    """
    if method not in ("split", "bootstrap"):
        raise UnknownNameError("ceiling method", method, ["split", "bootstrap"])
    n = real_stim.n_obs
    if n < 4:
        raise InputError(f"the ceiling needs at least 4 stimulated cells to split in two, got {n}")
    rng = np.random.default_rng(random_state)
    if method == "split":
        perm = rng.permutation(n)
        first, second = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
    else:
        draws = rng.integers(0, n, size=2 * n)
        first, second = draws[:n], draws[n:]
    half_pred, half_real = real_stim[first].copy(), real_stim[second].copy()
    half_pred.obs_names_make_unique()
    half_real.obs_names_make_unique()
    return half_pred, half_real


def calibrate(table: pd.DataFrame, positive: str = "ceiling", negative: str = "train_mean",
              model_col: str = "model", by=("target",)) -> pd.DataFrame:
    """Place every model between a metric's negative and positive controls (Mejia et al. 2025).

    For each group of ``by`` and each ``(metric, gene_set)``: ``scaled = (value - neg) / (pos - neg)`` (0 =
    as good as the negative control, 1 = as good as the data ceiling, whatever the metric's direction), and
    whether the metric is calibrated there: the positive control better than the negative one
    (``calibrated``), with non-overlapping intervals (``separated``).

    Parameters
    ----------
    table
        Rows of :func:`evaluate` for several models, with a ``model_col`` column holding ``positive`` (the
        :func:`ceiling` rows) and ``negative`` (e.g. the ``train_mean`` baseline) among the models.
    positive, negative
        Names of the two controls in ``model_col``.
    model_col, by
        Column naming the model, and the columns grouping rows (targets, seeds...).

    Returns
    -------
    pandas.DataFrame
        ``*by, metric, gene_set, model, value, positive, negative, scaled, calibrated, separated`` (metrics
        without a better direction, such as DEG counts, are left out).

    Raises
    ------
    MissingKeyError
        If a column is missing or a control is absent from the table.
    """
    by = list(by)
    for col in [model_col, "metric", "gene_set", "value", *by]:
        if col not in table:
            raise MissingKeyError(f"table has no column {col!r}; pass evaluate's rows with {model_col!r} and "
                                  f"{by} columns")
    models = set(table[model_col].astype(str))
    for control in (positive, negative):
        if control not in models:
            raise MissingKeyError(f"no rows of the control {control!r} in table[{model_col!r}]; add its rows "
                                  "(ceiling() for the positive control, the train_mean baseline for the negative)")
    keys = [*by, "metric", "gene_set"]
    has_ci = {"ci_low", "ci_high"} <= set(table.columns)
    cols = keys + ["value"] + (["ci_low", "ci_high"] if has_ci else [])
    pos = table.loc[table[model_col] == positive, cols].rename(
        columns={"value": "positive", "ci_low": "pos_low", "ci_high": "pos_high"})
    neg = table.loc[table[model_col] == negative, cols].rename(
        columns={"value": "negative", "ci_low": "neg_low", "ci_high": "neg_high"})
    out = table[[*keys, model_col, "value"]].merge(pos, on=keys).merge(neg, on=keys)
    direction = out["metric"].map(higher_is_better)
    out = out[direction.notna()].copy()
    sign = np.where(out["metric"].map(higher_is_better).astype(bool), 1.0, -1.0)
    span = out["positive"] - out["negative"]
    out["scaled"] = np.where(span != 0, (out["value"] - out["negative"]) / span.replace(0, np.nan), np.nan)
    out["calibrated"] = sign * span > 0
    if has_ci:
        better_low = np.where(sign > 0, out["pos_low"] > out["neg_high"], out["pos_high"] < out["neg_low"])
        out["separated"] = better_low
    else:
        out["separated"] = np.nan
    drop = [c for c in ("pos_low", "pos_high", "neg_low", "neg_high") if c in out]
    return out.drop(columns=drop).rename(columns={model_col: "model"}).reset_index(drop=True)

