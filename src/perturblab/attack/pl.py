"""Plots of the attack wing (matplotlib); every function takes a tidy table and returns the Axes.

Named after the table they draw, as scanpy's ``sc.pl``:

- :func:`budget_curve`: white-box success against the gene budget (:func:`~perturblab.attack.whitebox.budget_curve`);
- :func:`fewest_genes`: which attack needs the fewest genes per cluster
  (:func:`~perturblab.attack.compare.fewest_genes`);
- :func:`strength_response`: flipping genes / moved cells against modification strength
  (:func:`~perturblab.attack.strength.strength_response`);
- :func:`flip_taxonomy`: flips by category per classifier (:func:`~perturblab.attack.taxonomy.flip_taxonomy`);
- :func:`label_noise`: accuracy or vulnerability against the label-noise rate
  (:func:`~perturblab.attack.label_noise.label_noise_sweep`);
- :func:`abstention`: abstention rate before / after an attack per cluster
  (:func:`~perturblab.attack.abstention.abstention_table`);
- the audit's figures: :func:`vulnerability_heatmap`, :func:`robustness_curves`, :func:`embedding_shift`,
  :func:`transfer_matrix` (tables of :func:`perturblab.audit.run_audit`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import InputError, MissingKeyError

__all__ = ["abstention", "budget_curve", "embedding_shift", "fewest_genes", "flip_taxonomy", "label_noise",
           "robustness_curves", "strength_response", "transfer_matrix", "vulnerability_heatmap"]

_MARKERS = {"single_gene": "o", "cgd": "s", "pgd": "^", "fgsm": "v"}
_CATEGORY_COLORS = {"no_flip": "#dddddd", "to_correct": "#4daf4a", "already_wrong": "#999999",
                    "within_label": "#80b1d3", "to_abstention": "#fdb462", "real_flip": "#e41a1c"}


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def _need(table: pd.DataFrame, cols) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise MissingKeyError(f"the table lacks column(s) {missing}; pass the table of the matching perturblab.attack "
                              "function")


def budget_curve(table: pd.DataFrame, *, metric: str = "cell_success_rate", by: str | None = None, ax=None):
    """Success against the number of genes changed.

    Parameters
    ----------
    table
        :func:`perturblab.attack.whitebox.budget_curve` output (several classifiers concatenated).
    metric
        ``"cell_success_rate"`` (default), ``"flipped"`` (fraction of clusters flipped) or any numeric column.
    by
        Extra grouping for separate lines (e.g. ``"cluster"``); lines are always split by classifier,
        method and amplitude, averaging the clusters otherwise.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    keys = ["classifier", "method", "amplitude"] + ([by] if by else [])
    _need(table, [*keys, "k", metric])
    ax = _axes(ax)
    data = table.assign(_y=table[metric].astype(float))
    for key, sub in data.groupby(keys, sort=True):
        curve = sub.groupby("k")["_y"].mean()
        values = [str(v) for v in key]  # the group's classifier, method, amplitude (and by)
        ax.plot(curve.index, curve.to_numpy(), marker=_MARKERS.get(values[1], "o"), label=", ".join(values))
    ax.set_xscale("log")
    ks = sorted(data["k"].unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("genes changed (k, L0 budget)")
    ax.set_ylabel({"cell_success_rate": "cells whose answer changed (fraction)",
                   "flipped": "clusters flipped (fraction)"}.get(metric, metric))
    ax.set_ylim(-0.02, 1.02) if data["_y"].between(0, 1).all() else None
    ax.legend(title=" / ".join(keys), fontsize="small")
    return ax


def fewest_genes(table: pd.DataFrame, *, ax=None):
    """Smallest number of genes that flips each cluster, per attack (log scale); attacks that did not
    flip the cluster within their budget are drawn as open markers at the right edge ("no flip").

    Parameters
    ----------
    table
        :func:`perturblab.attack.compare.fewest_genes` output (several classifiers concatenated).
    ax
        Axes to draw on (default: a new figure sized to the number of rows).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(table, ["classifier", "cluster", "attack", "min_genes", "applicable"])
    data = table[table["applicable"].astype(bool)]
    pairs = list(dict.fromkeys(zip(data["classifier"].astype(str), data["cluster"].astype(str), strict=True)))
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(pairs) + 1)))
    y = {p: i for i, p in enumerate(pairs)}
    top = np.nanmax(data["min_genes"].to_numpy(dtype=float)) if data["min_genes"].notna().any() else 1.0
    edge = max(2.0, top) * 2
    attacks = list(dict.fromkeys(data["attack"].astype(str)))
    for j, attack in enumerate(attacks):
        sub = data[data["attack"] == attack]
        sub_pairs = zip(sub["classifier"].astype(str), sub["cluster"].astype(str), strict=True)
        pos = np.array([y[(c, k)] for c, k in sub_pairs])
        off = (j - (len(attacks) - 1) / 2) * 0.15
        val = sub["min_genes"].to_numpy(dtype=float)
        ok = ~np.isnan(val)
        color = f"C{j}"
        ax.scatter(val[ok], pos[ok] + off, marker=_MARKERS.get(attack, "o"), color=color, label=attack, zorder=3)
        ax.scatter(np.full((~ok).sum(), edge), pos[~ok] + off, marker=_MARKERS.get(attack, "o"), facecolors="none",
                   edgecolors=color, zorder=3)
    ax.set_xscale("log")
    ax.axvline(edge / 1.4, color="0.8", lw=0.8, ls=":")
    ax.text(edge, -0.9, "no flip", ha="center", va="bottom", fontsize="small", color="0.4")
    ax.set_yticks(range(len(pairs)), [f"{c}: {k}" for c, k in pairs])
    ax.set_ylim(len(pairs) - 0.5, -1.0)
    ax.set_xlabel("genes needed to flip the cluster (fewer = more vulnerable)")
    ax.legend(title="attack", fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


def strength_response(table: pd.DataFrame, *, metric: str = "n_flipping_genes", ax=None):
    """Response to modification strength per classifier (clusters summed for counts, averaged for fractions).

    Parameters
    ----------
    table
        :func:`perturblab.attack.strength.strength_response` output (several classifiers concatenated).
    metric
        ``"n_flipping_genes"`` (default), ``"frac_cells_changed_mean"`` or ``"frac_cells_changed_max"``
        (symmetric-log scale: zeros and large counts on one axis).
    ax
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(table, ["classifier", "strength", metric])
    data = table[table["strength"].notna()]
    if data.empty:
        raise InputError("no modification of the table has a strength (deciles, perc1/99, aberrant); nothing to draw")
    ax = _axes(ax)
    agg = "sum" if metric.startswith("n_") else "mean"
    for clf, sub in data.groupby("classifier", sort=True):
        curve = sub.groupby("strength")[metric].agg(agg)
        ax.plot(curve.index, curve.to_numpy(), marker="o", label=str(clf))
    ticks = sorted(data["strength"].unique())
    names = {10.0: "perc99", -10.0: "perc1", 11.0: "+aberr.", -11.0: "-aberr."}
    ax.set_xticks(ticks, [names.get(t, f"{t:+g}") for t in ticks], rotation=90, fontsize="small")
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_yscale("symlog", linthresh=1 if agg == "sum" else 1e-3)  # zeros and a few thousand on one axis
    ax.set_ylim(bottom=0)
    ax.set_xlabel("modification strength (deciles shifted; perc1/99; aberrant)")
    ax.set_ylabel({"n_flipping_genes": "single genes that flip a cluster (all clusters)",
                   "frac_cells_changed_mean": "cells moved per gene (mean fraction)",
                   "frac_cells_changed_max": "cells moved by the strongest gene (fraction)"}.get(metric, metric))
    ax.legend(title="classifier", fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


def flip_taxonomy(table: pd.DataFrame, *, by: str = "classifier", ax=None):
    """Stacked bars of flip categories per ``by`` group (flips only: ``no_flip`` rows are left out).

    Parameters
    ----------
    table
        :func:`perturblab.attack.taxonomy.flip_taxonomy` output, or its
        :func:`~perturblab.attack.taxonomy.taxonomy_counts` (one column per category).
    by
        Grouping column (default ``"classifier"``).
    ax
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .taxonomy import FLIP_CATEGORIES, taxonomy_counts

    counts = table if "real_flip" in table.columns else taxonomy_counts(table, by=(by,))
    _need(counts, [by])
    ax = _axes(ax)
    left = np.zeros(len(counts))
    labels = counts[by].astype(str).to_numpy()
    for cat in FLIP_CATEGORIES[1:]:
        v = counts[cat].to_numpy(dtype=float) if cat in counts else np.zeros(len(counts))
        ax.barh(labels, v, left=left, color=_CATEGORY_COLORS[cat], label=cat.replace("_", " "))
        left += v
    ax.set_xlabel("flips (only 'real flip' counts as a vulnerability)")
    ax.legend(fontsize="small", loc="lower right")
    ax.invert_yaxis()
    return ax


def label_noise(summary: pd.DataFrame, *, metric: str = "accuracy", ax=None):
    """A metric against the label-noise rate: one colour per classifier, solid uniform / dashed similar noise.

    Parameters
    ----------
    summary
        ``label_noise_sweep(...).summary`` (several classifiers concatenated).
    metric
        ``"accuracy"`` (default), ``"macro_f1"``, ``"n_real_flips"``, ``"n_pairs_real_flip"``...
    ax
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(summary, ["classifier", "mode", "rate", metric])
    ax = _axes(ax)
    colors = {c: f"C{i}" for i, c in enumerate(sorted(summary["classifier"].astype(str).unique()))}
    for (clf, mode), sub in summary.groupby(["classifier", "mode"], sort=True):
        sub = sub.sort_values("rate")
        ax.plot(100 * sub["rate"], sub[metric], marker="o", ls="-" if mode == "uniform" else "--",
                color=colors[str(clf)], label=f"{clf}, {mode}")
    ax.set_xlabel("training labels changed (%)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize="small")
    return ax


def abstention(table: pd.DataFrame, *, ax=None):
    """Abstention rate per cluster before and after an attack (paired bars), outcome in the tick label.

    Parameters
    ----------
    table
        :func:`perturblab.attack.abstention.abstention_table` output.
    ax
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(table, ["cluster", "abstention_before", "abstention_after", "outcome"])
    ax = _axes(ax)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["abstention_before"], width=0.4, label="before", color="0.6")
    ax.bar(x + 0.2, table["abstention_after"], width=0.4, label="after", color="#fdb462")
    names = [f"{c}\n{o.replace('_', ' ')}" for c, o in zip(table["cluster"].astype(str), table["outcome"], strict=True)]
    ax.set_xticks(x, names, fontsize="small")
    ax.set_ylabel("abstentions (fraction of the cluster's cells)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    return ax


def vulnerability_heatmap(attacks: pd.DataFrame, *, ax=None):
    """Genes found per classifier x (cluster | modification), one attack and space at a time (log colour scale).

    A zero from a dichotomic search (which can miss genes masked by others) is written ``0?``; a zero from an
    exhaustive search, ``0``. For attacks that stop at a flip (CGD, PGD, FGSM) a cell whose cluster did not change
    (``success`` False) is written ``-`` (no flip), whatever number of genes the attack tried.

    Parameters
    ----------
    attacks
        The audit's ``attacks`` table restricted to one attack and one space (columns classifier, cluster,
        modification, n_found, mode).
    ax
        Axes to draw on (default: a new figure sized to the table).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(attacks, ["classifier", "cluster", "modification", "n_found"])
    modification = attacks["modification"].astype(str)
    g = attacks.assign(col=attacks["cluster"].astype(str) + np.where(modification != "", " | " + modification, ""))
    if "success" in g.columns and "attack" in g.columns:  # genes tried without a flip are not vulnerabilities
        stops = g["attack"].isin(("cgd", "pgd", "fgsm")) & ~g["success"].astype(bool)
        g = g.assign(n_found=g["n_found"].where(~stops, np.nan))
    M = g.pivot_table(index="classifier", columns="col", values="n_found", aggfunc=lambda v: v.sum(min_count=1),
                      sort=False, dropna=False)
    tried = g.pivot_table(index="classifier", columns="col", values="cluster", aggfunc="size", sort=False)
    dich = (g.assign(d=g.get("mode", pd.Series("", index=g.index)).eq("dichotomic"))
            .pivot_table(index="classifier", columns="col", values="d", aggfunc="any", sort=False)
            .reindex(index=M.index, columns=M.columns))
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(4, 0.5 * M.shape[1] + 2), 0.5 * M.shape[0] + 1.8))
    values = M.to_numpy(dtype=float)
    ran = tried.reindex(index=M.index, columns=M.columns).notna().to_numpy()
    im = ax.imshow(np.log1p(np.nan_to_num(values)), cmap="Reds", aspect="auto")
    ax.set_xticks(range(M.shape[1]), M.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(M.shape[0]), M.index, fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            text = "0?" if v == 0 and bool(dich.iloc[i, j]) else f"{int(v)}"
        elif ran[i, j]:
            text = "-"
        else:
            continue
        ax.text(j, i, text, ha="center", va="center", fontsize=6)
    ax.figure.colorbar(im, ax=ax, label="log(1 + genes found)")
    return ax


def robustness_curves(table: pd.DataFrame, axis: str = "genes", *, axes=None):
    """Test-half accuracy as the attack strength grows, overall and per attacked cluster.

    Parameters
    ----------
    table
        The audit's ``robustness`` table (columns classifier, axis, strength, scope, accuracy).
    axis
        ``"genes"`` (number of marker genes modified) or ``"cgd"`` (CGD step).
    axes
        A row of Axes, one per scope (default: a new figure).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    _need(table, ["classifier", "axis", "strength", "scope", "accuracy"])
    g = table[table["axis"] == axis]
    scopes = ["overall"] + sorted(set(g["scope"]) - {"overall"})
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(scopes), figsize=(2.6 * len(scopes), 2.8), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, scope in zip(axes, scopes):
        for clf, d in g[g["scope"] == scope].groupby("classifier", sort=False):
            d = d.sort_values("strength")
            x = d["strength"] if axis == "genes" else np.arange(len(d))
            ax.plot(x, d["accuracy"], marker="o", ms=3, label=clf)
            if axis != "genes":
                ax.set_xticks(x, [f"{v:g}" for v in d["strength"]], fontsize=7)
        ax.set_title(scope, fontsize=8)
        ax.set_xlabel("genes modified" if axis == "genes" else "CGD alpha = epsilon", fontsize=7)
    axes[0].set_ylabel("accuracy (higher = more robust)")
    axes[0].legend(fontsize=6)
    return np.asarray(axes)


def embedding_shift(coordinates: pd.DataFrame, background: pd.DataFrame | None = None, *, axes=None):
    """Cells of an attacked cluster before and after the attack in the unattacked test half's UMAP and PCA.

    Parameters
    ----------
    coordinates
        The audit's ``embedding`` rows of one attack (columns state, pc1, pc2, optionally umap1, umap2, cluster).
    background
        The test half's coordinates (grey).
    axes
        Axes, one per embedding (default: a new figure).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    _need(coordinates, ["state", "pc1", "pc2"])
    d = coordinates
    first = str(d["cluster"].iloc[0]) if "cluster" in d.columns else "cluster"
    kinds = [("umap1", "umap2")] if "umap1" in d.columns and d["umap1"].notna().all() else []
    kinds.append(("pc1", "pc2"))
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), squeeze=False)
        axes = axes[0]
    for ax, (a, b) in zip(axes, kinds):
        if background is not None and a in background.columns:
            ax.scatter(background[a], background[b], s=2, c="lightgrey", label="test half")
        for state, color in (("before", "tab:blue"), ("after", "tab:red")):
            e = d[d["state"] == state]
            ax.scatter(e[a], e[b], s=5, c=color, label=f"{first} {state}")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    axes[0].legend(fontsize=6)
    return np.asarray(axes)


def transfer_matrix(table: pd.DataFrame, *, ax=None):
    """Fraction of a source classifier's perturbations that also flip a target classifier.

    Parameters
    ----------
    table
        The audit's ``transfer`` rows of one attack (columns source, target, rate).
    ax
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(table, ["source", "target", "rate"])
    M = table.pivot_table(index="source", columns="target", values="rate", sort=False)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(0.7 * M.shape[1] + 2.5, 0.5 * M.shape[0] + 1.8))
    im = ax.imshow(M.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(M.shape[1]), M.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(M.shape[0]), M.index, fontsize=8)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    ax.figure.colorbar(im, ax=ax, label="transfer rate")
    return ax
