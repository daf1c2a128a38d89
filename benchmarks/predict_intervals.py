"""How often a metric's 95% interval misses its own estimate: the former intervals (percentile bootstrap,
predictions resampled independently of their control cells) against the current ones (centred bootstrap,
paired resampling, degenerate rows flagged), on the baselines' predictions of every Kang target.

Prints JSON: per interval scheme, the rows with a finite interval, those whose estimate lies outside it,
the NaN estimates that still got an interval, the flagged rows and the reasons, and examples.

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/predict_intervals.py [--n-bootstrap 30] [--n-top-genes 500]
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-bootstrap", type=int, default=30)
    p.add_argument("--n-top-genes", type=int, default=500)
    p.add_argument("--models", default="identity,mean_delta,linear")
    p.add_argument("--min-cells", type=int, default=30)
    args = p.parse_args(argv)

    import numpy as np
    import pandas as pd

    import perturblab as plab
    from perturblab.predict import (
        evaluate,
        loco_split,
        loco_targets,
        make_model,
        prepare,
    )

    adata = prepare(plab.datasets.kang2018(), n_top_genes=args.n_top_genes)
    targets = loco_targets(adata, min_cells=args.min_cells)
    schemes = {"former (percentile, unpaired)": {"ci_method": "percentile", "paired": False},
               "current (centered, paired)": {"ci_method": "centered", "paired": "auto"}}
    rows = []
    t0 = time.perf_counter()
    for t in targets:
        s = loco_split(adata, t)
        for model in args.models.split(","):
            pred = make_model(model, s.train, random_state=0).predict(s.target_ctrl)
            for scheme, kw in schemes.items():
                tab = evaluate(pred, s.target_stim, s.target_ctrl, n_bootstrap=args.n_bootstrap, **kw)
                rows.append(tab.assign(model=model, target=t, scheme=scheme))
    table = pd.concat(rows, ignore_index=True)
    out = {"targets": targets, "models": args.models.split(","), "n_bootstrap": args.n_bootstrap,
           "n_top_genes": args.n_top_genes, "seconds": round(time.perf_counter() - t0, 1), "schemes": {}}
    for scheme, g in table.groupby("scheme", sort=False):
        finite = g[np.isfinite(g["ci_low"])]
        outside = finite[(finite["value"] < finite["ci_low"] - 1e-12) | (finite["value"] > finite["ci_high"] + 1e-12)]
        nan_with_ci = g[g["value"].isna() & np.isfinite(g["ci_low"])]
        flagged = g[g["ci_flag"] != ""]
        reasons = flagged["ci_flag"].str.split("; ").explode().str.replace(r"\(.*\)", "", regex=True).str.strip()
        out["schemes"][scheme] = {
            "rows": len(g), "finite_intervals": len(finite), "estimate_outside_interval": len(outside),
            "nan_estimate_with_interval": len(nan_with_ci), "flagged_rows": len(flagged),
            "flag_reasons": reasons.value_counts().to_dict(),
            "examples_outside": outside[["model", "target", "metric", "gene_set", "value", "ci_low", "ci_high"]]
            .round(4).head(5).to_dict("records"),
        }
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
