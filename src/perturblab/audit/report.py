"""The audit's self-contained HTML report (:mod:`perturblab.report`, figures embedded)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import Report

__all__ = ["build_report"]

_GENE_COLS = ["classifier", "attack", "cluster", "modification", "space", "mode", "gene", "original_label",
              "new_label", "new_label_mapped", "score", "switched", "n_classifier_calls"]


def build_report(result) -> Report:
    """Report of an :class:`~perturblab.audit.pipeline.AuditResult`: settings, accuracy table, one
    vulnerability heatmap per attack, the genes found, search modes and classifier calls, and, when
    computed, robustness curves, detectability (with before/after embeddings of one CGD attack per
    classifier), transferability and the adversarial-training defence."""
    import matplotlib

    matplotlib.use("Agg")
    cfg, t, s = result.config, result.tables, result.summary
    rep = Report("Robustness audit of cell-type classifiers",
                 subtitle=f"dataset {cfg.data}, seed {cfg.seed}, {len(cfg.classifiers)} classifiers")
    sec = rep.section("Settings", id="settings")
    sec.text(f"Seeded stratified half split of {cfg.data} (labels {cfg.label_key!r}, dropped: "
             f"{', '.join(cfg.drop_labels) or 'none'}; genes detected in >= {cfg.min_cells} cells): classifiers "
             "are fitted on the train half and evaluated and attacked on the test half.")
    sec.items([f"classifiers: {', '.join(cfg.classifiers)}", f"attacks: {', '.join(cfg.attacks)}",
               f"modifications: {', '.join(cfg.modifications)}", f"spaces: {', '.join(cfg.spaces)}",
               f"evaluations: {', '.join(cfg.evaluations) or 'none'}",
               f"units: {s['n_units']} ({s['n_units_resumed']} resumed from disk)",
               f"wall time: {s['wall_time_s']:.1f} s, peak memory: {s['peak_rss_mb']:.0f} MiB"])

    sec = rep.section("Test accuracy", id="accuracy")
    sec.text("Accuracy, macro-F1 and one-vs-rest AUROC on the test half (abstentions and unmapped answers "
             "count as errors).")
    cols = [c for c in ["classifier", "representation", "n_cells", "accuracy", "macro_f1", "macro_auroc",
                        "not_a_label", "fit_time_s"] if c in t["accuracy"].columns]
    sec.table(t["accuracy"][cols])

    att = t.get("attacks", pd.DataFrame())
    if len(att):
        sec = rep.section("Vulnerability", id="vulnerability")
        sec.text("Number of genes found per classifier x cluster x modification: single-gene = genes whose "
                 "modification alone changes the cluster's label; max-change = genes modifiable together "
                 "without changing it; CGD = genes modified until the cluster switched (0 = no switch).")
        for attack, g in att.groupby("attack", sort=False):
            for space, gs in g.groupby("space", sort=False):
                sec.figure(_heatmap(gs), caption=f"{attack} ({space}): genes found", id=f"heatmap-{attack}-{space}")
        sec.table(_modes(att), caption="Search mode, classifier calls and time per classifier and attack")

    sec = rep.section("Genes found", id="genes")
    genes = t.get("genes", pd.DataFrame())
    if len(genes):
        sec.text("Single-gene rows: genes whose modification alone changes the cluster's label; CGD rows: the "
                 "genes CGD modified (switched = whether the cluster changed label); grid / random-walk rows: "
                 "minimal flipping combinations. Each row states the search mode and the classifier calls of its "
                 "attack. Max-change gene sets are in tables/max_change_genes.")
        sec.table(genes[[c for c in _GENE_COLS if c in genes.columns]])
        sec.items(sorted(set(genes["gene"].astype(str))), caption="Distinct genes")
    else:
        sec.text("No attack changed a cluster's label.")

    if len(t.get("robustness", pd.DataFrame())):
        sec = rep.section("Robustness curves", id="robustness")
        sec.text("Test-half metrics as the attack strength grows (all audited clusters attacked together).")
        for axis, g in t["robustness"].groupby("axis", sort=False):
            sec.figure(_curves(g, axis), caption=f"robustness, {axis} axis", id=f"robustness-{axis}")
        sec.table(t["robustness"][t["robustness"]["scope"] == "overall"])
    if len(t.get("detectability", pd.DataFrame())):
        sec = rep.section("Detectability", id="detectability")
        sec.text("Size of each change and displacement of the attacked cells in the PCA/UMAP of the unattacked "
                 "test half (pca_shift_rel: displacement / the cluster's median distance to its centroid).")
        sec.table(t["detectability"])
        emb = t.get("embedding", pd.DataFrame())
        if len(emb):  # one space per figure: the model input when it was attacked
            emb = emb[emb["space"] == ("model_input" if (emb["space"] == "model_input").any() else "raw_counts")]
        cgd = att[(att["attack"] == "cgd") & (att["space"] == emb["space"].iloc[0])] if len(emb) else att
        for clf, g in (emb.groupby("classifier", sort=False) if len(emb) else []):
            ok = cgd[(cgd["classifier"] == clf) & cgd["success"].astype(bool)]["cluster"].tolist()
            cluster = ok[0] if ok else g["cluster"].iloc[0]  # a CGD attack that switched the cluster, if any
            fig = _embedding(g[g["cluster"] == cluster], result.background.get(clf))
            sec.figure(fig, caption=f"{clf}: CGD attack on {cluster} ({'switched' if ok else 'no switch'}), "
                                    "cells before and after in the unattacked embedding", id=f"embedding-{clf}")
    if len(t.get("transfer", pd.DataFrame())):
        sec = rep.section("Transferability", id="transfer")
        for attack, g in t["transfer"].groupby("attack", sort=False):
            sec.figure(_transfer(g), caption=f"{attack}: fraction of the source's perturbations that flip the target",
                       id=f"transfer-{attack}")
        sec.table(t["transfer"])
    if len(t.get("defence", pd.DataFrame())):
        sec = rep.section("Defence: adversarial training", id="defence")
        sec.table(t["defence"])
    return rep


def _modes(att: pd.DataFrame) -> pd.DataFrame:
    return (att.groupby(["classifier", "attack", "space", "mode"], sort=False)
            .agg(n_units=("cluster", "size"), n_found=("n_found", "sum"), n_classifier_calls=("n_classifier_calls", "sum"),
                 n_batched_calls=("n_batched_calls", "sum"), wall_time_s=("unit_wall_time_s", "sum")).reset_index())


def _heatmap(g: pd.DataFrame):
    import matplotlib.pyplot as plt

    g = g.assign(col=g["cluster"] + np.where(g["modification"] != "", " | " + g["modification"], ""))
    M = g.pivot_table(index="classifier", columns="col", values="n_found", aggfunc="sum", sort=False)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * M.shape[1] + 2), 0.5 * M.shape[0] + 1.8))
    im = ax.imshow(np.log1p(M.to_numpy(dtype=float)), cmap="Reds", aspect="auto")
    ax.set_xticks(range(M.shape[1]), M.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(M.shape[0]), M.index, fontsize=8)
    for (i, j), v in np.ndenumerate(M.to_numpy(dtype=float)):
        if np.isfinite(v):
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="log(1 + genes)")
    return fig


def _curves(g: pd.DataFrame, axis: str):
    import matplotlib.pyplot as plt

    scopes = ["overall"] + sorted(set(g["scope"]) - {"overall"})
    fig, axes = plt.subplots(1, len(scopes), figsize=(2.6 * len(scopes), 2.8), sharey=True, squeeze=False)
    for ax, scope in zip(axes[0], scopes):
        for clf, d in g[g["scope"] == scope].groupby("classifier", sort=False):
            d = d.sort_values("strength")
            x = d["strength"] if axis == "genes" else np.arange(len(d))
            ax.plot(x, d["accuracy"], marker="o", ms=3, label=clf)
            if axis != "genes":
                ax.set_xticks(x, [f"{v:g}" for v in d["strength"]], fontsize=7)
        ax.set_title(scope, fontsize=8)
        ax.set_xlabel("genes modified" if axis == "genes" else "CGD alpha = epsilon", fontsize=7)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=6)
    return fig


def _embedding(g: pd.DataFrame, bg: pd.DataFrame | None):
    import matplotlib.pyplot as plt

    first = g["cluster"].iloc[0]
    d = g
    kinds = [("umap1", "umap2")] if "umap1" in d.columns and d["umap1"].notna().all() else []
    kinds.append(("pc1", "pc2"))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), squeeze=False)
    for ax, (a, b) in zip(axes[0], kinds):
        if bg is not None and a in bg.columns:
            ax.scatter(bg[a], bg[b], s=2, c="lightgrey", label="test half")
        for state, color in (("before", "tab:blue"), ("after", "tab:red")):
            e = d[d["state"] == state]
            ax.scatter(e[a], e[b], s=5, c=color, label=f"{first} {state}")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    axes[0][0].legend(fontsize=6)
    return fig


def _transfer(g: pd.DataFrame):
    import matplotlib.pyplot as plt

    M = g.pivot_table(index="source", columns="target", values="rate", sort=False)
    fig, ax = plt.subplots(figsize=(0.7 * M.shape[1] + 2.5, 0.5 * M.shape[0] + 1.8))
    im = ax.imshow(M.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(M.shape[1]), M.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(M.shape[0]), M.index, fontsize=8)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    fig.colorbar(im, ax=ax, label="transfer rate")
    return fig
