"""Figures of a perturbation-response prediction (matplotlib; return the Figure).

Inputs are dense arrays / AnnData of **log-normalised** expression, cells x genes.
"""

from __future__ import annotations

import numpy as np

from .._validation import to_dense
from . import metrics as M

__all__ = ["mean_var_scatter", "pca_scatter", "deg_violins", "training_curves"]


def mean_var_scatter(preds: dict, real_stim, ctrl_names=None, degs=None, stat: str = "mean"):
    """Per-gene mean (or variance, ``stat="var"``) of each prediction vs the real stimulated cells.

    ``preds`` maps a model name to its predicted AnnData; ``degs`` (gene names) are
    highlighted; each panel's title gives R2 (squared Pearson) and 1 - SS_res/SS_tot.
    """
    import matplotlib.pyplot as plt

    f = (lambda X: X.mean(0)) if stat == "mean" else (lambda X: X.var(0))
    real = f(to_dense(real_stim.X, np.float64))
    is_deg = np.isin(np.asarray(real_stim.var_names), list(degs) if degs is not None else [])
    n = len(preds)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.4), squeeze=False)
    for ax, (name, pred) in zip(axes[0], preds.items()):
        p = f(to_dense(pred.X, np.float64))
        ax.scatter(real[~is_deg], p[~is_deg], s=4, c="0.6", label="genes", rasterized=True)
        ax.scatter(real[is_deg], p[is_deg], s=8, c="tab:red", label=f"top {is_deg.sum()} DEGs")
        lo, hi = min(real.min(), p.min()), max(real.max(), p.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set_title(f"{name}\nR2 {M.r2_pearson(p, real):.3f} | 1-SSr/SSt {M.r2_score(real, p):.3f}"
                     + (f"\nDEGs R2 {M.r2_pearson(p[is_deg], real[is_deg]):.3f}" if is_deg.sum() > 2 else ""),
                     fontsize=8)
        ax.set_xlabel(f"real stimulated {stat}")
        ax.set_ylabel(f"predicted {stat}")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def pca_scatter(preds: dict, real_stim, ctrl, n_pcs: int = 2, random_state: int = 0):
    """Cells on the first two PCs of a PCA fitted on the real cells (control + stimulated only);
    one panel per model with control, real stimulated and predicted cells."""
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    S, C = to_dense(real_stim.X, np.float64), to_dense(ctrl.X, np.float64)
    pca = PCA(n_components=n_pcs, random_state=random_state).fit(np.vstack([S, C]))
    zs, zc = pca.transform(S), pca.transform(C)
    n = len(preds)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False, sharex=True, sharey=True)
    for ax, (name, pred) in zip(axes[0], preds.items()):
        zp = pca.transform(to_dense(pred.X, np.float64))
        ax.scatter(*zc.T, s=4, c="tab:blue", alpha=0.5, label="control")
        ax.scatter(*zs.T, s=4, c="tab:orange", alpha=0.5, label="real stimulated")
        ax.scatter(*zp.T, s=4, c="tab:green", alpha=0.5, label="predicted")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("PC1 (real cells)")
    axes[0][0].set_ylabel("PC2")
    axes[0][0].legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return fig


def deg_violins(preds: dict, real_stim, ctrl, genes):
    """Violin plots of a few genes (e.g. the top DEGs): control, real stimulated, each prediction."""
    import matplotlib.pyplot as plt

    genes = list(genes)
    groups = {"control": ctrl, "real stim": real_stim, **preds}
    ncols = min(3, len(genes))
    nrows = -(-len(genes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.8 * len(groups) * ncols + 1, 2.8 * nrows), squeeze=False)
    for ax in axes.ravel()[len(genes):]:
        ax.set_visible(False)
    for ax, g in zip(axes.ravel(), genes):
        data = [to_dense(a[:, g].X, np.float64).ravel() for a in groups.values()]
        ax.violinplot(data, showmedians=True)
        ax.set_xticks(range(1, len(groups) + 1), list(groups), rotation=60, fontsize=7)
        ax.set_title(str(g), fontsize=9)
    for row in axes:
        row[0].set_ylabel("log-normalised expression")
    fig.tight_layout()
    return fig


def training_curves(histories: dict):
    """Training and validation loss per epoch of each trained model (``{name: TrainingHistory}``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, h in histories.items():
        df = h.history
        if len(df):
            line, = ax.plot(df["epoch"], df["train_loss"], label=f"{name} train")
            ax.plot(df["epoch"], df["val_loss"], "--", c=line.get_color(), label=f"{name} validation")
            ax.axvline(h.best_epoch, c=line.get_color(), lw=0.6, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (training objective)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
