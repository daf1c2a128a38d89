"""The audit's self-contained HTML report, written for biologists: what was done, what each number means, and
which flips are real vulnerabilities. Figures come from :mod:`perturblab.attack.pl`; this module composes them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import Report
from .findings import headline

__all__ = ["build_report"]

_GENE_COLS = ["classifier", "attack", "cluster", "modification", "space", "mode", "gene", "original_label",
              "new_label", "flip_category", "n_classifier_calls"]

#: What each representation means, for the "attacked in which space" sentence.
_SPACES = {"scaled": "scaled z-scores (log1p, then per-gene z-score clipped at 10, as scType / Seurat's ScaleData)",
           "log1p": "log1p-normalised expression (counts per 10,000, log1p)",
           "counts": "raw UMI counts"}

#: Direction of each accuracy metric, shown with its name.
_METRICS = {"accuracy": "accuracy (higher is better)", "macro_f1": "macro-F1 (higher is better)",
            "macro_auroc": "macro AUROC (higher is better)",
            "not_a_label": "answers that are no dataset label (abstention or unmapped name; lower is better)"}


def _fig(ax):
    """The figure of an Axes (or of the first of an array of Axes)."""
    return np.asarray(ax).ravel()[0].figure


def build_report(result) -> Report:
    """Report of an :class:`~perturblab.audit.pipeline.AuditResult`.

    Sections: what was done (data, split, clusters with their cell counts, what each modification does, which
    space each classifier is attacked in), headlines (one per classifier, real flips only), accuracy (with the
    direction of each metric and scType's unmapped answers), vulnerability heatmaps (a dichotomic "0?" apart from
    an exhaustive "0"), the flip taxonomy, which attack needs the fewest genes, white-box budget curves, the genes
    found (first rows; the full table in the output folder), and the optional evaluations.
    """
    from ..attack import pl
    from ..attack.modifications import describe_modification

    cfg, t, s = result.config, result.tables, result.summary
    acc = t["accuracy"]
    att = t.get("attacks", pd.DataFrame())
    flips = t.get("flips", pd.DataFrame())
    rep = Report("Robustness audit of cell-type classifiers",
                 subtitle=f"data {cfg.data}, {cfg.split} split, seed {cfg.seed}, {len(cfg.classifiers)} classifiers")

    sec = rep.section("What was done", id="settings")
    split = ("adverSCarial's published PBMC3k halves (an unstratified seeded permutation)" if cfg.split == "anchor"
             else f"a seeded stratified split ({1 - cfg.test_size:.0%} train / {cfg.test_size:.0%} test)")
    sec.text(f"Cells of {cfg.data} labelled in obs[{cfg.label_key!r}] (dropped: {', '.join(cfg.drop_labels) or 'none'};"
             f" genes detected in >= {cfg.min_cells} cells) were split into halves by {split}. Each classifier is "
             "fitted on the train half and evaluated and attacked on the test half. An attack changes the expression "
             "of the cells of one cluster (here, a cluster is a dataset cell type) and watches the classifier's "
             "majority answer for that cluster, as adverSCarial does.")
    sizes = s.get("cluster_sizes", {})
    sec.items([f"{c}: {n} test cells" for c, n in sizes.items()], caption="Clusters attacked")
    sec.items([describe_modification(m) for m in cfg.modifications], caption="Modifications")
    spaces = [f"{r.classifier}: {_SPACES.get(r.representation, r.representation)}" for r in acc.itertuples()]
    sec.items(spaces, caption="Space each classifier is attacked in ('model_input'; 'raw_counts' attacks change "
                              "the counts and go through the classifier's own preprocessing)")
    sec.items([f"attacks: {', '.join(cfg.attacks)}", f"spaces: {', '.join(cfg.spaces)}",
               f"evaluations: {', '.join(cfg.evaluations) or 'none'}",
               f"scType label map: {cfg.label_map or 'none (ScTypeDB names must equal the dataset labels)'}",
               f"units: {s['n_units']} ({s['n_units_resumed']} resumed from disk)",
               f"wall time: {s['wall_time_s']:.1f} s, peak memory: {s['peak_rss_mb']:.0f} MiB"], caption="Run")

    sec = rep.section("Headlines", id="headlines")
    sec.text("Only real flips count here: a cluster the classifier called correctly, moved to another dataset label. "
             "Flips on clusters the classifier already got wrong, flips to the correct label, flips within the same "
             "dataset label (e.g. 'Naive B cells' to 'Memory B cells', both B) and moves to 'Unknown' are counted "
             "apart (see 'Flip taxonomy').")
    sec.items([headline(att, flips, c) for c in cfg.classifiers] if len(att) else ["no attack ran"])

    sec = rep.section("Test accuracy", id="accuracy")
    sec.text("On the test half; abstentions and unmapped answers count as errors. " + "; ".join(_METRICS.values())
             + ". Brackets: 95% bootstrap intervals over test cells.")
    shown = acc.copy()
    for m in ("accuracy", "macro_f1"):
        if f"{m}_ci_low" in shown.columns and shown[f"{m}_ci_low"].notna().any():
            shown[m] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                        zip(shown[m], shown[f"{m}_ci_low"], shown[f"{m}_ci_high"])]
    cols = [c for c in ["classifier", "representation", "n_cells", "accuracy", "macro_f1", "macro_auroc", "not_a_label",
                        "fit_time_s", "notes"] if c in shown.columns]
    sec.table(shown[cols].rename(columns={k: v.split(" (")[0] for k, v in _METRICS.items()}))
    if "sctype" in set(acc["classifier"]):
        row = acc.set_index("classifier").loc["sctype"]
        sec.text(f"scType answers ScTypeDB cell names; {row['not_a_label']:.0%} of the test cells got a name without a "
                 f"counterpart among the dataset's labels under the label map ({cfg.label_map or 'none'}), and count "
                 "as errors. The map is a documented, replaceable table (perturblab.classifiers.label_maps).")

    if len(att):
        sec = rep.section("Vulnerability", id="vulnerability")
        sec.text("Genes found per classifier x cluster x modification: single-gene = genes whose modification alone "
                 "changes the cluster's majority answer; max-change = genes modifiable together without changing it; "
                 "CGD = genes modified until the answer changed (0 = no change); PGD/FGSM = the smallest gene budget "
                 "that changed it. A '0?' comes from a dichotomic search, which can miss genes; a '0' from an "
                 "exhaustive search is exact.")
        for attack, g in att.groupby("attack", sort=False):
            for space, gs in g.groupby("space", sort=False):
                sec.figure(_fig(pl.vulnerability_heatmap(gs)), caption=f"{attack} ({space}): genes found",
                           id=f"heatmap-{attack}-{space}")
        sec.table(_modes(att), caption="Search mode, classifier calls and time per classifier and attack")

    if len(flips):
        sec = rep.section("Flip taxonomy", id="taxonomy")
        sec.text("Every flip, by what it means: no_flip (the answer stayed), already_wrong (the classifier had the "
                 "cluster wrong before the attack), to_correct (the attack moved it to the correct label), "
                 "within_label (another name for the same dataset label), to_abstention (moved to 'Unknown' or an "
                 "intermediate node), real_flip (away from a correct call: the vulnerabilities).")
        sec.figure(_fig(pl.flip_taxonomy(flips)), caption="Flips by category", id="taxonomy-figure")
        counts = flips.groupby(["classifier", "attack", "flip_category"], observed=True).size().unstack(fill_value=0)
        sec.table(counts.reset_index(), caption="Number of flips (genes or gene combinations) per category")
    fewest = t.get("fewest_genes", pd.DataFrame())
    if len(fewest) and fewest["attack"].nunique() > 1:
        sec = rep.section("Which attack needs the fewest genes", id="fewest")
        sec.figure(_fig(pl.fewest_genes(fewest)), caption="Genes needed for a real flip (open markers: none)",
                   id="fewest-figure")
    budget = t.get("budget", pd.DataFrame())
    if len(budget):
        sec = rep.section("White-box attacks under biological budgets", id="whitebox")
        sec.text(f"FGSM / PGD on the differentiable classifiers: at most k genes changed in every cell of the cluster "
                 f"(k = {', '.join(map(str, cfg.whitebox_ks))}), each kept within its observed {cfg.whitebox_bounds} "
                 "and non-negative where expression is; in count space the library size is preserved. Success = the "
                 "share of the cluster's cells whose answer changed (higher = more vulnerable).")
        sec.figure(_fig(pl.budget_curve(budget)), caption="Per-cell success against the gene budget",
                   id="budget-figure")

    genes = t.get("genes", pd.DataFrame())
    sec = rep.section("Genes found", id="genes")
    if len(genes):
        keys = ["classifier", "attack", "cluster", "modification", "space", "gene", "flip_category"]
        shown = genes.merge(flips[keys], how="left") if len(flips) else genes
        sec.text("Single-gene rows: genes whose modification alone changes the cluster's answer; CGD rows: the genes "
                 "CGD modified; grid / random-walk / white-box rows: flipping gene combinations. Each row states the "
                 "search mode and the classifier calls of its attack.")
        sec.table(shown[[c for c in _GENE_COLS if c in shown.columns]], max_rows=60,
                  caption="Genes found (first rows; every row is in tables/genes)")
        top = genes["gene"].astype(str).value_counts().head(20)
        sec.items([f"{g} ({n} units)" for g, n in top.items()], caption="Genes found most often")
    else:
        sec.text("No attack changed a cluster's label.")
    _evaluations(rep, result, pl)
    return rep


def _evaluations(rep: Report, result, pl) -> None:
    """The optional evaluations' sections."""
    t = result.tables
    if len(t.get("abstention", pd.DataFrame())):
        sec = rep.section("Abstention", id="abstention")
        sec.text("Per cluster: the share of 'Unknown' / unassigned / intermediate-node answers and the probability "
                 "margin to the runner-up class, before and after the attack. 'only_abstention' = the attack only "
                 "moved cells to 'Unknown'; that is reported as such, not as a flip.")
        sec.figure(_fig(pl.abstention(t["abstention"])), caption="Abstention before / after", id="abstention-figure")
        sec.table(t["abstention"])
    if len(t.get("strength", pd.DataFrame())):
        sec = rep.section("Response to modification strength", id="strength")
        sec.text("The seed paper states that trees plateau beyond medium modifications and MLPs are unresponsive below "
                 "medium and very vulnerable beyond. Each classifier's flipping genes (single genes of the clusters' "
                 "marker panel) against the modification strength, from decile-9 to decile+9, perc1/perc99, aberrant "
                 "and fixed values.")
        sec.figure(_fig(pl.strength_response(t["strength"])), caption="Flipping genes against strength",
                   id="strength-figure")
    if len(t.get("label_noise", pd.DataFrame())):
        sec = rep.section("Label noise", id="label-noise")
        sec.text("Each classifier retrained with a share of its training labels changed (uniformly, or to the most "
                 "similar cell type); accuracy on the clean test half and real single-gene flips against the noise.")
        sec.figure(_fig(pl.label_noise(t["label_noise"])), caption="Accuracy against training-label noise",
                   id="label-noise-figure")
        sec.table(t["label_noise"])
    if len(t.get("robustness", pd.DataFrame())):
        sec = rep.section("Robustness curves", id="robustness")
        sec.text("Test-half accuracy as the attack strength grows (all audited clusters attacked together).")
        for axis in dict.fromkeys(t["robustness"]["axis"]):
            sec.figure(_fig(pl.robustness_curves(t["robustness"], axis)), caption=f"robustness, {axis} axis",
                       id=f"robustness-{axis}")
        sec.table(t["robustness"][t["robustness"]["scope"] == "overall"])
    if len(t.get("detectability", pd.DataFrame())):
        sec = rep.section("Detectability", id="detectability")
        sec.text("Size of each change and displacement of the attacked cells in the PCA/UMAP of the unattacked "
                 "test half (pca_shift_rel: displacement / the cluster's median distance to its centroid).")
        sec.table(t["detectability"], max_rows=100)
        emb = t.get("embedding", pd.DataFrame())
        if len(emb):  # one space per figure: the model input when it was attacked
            emb = emb[emb["space"] == ("model_input" if (emb["space"] == "model_input").any() else "raw_counts")]
        att = t.get("attacks", pd.DataFrame())
        cgd = att[(att["attack"] == "cgd") & (att["space"] == emb["space"].iloc[0])] if len(emb) else att
        for clf, g in (emb.groupby("classifier", sort=False) if len(emb) else []):
            ok = cgd[(cgd["classifier"] == clf) & cgd["success"].astype(bool)]["cluster"].tolist()
            cluster = ok[0] if ok else g["cluster"].iloc[0]  # a CGD attack that changed the cluster, if any
            axes = pl.embedding_shift(g[g["cluster"] == cluster], result.background.get(clf))
            sec.figure(_fig(axes), caption=f"{clf}: CGD attack on {cluster} ({'changed' if ok else 'no change'}), "
                                           "cells before and after in the unattacked embedding", id=f"embedding-{clf}")
    if len(t.get("transfer", pd.DataFrame())):
        sec = rep.section("Transferability", id="transfer")
        for attack, g in t["transfer"].groupby("attack", sort=False):
            sec.figure(_fig(pl.transfer_matrix(g)),
                       caption=f"{attack}: fraction of the source's perturbations that flip the target",
                       id=f"transfer-{attack}")
        sec.table(t["transfer"])
    if len(t.get("defence", pd.DataFrame())):
        sec = rep.section("Defence: adversarial training", id="defence")
        sec.table(t["defence"])


def _modes(att: pd.DataFrame) -> pd.DataFrame:
    return (att.groupby(["classifier", "attack", "space", "mode"], sort=False)
            .agg(n_units=("cluster", "size"), n_found=("n_found", "sum"),
                 n_classifier_calls=("n_classifier_calls", "sum"), wall_time_s=("unit_wall_time_s", "sum"))
            .reset_index())
