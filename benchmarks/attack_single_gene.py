"""Benchmark: single-gene attacks on the PBMC3k test half (adverSCarial's measurement setup).

Fits a classifier on the train half of ``perturblab.datasets.pbmc3k_split(0)``, then runs
the exhaustive single-gene attack (every gene alone, exact) and adverSCarial's dichotomic
search on one cluster of the test half (1,319 cells x 13,656 genes), for each modification.
Prints one JSON object: wall time, cluster-level evaluations (``n_classifier_calls``),
batched classifier invocations, hits and the process peak RSS, next to adverSCarial's
measured cost (R 1.3.13 on the same split: scType NK 193 s / 201 calls per modification).

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/attack_single_gene.py \
        [--classifier sctype] [--cluster NK] [--modifications perc1 perc99] [--device cpu] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

ANCHOR = {  # adverSCarial 1.3.13, this machine (reference spec adverscarial.md)
    ("sctype", "NK"): {"seconds": 193, "calls": 201, "hits": 0},
    ("random_forest", "NK"): {"seconds": 215, "calls": 201, "hits": 0},
    ("sctype", "B"): {"seconds": 331, "calls": 339},
    ("sctype", "CD14+ Mono"): {"seconds": 320, "calls": 331},
}


_CLASSES = {  # used while perturblab.classifiers.get_classifier is unavailable
    "sctype": ("sctype", "ScTypeClassifier"), "chetah": ("chetah", "ChetahClassifier"),
    "svm": ("svm", "SVMClassifier"), "random_forest": ("random_forest", "RandomForestClassifier"),
    "mlp": ("mlp", "MLPClassifier"), "celltypist": ("celltypist", "CellTypistClassifier"),
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_classifier(name: str, device: str = "cpu"):
    """An unfitted classifier by registry name (``device`` passed to torch classifiers)."""
    import importlib

    kw = {"device": device} if name == "mlp" else {}
    try:
        from perturblab.classifiers import get_classifier
    except ImportError:
        module, cls = _CLASSES[name]
        return getattr(importlib.import_module(f"perturblab.classifiers.{module}"), cls)(**kw)
    return get_classifier(name, **kw)


def fit_on_pbmc3k_split(name: str, device: str = "cpu"):
    """Fit classifier ``name`` on the PBMC3k train half; returns (clf, X_test, clusters_test, fit_s)."""
    import warnings

    import perturblab as plab

    train, test = plab.datasets.pbmc3k_split(random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = make_classifier(name, device).fit(train, "cell_type")
    fit_s = time.perf_counter() - t0
    return clf, clf.preprocess(test), test.obs["cell_type"].astype(str).to_numpy(), fit_s


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifier", default="sctype", help="perturblab.classifiers.get_classifier name")
    p.add_argument("--cluster", default="NK")
    p.add_argument("--modifications", nargs="+", default=["perc1", "perc99"])
    p.add_argument("--modes", nargs="+", default=["exhaustive", "dichotomic"])
    p.add_argument("--device", default="cpu", help="torch device for torch classifiers (cpu, cuda, auto)")
    p.add_argument("--no-fast-path", action="store_true", help="force the generic stacked-batch path")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)

    from perturblab.attack import single_gene_attack

    clf, X, clusters, fit_s = fit_on_pbmc3k_split(args.classifier, args.device)
    out = {"classifier": args.classifier, "cluster": args.cluster, "n_cells": int(X.shape[0]),
           "n_genes": int(X.shape[1]), "fit_s": round(fit_s, 3), "runs": [],
           "anchor": ANCHOR.get((args.classifier, args.cluster))}
    for mod in args.modifications:
        for mode in args.modes:
            res = single_gene_attack(clf, X, clusters, args.cluster, mod, mode=mode,
                                     use_fast_path=not args.no_fast_path)
            s = res.summary()
            s["wall_time_s"] = round(s["wall_time_s"], 4)
            s["hits"] = res.genes
            s["peak_rss_mb"] = round(peak_rss_mb(), 1)
            out["runs"].append(s)
            print(json.dumps(s), file=sys.stderr)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out, indent=2))
    if args.out:
        from perturblab.io import write_json

        write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
