"""Accuracy of the six cell-type classifiers on the PBMC3k test half (adverSCarial's setup).

Fits each classifier on ``perturblab.datasets.pbmc3k_split(random_state)``'s train half (raw counts,
label ``cell_type``), evaluates on the test half with ``evaluate_classifier`` and times fit,
preprocess and one classifier call (``predict`` on the whole test half). Prints a table and writes it
as JSON (``--out``).

    PERTURBLAB_DATA_DIR=... python benchmarks/classifier_accuracy.py --device auto --out results.json
"""

from __future__ import annotations

import argparse
import time

import pandas as pd


def main(argv=None) -> pd.DataFrame:
    from perturblab import datasets
    from perturblab.classifiers import CLASSIFIERS, PBMC3K_LABEL_MAP, evaluate_classifier, get_classifier
    from perturblab.io import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS), choices=list(CLASSIFIERS))
    ap.add_argument("--device", default="auto", help="MLP device: auto, cpu or cuda")
    ap.add_argument("--n-jobs", type=int, default=None, help="threads for random forest / CellTypist")
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON file to write the table to")
    args = ap.parse_args(argv)

    train, test = datasets.pbmc3k_split(random_state=args.random_state)
    options = {
        "sctype": {"label_map": PBMC3K_LABEL_MAP},
        "chetah": {},
        "svm": {"random_state": args.random_state},
        "random_forest": {"n_jobs": args.n_jobs, "random_state": args.random_state},
        "mlp": {"device": args.device, "random_state": args.random_state},
        "celltypist": {"n_jobs": args.n_jobs, "random_state": args.random_state},
    }
    rows = []
    for name in args.classifiers:
        clf = get_classifier(name, **options[name])
        t0 = time.perf_counter()
        clf.fit(train, "cell_type")
        t1 = time.perf_counter()
        X = clf.preprocess(test)
        t2 = time.perf_counter()
        clf.predict(X)
        t3 = time.perf_counter()
        row = evaluate_classifier(clf, test, "cell_type", name=name).iloc[0].to_dict()
        row.update(fit_s=t1 - t0, preprocess_s=t2 - t1, predict_s=t3 - t2,
                   n_used_genes=len(clf.used_genes_) if clf.used_genes_ is not None else len(clf.genes_))
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format="%.3f"), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="%.3f"))
    if args.out:
        write_json(args.out, {"train_cells": train.n_obs, "test_cells": test.n_obs, "n_genes": train.n_vars,
                              "random_state": args.random_state, "results": table.to_dict(orient="records")})
    return table


if __name__ == "__main__":
    main()
