"""Wall time, peak memory and units of the robustness audit (``perturblab audit``), as JSON.

Presets:
- ``default``: ``perturblab audit`` defaults (6 classifiers x 9 PBMC3k clusters x single-gene with
  perc1 and perc99, seed 0);
- ``full``: 6 classifiers x 9 clusters x (single-gene, max-change, CGD) x (perc1, perc99, decile+5);
- ``full7`` (default): the six and the transformer annotator (:mod:`perturblab.bridges`) x 9 clusters x
  (single-gene, max-change, CGD, PGD) x (perc1, perc99, decile+5); PGD runs on the differentiable classifiers
  (scType, SVM, MLP, CellTypist, transformer) with the default budgets (k = 1, 2, 5, 10, 20, 50).

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/audit_full.py --preset full --out /tmp/audit_full --n-jobs -1
    python benchmarks/audit_full.py --preset full --out /tmp/audit_full --scheduler tcp://host:8786

Prints one JSON object: wall time, peak RSS (this process and, separately, its worker processes),
CPU time, load average, number of units, genes found and classifier calls per classifier and attack.
An existing ``--out`` is resumed (pass ``--overwrite`` to start over).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

PRESETS = {
    "default": {},
    "full": {"attacks": ("single_gene", "max_change", "cgd"), "modifications": ("perc1", "perc99", "decile+5")},
    "full7": {"classifiers": ("sctype", "chetah", "svm", "random_forest", "mlp", "celltypist", "transformer"),
              "attacks": ("single_gene", "max_change", "cgd", "pgd"), "modifications": ("perc1", "perc99", "decile+5")},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="full7")
    p.add_argument("--out", required=True)
    p.add_argument("--n-jobs", type=int, default=-1)
    p.add_argument("--scheduler", default=None, help="Dask distributed scheduler address")
    p.add_argument("--device", default=None, help="torch device of the MLP (cpu, cuda; default: auto)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()

    import perturblab as plab
    import perturblab.bridges  # registers the "transformer" classifier

    load0 = os.getloadavg()
    t0, cpu0 = time.perf_counter(), os.times()
    out_exists = os.path.isdir(args.out) and bool(os.listdir(args.out))
    r = plab.audit.run_audit(out=args.out, resume=out_exists and not args.overwrite, overwrite=args.overwrite,
                             n_jobs=args.n_jobs, scheduler=args.scheduler, device=args.device, **PRESETS[args.preset])
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    att = r.attacks
    by = att.groupby(["classifier", "attack"]).agg(units=("cluster", "size"), n_found=("n_found", "sum"),
                                                   calls=("n_classifier_calls", "sum"),
                                                   unit_seconds=("unit_wall_time_s", "sum"))
    print(json.dumps({
        "preset": args.preset, "n_jobs": args.n_jobs, "scheduler": args.scheduler,
        "wall_time_s": round(wall, 1),
        "cpu_time_s": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
                            + (cpu1.children_user - cpu0.children_user)
                            + (cpu1.children_system - cpu0.children_system), 1),
        "peak_rss_mb_main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_largest_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "loadavg_start": load0, "loadavg_end": os.getloadavg(), "n_cpus": os.cpu_count(),
        "n_units": r.summary["n_units"], "n_units_resumed": r.summary["n_units_resumed"],
        "accuracy": r.accuracy[["classifier", "accuracy", "macro_f1", "macro_auroc", "fit_time_s"]]
        .round(4).to_dict(orient="records"),
        "single_gene_modes": r.summary["single_gene_modes"],
        "by_classifier_attack": {f"{k[0]}/{k[1]}": {c: round(float(v), 2) for c, v in row.items()}
                                 for k, row in by.iterrows()},
    }, indent=1))


if __name__ == "__main__":
    main()
