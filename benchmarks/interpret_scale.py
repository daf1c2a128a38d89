"""Benchmark: the interpret pipeline's data analyses at Replogle scale - wall time and peak memory (JSON).

A simulated Replogle-like screen (``interpret.simulate_screen``: planted GRN, 2,000 knocked-down regulators x 70
cells + 10,000 control cells = 150,000 cells x 4,000 genes, sparse CSR, generated in chunks) goes through the
pipeline's own functions:

1. DE targets (``de_targets``, sparse, one perturbation at a time, ``--n-jobs`` worker processes), once with the
   paper's unfiltered Welch test (``min_detection=0``) and once with the default minimum-detection filter (0.1);
2. edge scores on 2,000 control cells: |Spearman| and the gene-level baselines, plus an attention-shaped stack of
   ``--layers x --heads`` (G, G) float32 maps (noise plus planted-edge signal of varying strength per head)
   written to a run store one layer per unit and analysed one layer at a time (``layer_pass.analyse_layers``:
   reference recovery of every summary and head against the planted network, per-perturbation AUROC). The
   reference's candidate universe is TF sources x all genes, as for TRRUST-like references; ``--tfs`` regulators
   count as TFs (default 8% of the genes, the share of Lambert et al. 2018's 1,639 TFs in the genome: 320 of
   4,000 genes, 1.3 M candidate edges; all 2,000 regulators give 8 M candidates and about 6 x the time);
3. perturbation-first AUROC of correlation and baselines, nested-CV choice of the tested layer summary;
4. degree-preserving (curveball) and label-shuffle nulls of the chosen summary and of correlation.

Peak memory is the largest proportional set size (PSS) of the process tree (this process and its workers, sampled
every 200 ms): pages the workers share (joblib memory-maps the matrix for them) count once, not once per process;
the sum of resident sets, which counts them once per process, is printed beside it. Goal: under 8 GB.

Estimate for a Geneformer V2-size model on one GPU: not measured here (no GPU). The script measures the CPU
throughput of the streamed extraction on a model of Geneformer V1-10M's shape (6 layers, 4 heads, width 256,
2,048 tokens: own architecture, the same matrix products), converts it to achieved FLOP/s with the standard
count (per token and layer ``24 d^2 + 4 S d`` multiply-adds x 2 ... see ``forward_flops``), and scales to V2-316M
(18 layers, 18 heads, width 1,152, 4,096 tokens; Chen et al. 2024) on an H100/H200-class GPU at an assumed
sustained 100-200 TFLOP/s (TF32 matrix products of an fp32 eager model with materialised attention, 20-40% of
the dense TF32 peak); the attention scatter into (H, G, G) accumulators is memory-bound and estimated from the
number of gene-pair elements per cell at an assumed ~1e11 scattered elements/s. The per-head CPU analyses
(reference recovery, perturbation AUROC) are scaled from their measured time per head to V2's 324 heads.

Usage::

    python benchmarks/interpret_scale.py [--perturbations 2000] [--genes 4000] [--regulators 2000]
        [--cells-per-perturbation 70] [--controls 10000] [--layers 4] [--heads 4] [--n-cells 2000]
        [--tfs 320] [--n-degree-null 100] [--n-label-null 20] [--n-jobs 1] [--seed 0] [--skip-estimate]
        [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time

import numpy as np
import pandas as pd


class TreeRSS:
    """Samples the memory of this process and all its children every ``interval`` s, in MiB.

    ``peak``: the largest sum of proportional set sizes (PSS: a page shared by k processes, such as the arrays
    joblib memory-maps for its workers, counts 1/k in each), the memory the tree really holds;
    ``peak_rss``: the largest sum of resident sets (shared pages counted once per process: an upper bound).
    """

    def __init__(self, interval: float = 0.2):
        import psutil

        self._proc, self.interval, self._stop = psutil.Process(), interval, threading.Event()
        self.peak = self.peak_rss = self._phase = 0.0
        self.phase_peaks: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        """Record the peak PSS since the previous mark as ``phase_peaks[phase]`` (MiB)."""
        self._update()
        self.phase_peaks[phase] = round(self._phase, 1)
        self._phase = 0.0

    def sample(self) -> tuple[float, float]:
        import contextlib

        import psutil

        pss = rss = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                m = p.memory_full_info()
                pss, rss = pss + getattr(m, "pss", m.rss), rss + m.rss
        return pss / 2**20, rss / 2**20

    def rss(self) -> float:
        return self.sample()[1]

    def _update(self) -> None:
        pss, rss = self.sample()
        self.peak, self.peak_rss, self._phase = max(self.peak, pss), max(self.peak_rss, rss), max(self._phase, pss)

    def __enter__(self):
        self._update()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self._update()
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._update()
        return False


def forward_flops(n_layers: int, d: int, seq: int, d_ff: int | None = None) -> float:
    """FLOPs of one cell's forward: per token and layer Q, K, V, O projections (``4 d^2`` multiply-adds), the
    feed-forward (``2 d d_ff``), attention scores and context (``2 S d``); x 2 FLOPs per multiply-add."""
    d_ff = 4 * d if d_ff is None else d_ff
    per_token_layer = 4 * d * d + 2 * d * d_ff + 2 * seq * d
    return 2.0 * per_token_layer * seq * n_layers


def synthetic_layers(store, genes, edges, n_layers: int, n_heads: int, seed: int) -> dict:
    """Write ``n_layers`` layers of (H, G, G) float32 attention-like maps to ``store`` (one unit per layer, the
    pipeline's layout): log-normal noise, plus a planted-edge signal whose strength grows with layer and head."""
    from perturblab.interpret.layer_pass import _key

    G = genes.size
    idx = {g: i for i, g in enumerate(genes)}
    A = np.zeros((G, G), dtype=np.float32)
    A[[idx[s] for s in edges["source"]], [idx[t] for t in edges["target"]]] = 1.0
    rng = np.random.default_rng(seed)
    paths = {}
    for layer in range(n_layers):
        per_head = np.empty((n_heads, G, G), dtype=np.float32)
        for h in range(n_heads):
            per_head[h] = rng.lognormal(0.0, 1.0, size=(G, G)).astype(np.float32)
            per_head[h] += A * (0.5 * (layer + 1) * h)
            per_head[h] /= G
        store.save(_key(layer), arrays={"per_head": per_head, "genes": genes.astype(str),
                                        "entropy": np.full(n_heads, np.nan)})
        paths[layer] = store.path(_key(layer)) / "arrays.npz"
        del per_head
    store.save(_key("counts"), arrays={"n_cells": np.ones((1, 1), dtype=np.int64), "genes": genes.astype(str)})
    return paths


def extraction_throughput(n_cells: int = 4, seed: int = 0) -> dict:
    """Cells/s and achieved FLOP/s of the streamed extraction on a V1-10M-shaped model (own architecture)."""
    import anndata as ad
    import scipy.sparse as sp
    import torch

    from perturblab.interpret.extraction import iter_layer_attention
    from perturblab.interpret.models import OwnGeneTransformer

    L, H, d, S = 6, 4, 256, 2048
    rng = np.random.default_rng(seed)
    genes = np.array([f"g{i}" for i in range(S - 1)])
    X = sp.csr_matrix(rng.poisson(2.0, size=(n_cells, genes.size)).astype(np.float32) + 1)
    adata = ad.AnnData(X, var=pd.DataFrame(index=genes))
    model = OwnGeneTransformer(genes, d_model=d, n_heads=H, n_layers=L, d_ff=2 * d, dropout=0.0, device="cpu")
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    with torch.no_grad():
        fwd = [model.forward(b, output_attentions=False) for b in model.tokenize(adata, genes, batch_size=1)]
    t_fwd = time.perf_counter() - t0
    del fwd
    t0 = time.perf_counter()
    for _ in iter_layer_attention(model, adata, genes, batch_size=1, layers_per_pass=L):
        pass
    t_ext = time.perf_counter() - t0
    flops = forward_flops(L, d, S, 2 * d)
    return {"model": f"own architecture, {L} layers x {H} heads, width {d}, {S} tokens (Geneformer V1-10M shape)",
            "cells": n_cells, "torch_threads": threads, "forward_s_per_cell": t_fwd / n_cells,
            "extraction_s_per_cell": t_ext / n_cells, "forward_gflops_per_cell": flops / 1e9,
            "achieved_gflops_per_s": flops / (t_fwd / n_cells) / 1e9,
            "scatter_elements_per_s": L * H * (S - 1) ** 2 / max(t_ext / n_cells - t_fwd / n_cells, 1e-9)}


def v2_estimate(measured: dict, per_score_s: float, n_cells: int = 2000, n_genes: int = 2000,
                ablation_cells: int = 500) -> dict:
    """The full pipeline with a Geneformer V2-316M-size model on one GPU (see the module docstring).

    Passes: extraction of every layer over ``n_cells`` control cells (one sweep when all layers' accumulators fit,
    ``(L + 1) / 2`` sweeps' worth of layer passes with the pipeline's one-layer-per-sweep streaming); cell
    embeddings for CSSI (one forward) and CSSI's per-stratum extraction of one layer (about one more sweep); the
    ablation experiment on ``ablation_cells`` cells: ks 5/10/20/50 top + bottom (8 runs), 3 entropy-matched
    random draws per k (12), uniform / MLP / layer-zero at ~4 regulatory layers (12), each an intact and an
    intervened forward (Geneformer has no ``<mask>`` value, so no third, masked forward) plus the scatter of about
    half the layers.
    """
    L, H, d, S = 18, 18, 1152, 4096
    flops = forward_flops(L, d, S)
    gpu = (100e12, 200e12)  # sustained TF32 FLOP/s assumed (20-40% of an H100's ~495 TFLOP/s dense TF32 peak)
    scatter_rate = 1e11  # gene-pair elements scattered per second on the GPU (index_add, memory-bound), assumed
    genes_per_cell = min(n_genes, 0.4 * S)  # genes under study among a cell's 4,096 tokens, assumed ~40%
    scatter = L * H * genes_per_cell**2  # gene-pair elements per cell and full extraction
    runs = 8 + 12 + 12

    def seconds(f: float) -> list[int]:
        return [round(n_cells * (flops * f / g)) for g in gpu]

    ext_one = [round(a + n_cells * scatter / scatter_rate) for a in seconds(1.0)]
    ext_stream = [round(a + n_cells * scatter / scatter_rate) for a in seconds((L + 1) / 2)]
    other = seconds(2.0)  # cell embeddings + CSSI's per-stratum extraction
    abl = [round(ablation_cells * runs * (2 * flops / g + 0.5 * scatter / scatter_rate)) for g in gpu]
    heads_cpu = round(per_score_s * (L * H + 2 * L))
    return {
        "model": "Geneformer V2-316M: 18 layers x 18 heads, width 1152, feed-forward 4608, 4096 tokens",
        "forward_tflops_per_cell": round(flops / 1e12, 2),
        "cpu_projection_one_sweep_s": round(n_cells * flops / (measured["achieved_gflops_per_s"] * 1e9)),
        "assumed_gpu_tflops_per_s": [g / 1e12 for g in gpu], "assumed_scatter_elements_per_s": scatter_rate,
        "scatter_elements_per_cell": scatter,
        "extraction_s_all_layers_per_sweep": ext_one,
        "extraction_s_one_layer_per_sweep": ext_stream,
        "embeddings_and_cssi_s": other,
        "ablation_s": abl,
        "per_head_cpu_analyses_s": heads_cpu,
        "total_gpu_stages_s": [a + b + c for a, b, c in zip(ext_stream, other, abl)],
        "note": ("GPU stages for [100, 200] TFLOP/s; the per-head CPU analyses (reference recovery and perturbation "
                 "AUROC of 324 heads + 36 summaries) scale the measured time per score of this benchmark (its G and "
                 "candidate universe) and run in --n-jobs workers; DE, nulls, incremental value and "
                 "residualisation do not depend on the model (DE and nulls as measured here)"),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--perturbations", type=int, default=2000)
    ap.add_argument("--regulators", type=int, default=2000)
    ap.add_argument("--genes", type=int, default=4000)
    ap.add_argument("--cells-per-perturbation", type=int, default=70)
    ap.add_argument("--controls", type=int, default=10_000)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--n-cells", type=int, default=2000)
    ap.add_argument("--tfs", type=int, default=None, help="Regulators that count as TFs (default: 8%% of genes).")
    ap.add_argument("--n-degree-null", type=int, default=100)
    ap.add_argument("--n-label-null", type=int, default=20)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-estimate", action="store_true", help="Do not measure the extraction throughput.")
    ap.add_argument("--out", default=None, help="Also write the JSON here.")
    args = ap.parse_args(argv)

    import os
    import resource

    from perturblab.interpret.baselines import baseline_scores, gene_features
    from perturblab.interpret.edges import correlation_scores, log_normalise
    from perturblab.interpret.layer_pass import analyse_layers, layer_summary_scores
    from perturblab.interpret.perturbation import TargetLabels, de_targets, perturbation_auroc
    from perturblab.interpret.pipeline import InterpretConfig
    from perturblab.interpret.references import Reference, reference_recovery
    from perturblab.interpret.selection import candidate_names, nested_cv_selection
    from perturblab.interpret.simulate import simulate_screen
    from perturblab.interpret.stages import nulls
    from perturblab.runs import UnitStore, open_run

    times, result = {}, {"benchmark": "interpret_scale", "python": sys.version.split()[0]}
    cpu0 = os.times()
    with TreeRSS() as mem:
        t0 = time.perf_counter()
        sim = simulate_screen(n_genes=args.genes, n_regulators=args.regulators, n_perturbations=args.perturbations,
                              cells_per_perturbation=args.cells_per_perturbation, n_control=args.controls,
                              random_state=args.seed)
        times["simulate"] = time.perf_counter() - t0
        mem.mark("simulate")
        adata, X = sim.adata, sim.adata.X
        result.update(cells=int(adata.n_obs), genes=int(adata.n_vars), perturbations=args.perturbations,
                      control_cells=args.controls, nnz=int(X.nnz), density=round(X.nnz / np.prod(adata.shape), 4),
                      matrix_csr_mb=round((X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20, 1),
                      planted_edges=len(sim.edges))
        rss_after_sim = mem.rss()

        # 1. DE: the paper's unfiltered test and the default detection filter
        downstream = {p: sim.downstream(p) for p in sim.knockouts}
        direct = set(zip(sim.edges["source"], sim.edges["target"]))
        de_stats = {}
        for md in (0.0, 0.1):
            t0 = time.perf_counter()
            de = de_targets(adata, "perturbation", "control", min_detection=md, n_jobs=args.n_jobs)
            times[f"de_min_detection_{md}"] = time.perf_counter() - t0
            mem.mark(f"de_min_detection_{md}")
            called = de[de["is_target"]]
            pairs = list(zip(called["perturbation"], called["gene"]))
            n_down = sum(g in downstream[p] for p, g in pairs)
            de_stats[str(md)] = {
                "called": len(called), "called_direct_targets": sum(pr in direct for pr in pairs),
                "called_downstream_genes": n_down, "precision_downstream": round(n_down / max(len(called), 1), 3),
                "called_with_no_count_in_perturbed_cells": int((called["detection"] == 0).sum()),
                "share_no_count": round(float((called["detection"] == 0).mean()) if len(called) else 0.0, 3),
                "tested_share": round(float(de["tested"].mean()), 3)}
            if md == 0.0:
                del de, called
        result["planted_direct_targets"] = int(sum(s in set(sim.knockouts) for s in sim.edges["source"]))
        result["de"] = de_stats
        del pairs

        # 2. edge scores on control cells
        t0 = time.perf_counter()
        rng = np.random.default_rng(args.seed)
        ctrl_idx = np.flatnonzero(adata.obs["perturbation"].to_numpy() == "control")
        ctrl_idx = np.sort(rng.choice(ctrl_idx, min(args.n_cells, ctrl_idx.size), replace=False))
        genes = np.asarray(adata.var_names).astype(str)
        Xc = log_normalise(X[ctrl_idx], library_size=np.asarray(X[ctrl_idx].sum(axis=1)).ravel())
        corr = correlation_scores(Xc, genes)
        feats = gene_features(Xc, genes)
        del Xc
        ref = Reference("planted", sim.edges[["source", "target"]])
        n_tfs = args.tfs if args.tfs is not None else min(args.regulators, round(0.08 * args.genes))
        tfs = sim.tfs[:n_tfs]
        base = baseline_scores(feats, sim.edges)
        times["edge_scores"] = time.perf_counter() - t0
        mem.mark("edge_scores")

        tmp = tempfile.TemporaryDirectory(prefix="perturblab-scale-")
        run = open_run(tmp.name, "interpret-scale", {"seed": args.seed})
        store = UnitStore(run)
        t0 = time.perf_counter()
        paths = synthetic_layers(store, genes, sim.edges, args.layers, args.heads, args.seed)
        times["write_layers"] = time.perf_counter() - t0
        mem.mark("write_layers")

        # 3. per-layer analyses (reference recovery + perturbation AUROC of summaries and heads)
        t0 = time.perf_counter()
        per_layer = analyse_layers(store, paths, [ref], tfs, de, genes, n_jobs=args.n_jobs)
        times["layer_analyses"] = time.perf_counter() - t0
        mem.mark("layer_analyses")
        t0 = time.perf_counter()
        targets = TargetLabels(de, genes)
        pp = perturbation_auroc([corr, *base], de, targets=targets)
        rec_corr = reference_recovery([corr], [ref], tfs=tfs)
        sel = nested_cv_selection(per_layer["perturbation"], candidate_names(args.layers),
                                  f"attention L{args.layers - 1} mean", random_state=args.seed)
        layer, summary = int(sel.final.split()[1][1:]), sel.final.split()[2]
        final = layer_summary_scores(paths[layer], layer, summary)
        times["perturbation_auroc_and_selection"] = time.perf_counter() - t0
        mem.mark("perturbation_auroc_and_selection")

        # 4. nulls
        t0 = time.perf_counter()
        cfg = InterpretConfig(n_degree_null=args.n_degree_null, n_label_null=args.n_label_null, n_jobs=args.n_jobs,
                              random_state=args.seed)
        nl = nulls([final, corr], [ref], tfs, cfg)
        times["nulls"] = time.perf_counter() - t0
        mem.mark("nulls")
        tmp.cleanup()

    cpu1 = os.times()
    n_scores = args.layers * (args.heads + 2)
    per_head_s = times["layer_analyses"] * max(args.n_jobs, 1) / n_scores
    result.update(
        seconds={k: round(v, 1) for k, v in times.items()}, total_s=round(sum(times.values()), 1),
        cpu_s=round(sum(b - a for a, b in zip(cpu0[:4], cpu1[:4])), 1),
        load_average_1min=round(os.getloadavg()[0], 2), cpu_count=os.cpu_count(),
        ru_maxrss_self_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        peak_pss_tree_mb=round(mem.peak, 1), peak_rss_tree_mb=round(mem.peak_rss, 1),
        peak_pss_tree_mb_by_phase=mem.phase_peaks,
        rss_after_simulation_mb=round(rss_after_sim, 1),
        goal_peak_mb=8192, meets_goal=bool(mem.peak < 8192),
        layer_analysis_s_per_score=round(per_head_s, 2),
        n_rankable_perturbations=len(targets),
        mean_perturbation_auroc={s: round(float(v), 3) for s, v in pp.groupby("score")["auroc"].mean().items()},
        reference_auroc={"spearman": round(float(rec_corr["auroc"].iloc[0]), 3),
                         **{r.score: round(float(r.auroc), 3) for r in per_layer["recovery"].itertuples()
                            if r.head in ("mean", "max")}},
        tested_layer_summary=sel.final,
        nulls=[{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                if k in ("score", "null", "observed_auroc", "null_mean", "z", "p_empirical", "n_null")}
               for r in nl.to_dict("records")],
        reference_candidates=int(per_layer["recovery"]["n_candidates"].iloc[0]),
        reference_positives=int(per_layer["recovery"]["n_positive"].iloc[0]),
        settings={"n_jobs": args.n_jobs, "layers": args.layers, "heads": args.heads, "n_cells": args.n_cells,
                  "tfs": n_tfs,
                  "n_degree_null": args.n_degree_null, "n_label_null": args.n_label_null})
    if not args.skip_estimate:
        thr = extraction_throughput()
        result["cpu_extraction_throughput"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in thr.items()}
        result["estimate_geneformer_v2_one_gpu"] = v2_estimate(thr, per_head_s, n_cells=args.n_cells)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from perturblab.io import write_text

        write_text(args.out, text + "\n")
    return result


if __name__ == "__main__":
    main()
