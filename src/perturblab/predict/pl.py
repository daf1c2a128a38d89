"""Plots of the prediction wing (matplotlib); every function draws one table or one AnnData a run produces and
returns the Axes (an array of Axes for one panel per model or gene), as scanpy's ``sc.pl``.

From cells (control, real and predicted cells in one AnnData: :func:`perturblab.predict.combine_cells`, log-
normalised expression, cells x genes):

- :func:`mean_var_scatter`: per-gene mean (or variance) of each prediction against the real stimulated cells;
- :func:`pca_overlay`: PCA fitted on the real cells, predicted cells projected;
- :func:`deg_violins`: a few genes' expression in control, real and predicted cells.

From tidy tables (``metrics`` of :func:`~perturblab.predict.run_loco`, ``benchmark`` of
:func:`~perturblab.predict.benchmark.run_benchmark`, ``trials`` / ``importances`` of
:func:`~perturblab.predict.tuning.tune`):

- :func:`metric_bars`: one metric per model with its interval;
- :func:`metric_heatmap`: model x target heatmap of one metric per dataset variant;
- :func:`degradation`: how much worse each model gets in each variant than in the balanced one;
- :func:`training_curves`: training and validation loss per epoch;
- :func:`tuning_history`: the score of each trial and the best so far;
- :func:`param_importances`: fANOVA importance of each hyperparameter.

The HTML reports of ``perturblab predict``, ``benchmark`` and ``tune`` are composed of these figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import to_dense
from ..exceptions import InputError, MissingKeyError
from . import metrics as M
from .models.base import CELL_SOURCE_KEY, MODEL_KEY

__all__ = ["deg_violins", "degradation", "mean_var_scatter", "metric_bars", "metric_heatmap", "param_importances",
           "pca_overlay", "training_curves", "tuning_history"]


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _panels(axes, n: int, size: tuple[float, float], ncols: int | None = None, **kwargs) -> np.ndarray:
    """``n`` Axes: ``axes`` if given (as many as needed), else a new figure of one row (or ``ncols`` columns)."""
    if axes is not None:
        flat = np.ravel(np.asarray(axes, dtype=object))
        if flat.size < n:
            raise InputError(f"{n} panels are needed but {flat.size} Axes were given; pass axes=None")
        return flat[:n]
    import matplotlib.pyplot as plt

    ncols = min(n, ncols or n)
    nrows = -(-n // ncols)
    _, grid = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kwargs)
    flat = grid.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return flat[:n]


def _need(table: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise MissingKeyError(f"the table lacks column(s) {missing}; pass {what}")


def _sources(cells, models=None) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray]]:
    """Control rows, real rows and ``{model: predicted rows}`` of a combined AnnData (dense float64)."""
    if CELL_SOURCE_KEY not in cells.obs:
        raise MissingKeyError(f"cells.obs has no {CELL_SOURCE_KEY!r}; build the cells with "
                              "perturblab.predict.combine_cells(pred, control, real)")
    src = cells.obs[CELL_SOURCE_KEY].astype(str).to_numpy()
    model = cells.obs[MODEL_KEY].astype(str).to_numpy() if MODEL_KEY in cells.obs else np.full(len(src), "model")
    X = to_dense(cells.X, np.float64)
    names = list(dict.fromkeys(model[src == "predicted"]))
    if models is not None:
        from .._validation import check_values_present

        check_values_present(list(models), names, "model (in the predicted cells)")
        names = list(models)
    preds = {m: X[(src == "predicted") & (model == m)] for m in names}
    ctrl = X[src == "control"] if (src == "control").any() else None
    real = X[src == "real"] if (src == "real").any() else None
    return ctrl, real, preds


def mean_var_scatter(cells, *, stat: str = "mean", degs=None, models=None, axes=None) -> np.ndarray:
    """Per-gene mean (``stat="mean"``) or variance (``"var"``) of each model's predicted cells against the real
    stimulated cells; each panel's title gives R2 (squared Pearson) and 1 - SS_res/SS_tot (all genes, and the
    ``degs`` when more than 2).

    Parameters
    ----------
    cells
        :func:`perturblab.predict.combine_cells` of the predictions and the real cells (log-normalised).
    stat
        ``"mean"`` or ``"var"``.
    degs
        Gene names highlighted in red (e.g. the real top-100 DEGs).
    models
        Models shown (default all, in order of appearance).
    axes
        One Axes per model (default a new figure).

    Returns
    -------
    numpy.ndarray
        The Axes, one per model.

    Raises
    ------
    MissingKeyError, InputError
        Cells not built by ``combine_cells``, no real cells, an unknown ``stat``.
    """
    if stat not in ("mean", "var"):
        raise InputError(f"stat must be 'mean' or 'var', got {stat!r}")
    _, real_X, preds = _sources(cells, models)
    if real_X is None or not preds:
        raise InputError("the cells hold no real stimulated cells or no prediction; pass both to combine_cells")
    f = (lambda X: X.mean(0)) if stat == "mean" else (lambda X: X.var(0))
    real = f(real_X)
    is_deg = np.isin(np.asarray(cells.var_names), list(degs) if degs is not None else [])
    panels = _panels(axes, len(preds), (3.4, 3.4))
    for ax, (name, X) in zip(panels, preds.items()):
        p = f(X)
        ax.scatter(real[~is_deg], p[~is_deg], s=4, c="0.6", label="genes", rasterized=True)
        ax.scatter(real[is_deg], p[is_deg], s=8, c="tab:red", label=f"top {is_deg.sum()} DEGs")
        lo, hi = min(real.min(), p.min()), max(real.max(), p.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set_title(f"{name}\nR2 {M.r2_pearson(p, real):.3f} | 1-SSr/SSt {M.r2_score(real, p):.3f}"
                     + (f"\nDEGs R2 {M.r2_pearson(p[is_deg], real[is_deg]):.3f}" if is_deg.sum() > 2 else ""),
                     fontsize=8)
        ax.set_xlabel(f"real stimulated {stat}")
        ax.set_ylabel(f"predicted {stat}")
    panels[0].legend(fontsize=7, loc="upper left")
    panels[0].figure.tight_layout()
    return panels


def pca_overlay(cells, *, models=None, n_pcs: int = 2, random_state: int = 0, axes=None) -> np.ndarray:
    """Cells on the first two PCs of a PCA fitted on the real cells only (control + real stimulated); one panel
    per model with its predicted cells projected.

    Parameters
    ----------
    cells
        :func:`perturblab.predict.combine_cells` with control, real and predicted cells.
    models, axes
        As :func:`mean_var_scatter`.
    n_pcs, random_state
        PCA components (>= 2) and the seed of its solver.

    Returns
    -------
    numpy.ndarray
        The Axes, one per model.
    """
    from sklearn.decomposition import PCA

    ctrl, real, preds = _sources(cells, models)
    if ctrl is None or real is None or not preds:
        raise InputError("the cells need control, real and predicted cells; pass all three to combine_cells")
    pca = PCA(n_components=max(2, n_pcs), random_state=random_state).fit(np.vstack([real, ctrl]))
    zs, zc = pca.transform(real), pca.transform(ctrl)
    panels = _panels(axes, len(preds), (3.2, 3.2), sharex=True, sharey=True)
    for ax, (name, X) in zip(panels, preds.items()):
        zp = pca.transform(X)
        ax.scatter(zc[:, 0], zc[:, 1], s=4, c="tab:blue", alpha=0.5, label="control")
        ax.scatter(zs[:, 0], zs[:, 1], s=4, c="tab:orange", alpha=0.5, label="real stimulated")
        ax.scatter(zp[:, 0], zp[:, 1], s=4, c="tab:green", alpha=0.5, label="predicted")
        ax.set_title(str(name), fontsize=9)
        ax.set_xlabel("PC1 (real cells)")
    panels[0].set_ylabel("PC2")
    panels[0].legend(fontsize=7, markerscale=3)
    panels[0].figure.tight_layout()
    return panels


def deg_violins(cells, genes, *, models=None, axes=None) -> np.ndarray:
    """Violins of a few genes (e.g. the top DEGs): control, real stimulated and each model's predicted cells.

    Parameters
    ----------
    cells
        :func:`perturblab.predict.combine_cells` output.
    genes
        Gene names (one panel each).
    models, axes
        As :func:`mean_var_scatter` (one Axes per gene).

    Returns
    -------
    numpy.ndarray
        The Axes, one per gene.
    """
    genes = [str(g) for g in genes]
    from .._validation import check_values_present

    check_values_present(genes, list(cells.var_names.astype(str)), "gene")
    ctrl, real, preds = _sources(cells, models)
    groups = {k: v for k, v in (("control", ctrl), ("real stim", real)) if v is not None}
    groups.update(preds)
    col = {g: i for i, g in enumerate(cells.var_names.astype(str))}
    panels = _panels(axes, len(genes), (0.8 * len(groups) + 1, 2.8), ncols=3)
    for ax, g in zip(panels, genes):
        ax.violinplot([X[:, col[g]] for X in groups.values()], showmedians=True)
        ax.set_xticks(range(1, len(groups) + 1), list(groups), rotation=60, fontsize=7)
        ax.set_title(g, fontsize=9)
    panels[0].set_ylabel("log-normalised expression")
    panels[0].figure.tight_layout()
    return panels


def training_curves(histories, *, ax=None):
    """Training and validation loss per epoch of each trained model (dotted line: the kept epoch).

    Parameters
    ----------
    histories
        ``{name: TrainingHistory}`` (``LocoResult.histories`` with names as keys), or a tidy DataFrame with
        columns ``model, epoch, train_loss, val_loss`` (optional ``best_epoch``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(histories, pd.DataFrame):
        _need(histories, ["model", "epoch", "train_loss", "val_loss"], "a table of training histories")
        items = [(str(m), g, g["best_epoch"].iloc[0] if "best_epoch" in g else None)
                 for m, g in histories.groupby("model", sort=False)]
    else:
        items = [(str(name), h.history, getattr(h, "best_epoch", None)) for name, h in histories.items()]
    ax = _axes(ax, (5, 3.2))
    for name, df, best in items:
        if len(df):
            line, = ax.plot(df["epoch"], df["train_loss"], label=f"{name} train")
            ax.plot(df["epoch"], df["val_loss"], "--", c=line.get_color(), label=f"{name} validation")
            if best is not None:
                ax.axvline(best, c=line.get_color(), lw=0.6, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (training objective)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax


def metric_bars(metrics: pd.DataFrame, *, metric: str = "r2_pearson_mean", gene_set: str = "all",
                target: str | None = None, ax=None):
    """One metric per model (mean over targets, seeds and variants unless ``target`` is given), with the mean
    interval as error bars; models whose metric is NaN (not applicable) are listed as such.

    Parameters
    ----------
    metrics
        The tidy table of :func:`~perturblab.predict.run_loco` (``metrics``) or
        :func:`~perturblab.predict.benchmark.run_benchmark` (``table``): ``model, target, metric, gene_set, value``
        (and ``ci_low, ci_high``).
    metric, gene_set
        The row shown.
    target
        One held-out cell type (default: the mean over all).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(metrics, ["model", "target", "metric", "gene_set", "value"], "the metrics table of run_loco or run_benchmark")
    sub = metrics[(metrics["metric"] == metric) & (metrics["gene_set"] == gene_set)]
    if target is not None:
        sub = sub[sub["target"].astype(str) == str(target)]
    if sub.empty:
        raise InputError(f"no rows of {metric!r} on {gene_set!r}" + (f" for target {target!r}" if target else "")
                         + "; see the table's metric and gene_set columns")
    cols = [c for c in ("value", "ci_low", "ci_high") if c in sub]
    g = sub.groupby("model", sort=False)[cols].mean()
    ax = _axes(ax, (6, 0.35 * len(g) + 1.5))
    y = np.arange(len(g))
    vals = g["value"].to_numpy(dtype=float)
    err = None
    if {"ci_low", "ci_high"} <= set(g.columns):
        lo, hi = g["ci_low"].to_numpy(dtype=float), g["ci_high"].to_numpy(dtype=float)
        err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
        err = np.where(np.isfinite(err), err, 0.0)
    ax.barh(y, np.nan_to_num(vals), xerr=err, color=["0.7" if m == "ceiling" else "C0" for m in g.index])
    labels = [f"{m} (n/a)" if not np.isfinite(v) else str(m) for m, v in zip(g.index, vals)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} ({gene_set})" + ("" if target else ", mean over targets"))
    return ax


def metric_heatmap(table: pd.DataFrame, *, metric: str, gene_set: str, variants=None, axes=None) -> np.ndarray:
    """Model x target heatmap of one metric (mean over seeds), one panel per dataset variant.

    Parameters
    ----------
    table
        The benchmark table (``model, target, variant, metric, gene_set, value``).
    metric, gene_set
        The row shown; the colour scale runs from bad to good (:func:`~perturblab.predict.benchmark.higher_is_better`).
    variants
        Variants shown (default all in the table).

    Returns
    -------
    numpy.ndarray
        The Axes, one per variant.
    """
    from .benchmark.stats import higher_is_better

    _need(table, ["model", "target", "variant", "metric", "gene_set", "value"], "the table of run_benchmark")
    sub = table[(table["metric"] == metric) & (table["gene_set"] == gene_set)]
    variants = list(dict.fromkeys(sub["variant"])) if variants is None else list(variants)
    if sub.empty or not variants:
        raise InputError(f"no rows of {metric!r} on {gene_set!r}; see the table's metric and gene_set columns")
    panels = _panels(axes, len(variants), (4.2, 0.5 * sub["model"].nunique() + 2.2))
    cmap = "viridis" if higher_is_better(metric) else "viridis_r"
    vmin, vmax = sub["value"].min(), sub["value"].max()
    im = None
    for ax, variant in zip(panels, variants):
        wide = (sub[sub["variant"] == variant].groupby(["model", "target"], observed=True)["value"].mean()
                .unstack("target"))
        im = ax.imshow(wide.to_numpy(dtype=float), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(wide.shape[1]), wide.columns, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(wide.shape[0]), wide.index, fontsize=8)
        for (i, j), v in np.ndenumerate(wide.to_numpy(dtype=float)):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        ax.set_title(str(variant), fontsize=9)
    panels[0].figure.colorbar(im, ax=list(panels), shrink=0.8, label=f"{metric} ({gene_set})")
    return panels


def degradation(deg: pd.DataFrame, *, metric: str, gene_set: str, ax=None):
    """How much worse each model is in each dataset variant than in the balanced one (mean over targets and
    seeds), as horizontal bars.

    Parameters
    ----------
    deg
        :func:`perturblab.predict.benchmark.degradation` of a benchmark table (``model, variant, metric,
        gene_set, worse_by``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(deg, ["model", "variant", "metric", "gene_set", "worse_by"], "perturblab.predict.benchmark.degradation(...)")
    sub = deg[(deg["metric"] == metric) & (deg["gene_set"] == gene_set)]
    wide = sub.groupby(["model", "variant"], observed=True)["worse_by"].mean().unstack("variant")
    ax = _axes(ax, (6, 0.35 * len(wide) + 1.8))
    wide.plot.barh(ax=ax)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"{metric} ({gene_set}): worse than balanced by (mean over targets, seeds)")
    return ax


def tuning_history(trials: pd.DataFrame, *, direction: str = "maximize", ax=None):
    """The inner-LOCO score of each complete trial and the best so far; pruned trials as grey lines.

    Parameters
    ----------
    trials
        ``TuningResult.trials`` (``study.trials_dataframe()``: ``number, value, state``).
    direction
        ``"maximize"`` or ``"minimize"`` (the study's).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(trials, ["number", "value", "state"], "TuningResult.trials")
    ax = _axes(ax, (6.5, 3.5))
    states = trials["state"].astype(str)
    done = trials[states == "COMPLETE"]
    ax.scatter(done["number"], done["value"], s=18, label="complete trial")
    for n in trials[states == "PRUNED"]["number"]:
        ax.axvline(n, color="0.8", lw=0.8, zorder=0)
    if len(done):
        best = done["value"].cummax() if direction == "maximize" else done["value"].cummin()
        ax.step(done["number"], best, where="post", color="C1", label="best so far")
    ax.set_xlabel("trial (grey lines: pruned)")
    ax.set_ylabel("inner-LOCO score")
    ax.legend(fontsize=8)
    return ax


def param_importances(importances: pd.DataFrame, *, ax=None):
    """fANOVA importance of each tuned hyperparameter (``TuningResult.importances``: ``param, importance``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(importances, ["param", "importance"], "TuningResult.importances")
    imp = importances.sort_values("importance")
    ax = _axes(ax, (5.5, 0.35 * len(imp) + 1.2))
    ax.barh(imp["param"], imp["importance"])
    ax.set_xlabel("fANOVA importance")
    return ax
