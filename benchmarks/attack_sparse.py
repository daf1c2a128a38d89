"""Sparse input end to end: a single-gene exhaustive attack on a large CSR AnnData, as JSON.

A synthetic raw-count AnnData of 200,000 cells x 20,000 genes (CSR, float32; ~``--genes-per-cell`` detected genes
per cell drawn from a gene-popularity profile, negative-binomial-like counts), with one cluster of 2,000 cells that
over-expresses 50 marker genes. The random forest is fitted on a seeded, balanced sample of 4,000 cells, then
``plab.attack.single_gene_attack(rf, adata, groupby="cluster", target="target", mode="exhaustive")`` attacks the
cluster on the whole AnnData: the model input stays sparse (:mod:`perturblab.attack._sparse`), only the cluster's
rows over the classifier's genes are dense.

Printed: data size, fit time, attack time, peak memory (RSS of the process, and the increase during the attack
above the data already in memory), and the dense matrix the attack would have built without the sparse path.

Usage::

    python benchmarks/attack_sparse.py                      # 200,000 x 20,000, cluster of 2,000
    python benchmarks/attack_sparse.py --cells 20000 --genes 5000 --cluster 500   # quick
"""

from __future__ import annotations

import argparse
import json
import time


def synthetic(n_cells: int, n_genes: int, cluster: int, genes_per_cell: int, seed: int = 0):
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    popularity = rng.gamma(0.3, 1.0, n_genes)
    popularity /= popularity.sum()
    labels = np.array(["other"] * n_cells, dtype=object)
    labels[:cluster] = "target"
    labels[cluster:] = np.where(rng.random(n_cells - cluster) < 0.5, "rest_a", "rest_b")
    markers = np.arange(50)
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    chunks_idx, chunks_val = [], []
    step = 20_000
    for s in range(0, n_cells, step):
        e = min(s + step, n_cells)
        k = genes_per_cell
        idx = rng.choice(n_genes, size=(e - s, k), p=popularity)  # with repeats: deduplicated below
        idx.sort(axis=1)
        keep = np.ones_like(idx, dtype=bool)
        keep[:, 1:] = idx[:, 1:] != idx[:, :-1]
        vals = (rng.negative_binomial(2, 0.5, size=idx.shape) + 1).astype(np.float32)
        boost = (labels[s:e] == "target")[:, None] & np.isin(idx, markers)
        vals[boost] += 8
        counts = keep.sum(axis=1)
        indptr[s + 1: e + 1] = counts
        chunks_idx.append(idx[keep].astype(np.int32))
        chunks_val.append(vals[keep])
    indptr = np.cumsum(indptr)
    X = sp.csr_matrix((np.concatenate(chunks_val), np.concatenate(chunks_idx), indptr), shape=(n_cells, n_genes))
    var = pd.DataFrame(index=[f"G{i}" for i in range(n_genes)])
    obs = pd.DataFrame({"cluster": pd.Categorical(labels)}, index=[f"c{i}" for i in range(n_cells)])
    return ad.AnnData(X, obs=obs, var=var)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=200_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--cluster", type=int, default=2_000)
    p.add_argument("--genes-per-cell", type=int, default=1_000)
    p.add_argument("--train-cells", type=int, default=4_000)
    p.add_argument("--modification", default="perc99")
    args = p.parse_args()

    import numpy as np

    import perturblab as plab
    from perturblab.runs import peak_rss_mb

    t = time.perf_counter()
    adata = synthetic(args.cells, args.genes, args.cluster, args.genes_per_cell)
    make_s = time.perf_counter() - t
    data_mb = (adata.X.data.nbytes + adata.X.indices.nbytes + adata.X.indptr.nbytes) / 2**20
    labels = adata.obs["cluster"].astype(str).to_numpy()
    from perturblab.classifiers.random_forest import balanced_sample

    train_idx = np.sort(balanced_sample(labels, args.train_cells // 3, random_state=0))
    train = adata[np.unique(train_idx)].copy()
    t = time.perf_counter()
    rf = plab.classifiers.RandomForestClassifier(random_state=0).fit(train, "cluster")
    fit_s = time.perf_counter() - t
    del train
    rss_before = peak_rss_mb()
    t = time.perf_counter()
    res = plab.attack.single_gene_attack(rf, adata, groupby="cluster", target="target",
                                         modification=args.modification, mode="exhaustive")
    attack_s = time.perf_counter() - t
    rss_after = peak_rss_mb()
    print(json.dumps({
        "n_cells": args.cells, "n_genes": args.genes, "cluster_cells": args.cluster,
        "nnz": int(adata.X.nnz), "sparse_data_mb": round(data_mb, 1), "make_data_s": round(make_s, 1),
        "rf_fit_s": round(fit_s, 1), "rf_train_cells": len(np.unique(train_idx)),
        "rf_used_genes": len(rf.used_genes_),
        "attack_s": round(attack_s, 1), "modification": args.modification, "mode": res.mode,
        "n_genes_evaluated": res.n_genes_evaluated, "n_flipping_genes": len(res.table),
        "baseline_label": res.baseline_label,
        "peak_rss_mb_before_attack": round(rss_before, 1), "peak_rss_mb_after_attack": round(rss_after, 1),
        "peak_rss_increase_mb": round(rss_after - rss_before, 1),
        "dense_model_input_avoided_mb": round(args.cells * args.genes * 4 / 2**20, 1),
        "dense_target_rows_mb": round(args.cluster * args.genes * 4 / 2**20, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
