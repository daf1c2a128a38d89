"""Which attack needs the fewest genes? Single-gene, CGD and white-box PGD / FGSM on PBMC3k's classifiers.

Fits the classifiers on the train half of ``perturblab.datasets.pbmc3k_split`` and, on the test half,
for each attacked cluster:

- the white-box success-rate-vs-budget curve (``perturblab.attack.budget_curve``: k = 1, 2, 5, 10, 20,
  50 genes; amplitude 0.25, 0.5, 1 of each gene's observed range; PGD and FGSM) for the differentiable
  classifiers (scType, SVM, MLP, CellTypist);
- the fewest genes each attack needs (``perturblab.attack.fewest_genes``): exhaustive single-gene
  (perc1, perc99), CGD (native class scores, alpha = epsilon = 1) and PGD.

All attacks draw on the same candidate genes: the ``--n-genes`` (200) first signature genes
(``signature_genes`` of each classifier's model input), the genes CGD visits. Default clusters: NK, B,
FCGR3A+ Mono, CD14+ Mono (CHETAH and CellTypist go through stacked ``predict`` calls: minutes each). Flips are
classified with ``flip_taxonomy`` (broad PBMC3k label map for scType). Prints JSON; writes the tables and a figure to
``--out-dir``.

    PERTURBLAB_DATA_DIR=... python benchmarks/attack_budget_comparison.py --out-dir results/budget

Measured (defaults, 2 shared cores, ~12 min; min genes to flip NK / B / FCGR3A+ Mono / CD14+ Mono,
"-" = no flip within the budget):
scType single-gene - / 1 / 1 / 1, CGD 4 / 2 / 4 / 6, PGD 2 / 1 / 5 / 5; SVM single - / - / - / 1,
CGD 2 / 9 / 4 / 7, PGD 1 / 20 / 2 / 5; MLP single -, CGD 41 / 122 / 71 / 126, PGD 10 / 50 / 20 / 50;
CellTypist single 1 / - / 1 / -, CGD 5 / 81 / 3 / -, PGD 1 / 50 / 1 / -; random forest single -,
CGD 174 / - / 101 / -; CHETAH single -, CGD 133 (to "Unassigned") / - / - / -. PGD needs the fewest
genes in 11 (classifier, cluster) pairs, the single-gene attack in 6, CGD in 4 (ties count for each).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import pandas as pd


def main(argv=None) -> dict:
    import torch

    from perturblab import datasets
    from perturblab.attack import (
        budget_curve,
        fewest_genes,
        flip_taxonomy,
        signature_genes,
        taxonomy_counts,
    )
    from perturblab.classifiers import get_classifier, is_differentiable
    from perturblab.io import atomic_write, write_json, write_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classifiers", nargs="+",
                    default=["sctype", "svm", "mlp", "celltypist", "random_forest", "chetah"])
    ap.add_argument("--clusters", nargs="+", default=["NK", "B", "FCGR3A+ Mono", "CD14+ Mono"])
    ap.add_argument("--n-genes", type=int, default=200, help="candidate genes (signature order)")
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 2, 5, 10, 20, 50])
    ap.add_argument("--amplitudes", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)

    train, test = datasets.pbmc3k_split(random_state=args.random_state)
    clusters = test.obs["cell_type"].astype(str).to_numpy()
    targets = args.clusters
    options = {"sctype": {"label_map": "pbmc3k"}, "mlp": {"device": "cpu", "random_state": args.random_state},
               "svm": {"random_state": args.random_state}, "celltypist": {"random_state": args.random_state},
               "random_forest": {"random_state": args.random_state}, "chetah": {}}
    budgets, fewest, taxonomies, timing = [], [], [], {}
    for name in args.classifiers:
        t0 = time.perf_counter()
        clf = get_classifier(name, **options[name]).fit(train, "cell_type")
        X = clf.preprocess(test)
        genes = signature_genes(X, clusters, clf.genes_)["gene"].to_numpy()[: args.n_genes]
        t1 = time.perf_counter()
        bt = None
        if is_differentiable(clf):
            bt = budget_curve(clf, X, clusters, targets, ks=args.ks, amplitudes=args.amplitudes,
                              methods=("fgsm", "pgd"), genes=genes, name=name)
            budgets.append(bt)
        t2 = time.perf_counter()
        fg = fewest_genes(clf, X, clusters, targets, name=name, single_gene_genes=genes, cgd_genes=genes,
                          whitebox_genes=genes, budget_table=bt, ks=args.ks, amplitudes=args.amplitudes)
        fewest.append(fg)
        flips = fg[fg["flipped"]].assign(true_label=lambda d: d["cluster"])
        if len(flips):
            taxonomies.append(flip_taxonomy(flips, classifier=clf))
        timing[name] = {"fit_and_signature_s": t1 - t0, "budget_curve_s": t2 - t1,
                        "fewest_genes_s": time.perf_counter() - t2}
        print(json.dumps({"classifier": name, **timing[name],
                          "min_genes": fg.pivot(index="cluster", columns="attack", values="min_genes").to_dict()},
                         default=str), flush=True)
    budget = pd.concat(budgets, ignore_index=True) if budgets else pd.DataFrame()
    fewest_tab = pd.concat(fewest, ignore_index=True)
    tax = pd.concat(taxonomies, ignore_index=True) if taxonomies else pd.DataFrame()
    out = {"clusters": targets, "n_candidate_genes": args.n_genes, "timing": timing,
           "flipped_clusters": fewest_tab.groupby(["classifier", "attack"])["flipped"].sum().unstack().to_dict(),
           "median_min_genes": fewest_tab.groupby(["classifier", "attack"])["min_genes"].median().unstack().to_dict(),
           "fewest_wins": fewest_tab[fewest_tab["fewest"]].groupby("attack").size().to_dict()}
    if len(budget):
        out["pgd_flip_rate_by_k_at_amplitude_1"] = (
            budget[(budget["method"] == "pgd") & (budget["amplitude"] == 1.0)]
            .groupby(["classifier", "k"])["flipped"].mean().unstack().to_dict())
    if len(tax):
        out["taxonomy"] = taxonomy_counts(tax, by=("classifier", "attack")).to_dict(orient="records")
    print(json.dumps(out, indent=1, default=str))
    if args.out_dir:
        from pathlib import Path

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from perturblab.attack import pl

        d = Path(args.out_dir)
        if len(budget):
            write_table(d / "budget_curve.csv", budget)
        write_table(d / "fewest_genes.csv", fewest_tab)
        if len(tax):
            write_table(d / "flip_taxonomy.csv", tax)
        write_json(d / "budget_comparison.json", out)
        fig, axes = plt.subplots(1, 2, figsize=(13, max(5, 0.25 * len(fewest_tab) / 3)))
        if len(budget):
            pl.budget_curve(budget[budget["amplitude"] == 1.0], metric="flipped", ax=axes[0])
        pl.fewest_genes(fewest_tab, ax=axes[1])
        fig.tight_layout()
        atomic_write(d / "budget_comparison.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    return out


if __name__ == "__main__":
    main()
