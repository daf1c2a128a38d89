"""Benchmark: DE targets of a Replogle-scale CRISPR screen on a sparse matrix (``interpret.de_targets``).

Simulates a seeded synthetic screen shaped like Replogle 2022 (K562 essential: ~2,000 knock-downs, ~10,000
non-targeting control cells): by default 2,000 perturbations x 70 cells + 10,000 control cells = 150,000 cells x
4,000 genes, Poisson counts with gene means log-uniform in [0.005, 3] and a log-normal size factor per cell, stored
as CSR float32 (about 27% non-zero, ~1,900 UMIs per cell). Perturbation ``G<k>`` knocks gene ``G<k>`` down to 20%
and shifts 20 random target genes two-fold up or down. (A planted-GRN screen of this size:
``interpret.simulate_screen``, used by ``benchmarks/interpret_scale.py``.)

Then runs ``de_targets`` once and prints one JSON object: wall time, the process RSS before and the peak RSS
sampled during the call (and the increment), the process peak RSS overall (``ru_maxrss``, includes the
simulation), the matrix size, the result rows, how many planted targets were called, and how many calls are
genes with no count at all in the perturbation's cells (Welch's t-test of Kendiukhov 2026's DE calls them
significant against 10,000 control cells: the perturbed group has zero variance).

Usage::

    python benchmarks/interpret_de_scale.py [--perturbations 2000] [--cells-per-perturbation 70]
        [--controls 10000] [--genes 4000] [--seed 0] [--min-detection 0.1] [--out result.json]

``--min-detection 0`` reproduces the paper's unfiltered test (and its zero-variance calls); the default is
``de_targets``' filter. ``benchmarks/interpret_scale.py`` compares both on a planted network.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp


def simulate_screen(n_perturbations: int, cells_per_perturbation: int, n_controls: int, n_genes: int, seed: int,
                    targets_per_perturbation: int = 20, chunk: int = 5000):
    """Seeded sparse screen; returns (AnnData with CSR float32 counts, {perturbation: set of planted targets})."""
    import anndata as ad

    if n_perturbations > n_genes:
        raise SystemExit("--perturbations must not exceed --genes (perturbation G<k> knocks down gene G<k>)")
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{j}" for j in range(n_genes)])
    mu = np.exp(rng.uniform(np.log(0.005), np.log(3.0), n_genes))
    labels = np.array(["control"] * n_controls
                      + [f"G{k}" for k in range(n_perturbations) for _ in range(cells_per_perturbation)])
    rng.shuffle(labels)
    effects, planted = {}, {}
    for k in range(n_perturbations):
        tgt = rng.choice(np.delete(np.arange(n_genes), k), targets_per_perturbation, replace=False)
        fold = np.ones(n_genes)
        fold[tgt] = np.where(rng.random(tgt.size) < 0.5, 2.0, 0.5)
        fold[k] = 0.2
        effects[f"G{k}"] = fold
        planted[f"G{k}"] = set(genes[tgt])
    indptr, indices, data = [np.zeros(1, dtype=np.int64)], [], []
    nnz = 0
    for start in range(0, labels.size, chunk):
        lab = labels[start : start + chunk]
        size = rng.lognormal(0.0, 0.3, lab.size)[:, None]
        lam = size * mu[None, :]
        for i, p in enumerate(lab):
            if p != "control":
                lam[i] *= effects[p]
        block = sp.csr_matrix(rng.poisson(lam).astype(np.float32))
        indices.append(block.indices.astype(np.int32))
        data.append(block.data)
        indptr.append(block.indptr[1:].astype(np.int64) + nnz)
        nnz += block.nnz
    X = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.concatenate(indptr)),
                      shape=(labels.size, n_genes))
    del data, indices, indptr
    obs = pd.DataFrame({"perturbation": labels}, index=[f"c{i}" for i in range(labels.size)])
    return ad.AnnData(X, obs=obs, var=pd.DataFrame(index=genes)), planted


class PeakRSS:
    """Samples the process RSS every ``interval`` seconds in a thread; ``peak`` in MiB."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self._proc, self.interval, self.peak, self._stop = psutil.Process(), interval, 0.0, threading.Event()

    def rss(self) -> float:
        return self._proc.memory_info().rss / 2**20

    def __enter__(self):
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        return False


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--perturbations", type=int, default=2000)
    ap.add_argument("--cells-per-perturbation", type=int, default=70)
    ap.add_argument("--controls", type=int, default=10_000)
    ap.add_argument("--genes", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-detection", type=float, default=0.1,
                    help="de_targets' minimum-detection filter (0: the paper's unfiltered test).")
    ap.add_argument("--out", default=None, help="Also write the JSON here.")
    args = ap.parse_args(argv)

    from perturblab.interpret.perturbation import de_targets

    t0 = time.perf_counter()
    adata, planted = simulate_screen(args.perturbations, args.cells_per_perturbation, args.controls, args.genes,
                                     args.seed)
    sim_s = time.perf_counter() - t0
    X = adata.X
    matrix_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    with PeakRSS() as mem:
        before = mem.rss()
        t0 = time.perf_counter()
        de = de_targets(adata, "perturbation", "control", lfc_threshold=0.5, alpha=0.05,
                        min_detection=args.min_detection)
        de_s = time.perf_counter() - t0
    called = de[de["is_target"]]
    hits = sum(len(set(g) & planted[p]) for p, g in called.groupby("perturbation")["gene"])
    result = {
        "benchmark": "interpret_de_scale",
        "cells": int(adata.n_obs), "genes": int(adata.n_vars), "perturbations": args.perturbations,
        "min_detection": args.min_detection,
        "control_cells": args.controls, "nnz": int(X.nnz), "density": round(X.nnz / (adata.n_obs * adata.n_vars), 4),
        "matrix_csr_mb": round(matrix_mb, 1),
        "dense_float64_copy_mb": round(adata.n_obs * adata.n_vars * 8 / 2**20, 1),
        "simulate_s": round(sim_s, 1), "de_targets_s": round(de_s, 1),
        "rss_before_de_mb": round(before, 1), "peak_rss_during_de_mb": round(mem.peak, 1),
        "de_increment_mb": round(mem.peak - before, 1),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "result_rows": len(de), "result_mb": round(de.memory_usage(deep=False).sum() / 2**20, 1),
        "called_targets": len(called), "planted_targets": int(sum(map(len, planted.values()))),
        "planted_targets_called": int(hits),
        # Welch's t with a zero-variance group: genes never detected in a perturbation's cells test "significant"
        # against many control cells whatever the perturbation (log2FC about -25 from the 1e-9 pseudo-count)
        "called_with_no_count_in_perturbed_cells": int((called["log2fc"] < -20).sum()),
        "python": sys.version.split()[0],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from perturblab.io import write_text

        write_text(args.out, text + "\n")
    return result


if __name__ == "__main__":
    main()
