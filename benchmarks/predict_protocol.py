"""Why perturblab's baselines differ from published ones: the three protocol choices, one at a time, on the same
Kang subset.

Choices (see ``perturblab.predict.protocols``): (1) cell types kept for HVG selection and training (all 13, or
only those with >= 30 cells per condition, as in scGen's data); (2) library size of ``normalize_total`` (the
median, or 1e4); (3) the mean-delta control mean (all training controls, including the held-out type's own, or
only the types with stimulated training cells). Configurations: perturblab's protocol, each choice switched
alone to the scGen protocol's, and the full scGen protocol. The model is the gene-space mean delta (the
baseline whose published value, CD14 Mono R2 .751 / top-100 DEGs .631, the spec measured following scGen's
protocol); R2 = squared Pearson of the gene means (all genes, and the real top-100 Wilcoxon DEGs); 2,000 HVGs;
leave-one-cell-type-out on the eight types with >= 30 cells per condition.

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/predict_protocol.py [--out OUT]

Prints JSON: per configuration, R2 per target and the mean over targets.

Measured (this machine, perturblab 0.1.0, Kang 2,710-cell subset, 2,000 HVGs, point estimates):

=========================  =====  ===========================  ==================================
configuration              cells  CD14 Mono R2 all / top-100   mean of 8 types R2 all / top-100
=========================  =====  ===========================  ==================================
perturblab                 2710   .778 / .641                  .837 / .797
types >= 30 only           2550   .767 / .627                  .839 / .799
target_sum 1e4 only        2710   .785 / .648                  .845 / .789
control mean w/o target    2710   .767 / .662                  .835 / .805
scgen (all three)          2550   .751 / .631                  .823 / .760
published (spec)                  .751 / .631
=========================  =====  ===========================  ==================================

The scGen protocol reproduces the published CD14 Mono values to the third decimal: the three choices explain the
whole difference. No single choice does: dropping the small types (-.011) and the control mean without the
held-out type (-.011) lower R2, 1e4 counts raise it (+.007); together -.028.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CONFIGS = {
    "perturblab": {"min_cells_per_type": None, "target_sum": None, "control_cells": "all"},
    "types>=30": {"min_cells_per_type": 30, "target_sum": None, "control_cells": "all"},
    "target_sum=1e4": {"min_cells_per_type": None, "target_sum": 1e4, "control_cells": "all"},
    "control=with_stimulated": {"min_cells_per_type": None, "target_sum": None, "control_cells": "with_stimulated"},
    "scgen": {"min_cells_per_type": 30, "target_sum": 1e4, "control_cells": "with_stimulated"},
}
PUBLISHED = {"CD14 Mono": {"r2_all": 0.751, "r2_top100": 0.631,
                           "source": "spec perturbation-models.md: gene-space mean delta, scGen protocol"}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--n-top-genes", type=int, default=2000)
    args = p.parse_args(argv)

    import numpy as np

    import perturblab as plab
    from perturblab.io import write_json
    from perturblab.predict import evaluate, loco_split, loco_targets, make_model, prepare

    raw = plab.datasets.kang2018()
    targets = loco_targets(raw, 30)
    result = {"data": "kang2018 (2,710-cell subset)", "n_top_genes": args.n_top_genes, "targets": targets,
              "published": PUBLISHED, "configs": {}}
    for name, cfg in CONFIGS.items():
        adata = prepare(raw, args.n_top_genes, target_sum=cfg["target_sum"],
                        min_cells_per_type=cfg["min_cells_per_type"])
        per = {}
        for t in targets:
            split = loco_split(adata, t)
            model = make_model("mean_delta", split.train, control_cells=cfg["control_cells"])
            tab = evaluate(model.predict(split.target_ctrl), split.target_stim, split.target_ctrl, n_bootstrap=0)
            v = tab.set_index(["metric", "gene_set"])["value"]
            per[t] = {"r2_all": round(float(v[("r2_pearson_mean", "all")]), 4),
                      "r2_top100": round(float(v[("r2_pearson_mean", "top100_degs")]), 4),
                      "pearson_delta_top100_ttest": round(float(v[("pearson_delta", "top100_degs_ttest")]), 4)}
        mean = {k: round(float(np.mean([r[k] for r in per.values()])), 4) for k in next(iter(per.values()))}
        result["configs"][name] = {"settings": cfg, "n_cells": int(adata.n_obs), "per_target": per,
                                   "mean_over_targets": mean}
        print(f"{name}: CD14 Mono {per['CD14 Mono']}, mean {mean}", file=sys.stderr, flush=True)
    if args.out:
        write_json(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
