"""Tuned vs default scGen and scPRAM on Kang 2018 cell types, and tuning wall time on 1 and 2 workers.

Every tuning run is leakage-free (perturblab.predict.tune: nested leave-one-cell-type-out on the
training cell types; HVGs chosen without the target's stimulated cells). The held-out target's
R2 (squared Pearson of gene means, all genes and top-100 DEGs) and E-distance (30 PCs) are
reported for the tuned model, the default model and the baselines. Prints JSON and writes it
to OUT/tuning_compare.json (rewritten after each target, so partial runs keep their numbers).

    PERTURBLAB_DATA_DIR=... python benchmarks/tuning_compare.py --out results/tuning_compare \
        --targets "CD14 Mono" "CD4 Naive T" B --n-trials 20 --max-epochs 100 --device auto
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import perturblab as plab
from perturblab.io import write_json
from perturblab.predict.tuning import prepare_without_target, tune

ROWS = (("r2_pearson_mean", "all"), ("r2_pearson_mean", "top100_degs"), ("edistance", "pca"))


def _summary(final):
    out = {}
    for (config, model), grp in final.groupby(["config", "model"]):
        out[f"{config}:{model}"] = {f"{m}[{g}]": float(grp[(grp.metric == m) & (grp.gene_set == g)].value.iloc[0])
                                   for m, g in ROWS if ((grp.metric == m) & (grp.gene_set == g)).any()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--targets", nargs="+", default=["CD14 Mono", "CD4 Naive T", "B"])
    p.add_argument("--models", nargs="+", default=["scgen", "scpram"])
    p.add_argument("--n-trials", type=int, default=20)
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--n-inner", type=int, default=3)
    p.add_argument("--n-top-genes", type=int, default=2000)
    p.add_argument("--n-bootstrap", type=int, default=100)
    p.add_argument("--timing-trials", type=int, default=4, help="trials of the 1- vs 2-worker timing run (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    a = p.parse_args()

    counts = plab.datasets.kang2018()
    result = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}, "targets": {}}
    common = dict(n_inner=a.n_inner, max_epochs=a.max_epochs, random_state=a.seed, device=a.device, report=True)
    for target in a.targets:
        adata = prepare_without_target(counts, target, n_top_genes=a.n_top_genes)
        for model in a.models:
            t0 = time.perf_counter()
            res = tune(adata, model, target, out_dir=a.out / f"{model}-{target.replace(' ', '_')}",
                       n_trials=a.n_trials, n_bootstrap=a.n_bootstrap, **common)
            result["targets"].setdefault(target, {})[model] = {
                "best_params": res.best_params, "best_inner_score": res.best_value,
                "n_trials": len(res.trials), "wall_time_s": time.perf_counter() - t0,
                "test": _summary(res.final) if len(res.final) else {}}
            write_json(a.out / "tuning_compare.json", result)
    if a.timing_trials:
        target, model = a.targets[0], a.models[0]
        adata = prepare_without_target(counts, target, n_top_genes=a.n_top_genes)
        timing = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            tune(adata, model, target, out_dir=a.out / f"timing-{workers}w", n_trials=a.timing_trials,
                 n_workers=workers, final=False, **common)
            timing[f"{workers}_workers_s"] = time.perf_counter() - t0
        result["timing"] = {"model": model, "target": target, "n_trials": a.timing_trials, **timing}
        write_json(a.out / "tuning_compare.json", result)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
