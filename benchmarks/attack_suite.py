"""Benchmark: max-change and CGD on the PBMC3k test half (NK), side by side with adverSCarial.

Anchor costs (adverSCarial 1.3.13, R, this machine; reference spec adverscarial.md):
max-change perc99 RF 573 s / 274 calls (12,163 genes, maxSplitSize 100), scType > 600 s;
CGD alpha = eps = 1 over 500 signature genes: scType 32 s / 36 calls, RF 511 s / 490 calls.
CHETAH max-change on PBMC: 1 h 49 min in the paper's notebooks (not measured on this machine).
Prints one JSON object (wall and process CPU times, cluster-level evaluations, batched calls,
peak RSS, the load average around each run); for the random forest also the cost of one classifier call on
the cluster with perturblab's vectorised forest and with scikit-learn's ``predict_proba``.

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/attack_suite.py [--classifiers sctype random_forest chetah]
        [--attacks max_change cgd] [--cluster NK] [--device cpu] [--threads 1] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from attack_single_gene import fit_on_pbmc3k_split, peak_rss_mb

ANCHOR = {
    ("max_change", "random_forest"): {"seconds": 573, "calls": 274, "genes": 12163},
    ("max_change", "sctype"): {"seconds": ">600 (stopped)", "calls": 340},
    ("max_change", "chetah"): {"seconds": "6540 (1 h 49 min, paper notebooks, PBMC; not this machine)"},
    ("cgd", "sctype"): {"seconds": 32, "calls": 36},
    ("cgd", "random_forest"): {"seconds": 511, "calls": 490, "genes_modified": 229},
}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _one_call_ms(clf, Xc, repeats: int = 5) -> dict:
    """Milliseconds of one predict_proba on the cluster's cells: perturblab's vectorised forest
    (leaf cache off: every call a full evaluation) and the scikit-learn model it was flattened
    from (random forest only)."""
    out = {}
    clf.leaf_cache_size = 0
    try:
        for name, fn in (("flat_forest", clf.predict_proba), ("sklearn", clf.model_.predict_proba)):
            fn(Xc)
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn(Xc)
            out[name] = round((time.perf_counter() - t0) / repeats * 1e3, 2)
    finally:
        del clf.leaf_cache_size  # back to the class default
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifiers", nargs="+", default=["sctype", "random_forest", "chetah"])
    p.add_argument("--attacks", nargs="+", default=["max_change", "cgd"], choices=["max_change", "cgd"])
    p.add_argument("--cluster", default="NK")
    p.add_argument("--n-signature", type=int, default=500)
    p.add_argument("--max-split-size", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (torch classifiers; 0 = leave as is)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    from perturblab.attack import cgd_attack, max_change_attack, signature_genes

    out = {"cluster": args.cluster, "n_cpus": os.cpu_count(), "runs": []}
    for name in args.classifiers:
        clf, X, cl, fit_s = fit_on_pbmc3k_split(name, args.device)
        run = {"classifier": name, "fit_s": round(fit_s, 2)}
        if name == "random_forest":
            run["one_call_ms"] = {"n_cells": int((cl == args.cluster).sum()),
                                  **_one_call_ms(clf, X[cl == args.cluster])}
        if "max_change" in args.attacks:
            load0, cpu0 = _load(), time.process_time()
            mc = max_change_attack(clf, X, cl, args.cluster, "perc99", max_split_size=args.max_split_size)
            run["max_change"] = {**mc.summary(), "cpu_s": round(time.process_time() - cpu0, 2),
                                 "anchor": ANCHOR.get(("max_change", name)),
                                 "load_avg_before_after": [load0, _load()], "peak_rss_mb": round(peak_rss_mb(), 1)}
        if "cgd" in args.attacks:
            t0 = time.perf_counter()
            sig = signature_genes(X, cl, clf.genes_)["gene"][: args.n_signature].tolist()
            run["signature_genes_s"] = round(time.perf_counter() - t0, 2)
            load0, cpu0 = _load(), time.process_time()
            cg = cgd_attack(clf, X, cl, args.cluster, sig, alpha=1, epsilon=1)
            run["cgd"] = {**{k: (v.item() if hasattr(v, "item") else v) for k, v in cg.summary.iloc[0].items()},
                          "first_genes": cg.modified_genes[:10], "wall_time_s": cg.wall_time_s,
                          "cpu_s": round(time.process_time() - cpu0, 2),
                          "n_batched_calls": cg.n_batched_calls, "anchor": ANCHOR.get(("cgd", name)),
                          "load_avg_before_after": [load0, _load()], "peak_rss_mb": round(peak_rss_mb(), 1)}
        out["runs"].append(run)
        print(json.dumps(run), file=sys.stderr)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out, indent=2, default=str))
    if args.out:
        from perturblab.io import write_json

        write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
