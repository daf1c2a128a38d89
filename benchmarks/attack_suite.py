"""Benchmark: max-change and CGD on the PBMC3k test half (NK), side by side with adverSCarial.

Anchor costs (adverSCarial 1.3.13, R, this machine; reference spec adverscarial.md):
max-change perc99 RF 573 s / 274 calls (12,163 genes, maxSplitSize 100), scType > 600 s;
CGD alpha = eps = 1 over 500 signature genes: scType 32 s / 36 calls, RF 511 s / 490 calls.
Prints one JSON object (wall times, cluster-level evaluations, batched calls, peak RSS).

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/attack_suite.py [--classifiers sctype random_forest]
        [--cluster NK] [--device cpu] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from attack_single_gene import fit_on_pbmc3k_split, peak_rss_mb

ANCHOR = {
    ("max_change", "random_forest"): {"seconds": 573, "calls": 274, "genes": 12163},
    ("max_change", "sctype"): {"seconds": ">600 (stopped)", "calls": 340},
    ("cgd", "sctype"): {"seconds": 32, "calls": 36},
    ("cgd", "random_forest"): {"seconds": 511, "calls": 490, "genes_modified": 229},
}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifiers", nargs="+", default=["sctype", "random_forest"])
    p.add_argument("--cluster", default="NK")
    p.add_argument("--n-signature", type=int, default=500)
    p.add_argument("--max-split-size", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from perturblab.attack import cgd_attack, max_change_attack, signature_genes

    out = {"cluster": args.cluster, "runs": []}
    for name in args.classifiers:
        clf, X, cl, fit_s = fit_on_pbmc3k_split(name, args.device)
        t0 = time.perf_counter()
        sig = signature_genes(X, cl, clf.genes_)["gene"][: args.n_signature].tolist()
        sig_s = time.perf_counter() - t0
        mc = max_change_attack(clf, X, cl, args.cluster, "perc99", max_split_size=args.max_split_size)
        run = {"classifier": name, "fit_s": round(fit_s, 2), "signature_genes_s": round(sig_s, 2),
               "max_change": {**mc.summary(), "anchor": ANCHOR.get(("max_change", name))}}
        run["max_change"]["peak_rss_mb"] = round(peak_rss_mb(), 1)
        cg = cgd_attack(clf, X, cl, args.cluster, sig, alpha=1, epsilon=1)
        run["cgd"] = {**{k: (v.item() if hasattr(v, "item") else v) for k, v in cg.summary.iloc[0].items()},
                      "first_genes": cg.modified_genes[:10], "wall_time_s": cg.wall_time_s,
                      "n_batched_calls": cg.n_batched_calls, "peak_rss_mb": round(peak_rss_mb(), 1),
                      "anchor": ANCHOR.get(("cgd", name))}
        out["runs"].append(run)
        print(json.dumps(run), file=sys.stderr)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out, indent=2, default=str))
    if args.out:
        from perturblab._io import write_json

        write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
