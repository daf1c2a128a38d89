"""Run time of each issue-14 analysis on the default Papalexi 2021 run (own model, 2,000 control cells).

Prints one JSON object: seconds per analysis (after the shared steps: training, attention extraction, DE) and
a few headline numbers, so that the pipeline can keep its default run under 10 minutes.

Usage: PERTURBLAB_DATA_DIR=../shared/data python benchmarks/interpret_analyses_cost.py [--epochs 1] [--threads 1]
Gene-set libraries are read through perturblab.datasets (data directory, cache, download); missing ones are
reported as unavailable.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1, help="own-model training epochs (analysis cost does not depend "
                    "on them; the pipeline default is 5)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-cells", type=int, default=2000)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from perturblab import datasets
    from perturblab.interpret import (
        baseline_scores,
        circularity,
        coexpression,
        correlation_scores,
        cssi_scan,
        de_targets,
        decomposition,
        edge_sources,
        embedding_edges,
        gene_features,
        gene_sets,
        in_silico,
        load_reference,
        load_tf_list,
        log_normalise,
        matching,
        partial,
        perturbation_auroc,
        profiles,
        reference_recovery,
        sae,
        sensitivity,
        splits,
        stratify,
        value_edges,
    )
    from perturblab.interpret.edges import EdgeScores, attention_scores
    from perturblab.interpret.extraction import extract_attention, iter_layer_attention
    from perturblab.interpret.incremental import build_pairs
    from perturblab.interpret.models import OwnGeneTransformer
    from perturblab.interpret.pipeline import select_genes
    from perturblab.interpret.training import train_masked_expression

    t: dict[str, float] = {}
    out: dict = {"seconds": t, "settings": vars(args)}

    def timed(name):
        class _T:
            def __enter__(self):
                self.s = time.perf_counter()

            def __exit__(self, *exc):
                t[name] = round(time.perf_counter() - self.s, 2)

        return _T()

    adata = datasets.papalexi2021()
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    ci = np.flatnonzero(labels == "control")
    ctrl = adata[np.sort(rng.choice(ci, min(args.n_cells, ci.size), replace=False))].copy()
    perturbed = sorted(set(labels) - {"control"})
    genes = select_genes(ctrl, 2000, forced=perturbed)
    lib = np.asarray(ctrl.X.sum(axis=1)).ravel()
    X = log_normalise(ctrl[:, genes].X, library_size=lib)
    with timed("shared: train own model"):
        model = OwnGeneTransformer(np.asarray(adata.var_names).astype(str), d_model=64, n_heads=4, n_layers=4,
                                   d_ff=128, device="cpu")
        train_masked_expression(model, ctrl, epochs=args.epochs, progress=False)
    with timed("shared: attention extraction (all layers)"):
        layers = {la.layer: la for la in iter_layer_attention(model, ctrl, genes, batch_size=16)}
    att_all = attention_scores(layers, per_head=True)
    att_summary = [s for s in att_all if s.head in ("mean", "max")]
    corr = correlation_scores(X, genes)
    feats = gene_features(X, genes)
    refs = {n: load_reference(n) for n in ("trrust", "dorothea", "collectri", "string")}
    tfs = load_tf_list()
    base = baseline_scores(feats, refs["dorothea"].edges)
    with timed("shared: DE + perturbation AUROC"):
        de = de_targets(adata, genes=list(genes))
        per_pert = perturbation_auroc([*att_summary, corr, *base], de)
    best = per_pert[per_pert["kind"] == "attention"].groupby("score")["auroc"].mean().idxmax()
    best_att = next(s for s in att_summary if s.name == best)
    out["tested_attention"] = best

    # --- robustness -----------------------------------------------------------------------------------------
    with timed("value-weighted edges (all layers, both measures)"):
        items = list(value_edges.iter_value_edges(model, ctrl, genes, batch_size=16))
        vs = value_edges.value_edge_scores(items)
    with timed("evaluate_edge_sources (value edges)"):
        edge_sources.evaluate_edge_sources(vs, list(refs.values()), de, [corr, *base], tfs=tfs)
    with timed("propensity matching (trrust, dorothea)"):
        mr = [matching.matched_recovery([best_att, corr], refs[r], feats, tfs=tfs) for r in ("trrust", "dorothea")]
    out["matched_auroc"] = {r: m[0][["score", "auroc_raw", "auroc_matched"]].to_dict("records") for r, m in
                            zip(("trrust", "dorothea"), mr)}
    pairs = build_pairs(de, feats, {"attention": best_att, "correlation": corr})
    with timed("split designs (3 splits x LR, GBDT)"):
        sd = splits.split_design(pairs)
    out["split_joint_delta"] = sd[(sd["split"] == "joint")][["model", "features", "delta_auroc"]].to_dict("records")
    with timed("TF stratification + power"):
        strat = stratify.tf_stratification(per_pert, tfs, best, corr.name)
    out["tf_strata"] = strat[["stratum", "n", "delta", "p", "mde"]].to_dict("records")
    with timed("TRRUST circularity"):
        circularity.direction_recovery([best_att, corr], datasets.trrust(), tfs=tfs)
        from perturblab.interpret.edges import spearman_matrix

        circularity.sign_agreement(EdgeScores("spearman rho", spearman_matrix(X), genes, "correlation"),
                                   datasets.trrust())
    with timed("per-TF CIs (dorothea)"):
        decomposition.per_tf_recovery([best_att, corr], refs["dorothea"], tfs=tfs)
    with timed("recovery decomposition (dorothea, ols)"):
        decomposition.recovery_decomposition([best_att, corr], refs["dorothea"], feats, tfs=tfs)

    def score_fn(c, g):
        lib_c = np.asarray(c.X.sum(axis=1)).ravel()
        la = extract_attention(model, c, g, layers=[best_att.layer], batch_size=16)[best_att.layer]
        m = la.head_mean if best_att.head == "mean" else la.head_max
        return [EdgeScores(best, m, g, "attention", best_att.layer, best_att.head),
                correlation_scores(log_normalise(c[:, list(g)].X, library_size=lib_c), g)]

    with timed("HVG protocol (2 gene sets, 1 layer each)"):
        sensitivity.hvg_protocol(adata, ctrl, 2000, score_fn)
    lv = sensitivity.default_scan_levels(ctrl.n_obs, genes.size)
    with timed("sensitivity scan (27 configurations)"):
        scan = sensitivity.sensitivity_scan(adata, ctrl, score_fn, tested=best, **lv)
    out["scan_configs"] = int(scan[["lfc_threshold", "n_cells", "n_genes"]].drop_duplicates().shape[0])

    # --- positive findings ---------------------------------------------------------------------------------
    with timed("layer profiles (STRING 700 / 900, TRRUST; all heads)"):
        prefs = profiles.profile_references()
        prec = reference_recovery([*att_all, corr], prefs, tfs=tfs)
        prof = profiles.layer_profiles(prec)
        profiles.layer_profiles(prec, unit="head")
    out["layer_profiles"] = prof[["reference", "head", "rho", "p"]].to_dict("records")
    with timed("partial correlation"):
        partial.partial_correlation(att_summary, list(refs.values()), control=corr, tfs=tfs)
    with timed("attention-co-expression map"):
        coexpression.attention_coexpression(att_all, corr)
    try:
        with timed("gene sets (reactome, kegg, go_bp) recovery"):
            gsr = gene_sets.gene_set_references(genes=genes)
            gene_sets.gene_set_recovery([*att_summary, corr], gsr)
    except Exception as err:  # offline without a cached copy
        out["gene_sets_unavailable"] = f"{type(err).__name__}: {err}"[:200]
        gsr = []

    # --- CSSI -----------------------------------------------------------------------------------------------
    trrust = refs["trrust"]
    with timed("CSSI scaling curve (correlation, 200-1000 cells, 10 repeats)"):
        curve = cssi_scan.scaling_curve(X, genes, refs["dorothea"], tfs=tfs, n_cells=(200, 400, 600, 800, 1000),
                                        data="real")
        cssi_scan.scaling_test(curve)
    with timed("cell embeddings"):
        emb = model.cell_embeddings(ctrl, genes)
    with timed("CSSI strata scan (correlation, K 2-8)"):
        cssi_scan.strata_scan(X, genes, refs["dorothea"], emb, tfs=tfs, data="real")
    with timed("CSSI edge FDR (K=4 k-means strata)"):
        cssi_scan.cssi_edge_fdr(X, genes, cssi_scan.kmeans_strata(emb, 4), tfs=tfs, reference=trrust, data="real")

    # --- beyond the paper -----------------------------------------------------------------------------------
    with timed("embedding similarity edges"):
        es = embedding_edges.embedding_similarity_scores(model, ctrl, genes)
        edge_sources.evaluate_edge_sources(es, list(refs.values()), de, [corr, *base], tfs=tfs)
    with timed("SAE (collect, train 20 epochs, gene sets)"):
        Xr, gi = sae.collect_residuals(model, ctrl, genes, layer=-1)
        res = sae.train_sae(Xr, k=8, epochs=20)
        FG = sae.feature_gene_matrix(res.sae, Xr, gi, genes.size)
        if gsr:
            sets = datasets.gene_sets("kegg")
            sae.feature_gene_set_edges(FG, genes, sets)
    out["sae_fvu"] = float(res.history["fvu"].iloc[-1])
    with timed("in-silico deletion of the perturbed genes (2,000 cells)"):
        sh = in_silico.in_silico_perturbation(model, ctrl, genes, [g for g in perturbed if g in set(genes)])
        sc = in_silico.score_in_silico(sh, de, feats)
    out["in_silico_auroc"] = sc.groupby("score")["auroc"].mean().to_dict()
    out["n_perturbed_in_genes"] = int(np.isin(perturbed, genes).sum())
    out["total_new_analyses_s"] = round(sum(v for k, v in t.items() if not k.startswith("shared")), 1)
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
