"""Benchmark: throughput and peak memory of streamed attention extraction (perturblab.interpret).

A randomly initialised Geneformer-V1-sized model (6 layers x 4 heads, d 256, BertForMaskedLM, rank-value
tokens) over synthetic counts (default 2,000 cells x 2,000 genes), extracted ONE LAYER AT A TIME into
(H, G, G) accumulators. Prints one JSON object: throughput (cells/s for all layers, and layer-passes/s),
the measured peak memory above the starting point (CPU: RSS sampled every 5 ms; CUDA:
torch.cuda.max_memory_allocated) and the expected bound = one layer's accumulator + the yielded maps + one
batch's activations, with its components.

    python benchmarks/interpret_extraction.py --n-cells 2000 --device cuda
    python benchmarks/interpret_extraction.py --n-cells 64 --device cpu --threads 1   # quick, on a laptop
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import anndata as ad
import numpy as np
import scipy.sparse as sp


def synthetic_counts(n_cells: int, n_genes: int, density: float, seed: int) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_cells, n_genes)) < density
    counts = rng.negative_binomial(2, 0.4, size=(n_cells, n_genes)) + 1
    adata = ad.AnnData(sp.csr_matrix((mask * counts).astype(np.float32)))
    adata.var_names = [f"G{i}" for i in range(n_genes)]
    return adata


def build_model(genes, args):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from perturblab.interpret.models import GeneformerModel

    tok = {"<pad>": 0, "<mask>": 1, **{g: i + 2 for i, g in enumerate(genes)}}
    cfg = BertConfig(vocab_size=len(tok), hidden_size=args.d_model, num_hidden_layers=args.n_layers,
                     num_attention_heads=args.n_heads, intermediate_size=2 * args.d_model,
                     max_position_embeddings=args.max_length, pad_token_id=0)
    torch.manual_seed(args.seed)
    net = BertForMaskedLM(cfg)
    return GeneformerModel(net, tok, {g: 1.0 for g in genes}, device=args.device)


class RSSPeak:
    """Peak resident memory of this process while the block runs, sampled in a thread."""

    def __enter__(self):
        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=2000)
    p.add_argument("--n-genes", type=int, default=2000)
    p.add_argument("--density", type=float, default=0.15, help="fraction of non-zero counts (tokens per cell)")
    p.add_argument("--n-layers", type=int, default=6)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--layers-per-pass", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from perturblab.interpret.extraction import iter_layer_attention

    if args.threads:
        torch.set_num_threads(args.threads)
    adata = synthetic_counts(args.n_cells, args.n_genes, args.density, args.seed)
    genes = list(adata.var_names)
    model = build_model(genes, args)
    dev = model.device
    lengths = np.asarray((adata.X > 0).sum(1)).ravel().clip(max=args.max_length)
    S, B, H, G, L, d = int(lengths.max()), args.batch_size, args.n_heads, args.n_genes, args.n_layers, args.d_model
    k = args.layers_per_pass
    bound = {
        "accumulators": k * H * G * G * 4 + G * G * 8,  # (H, G*G) float32 per layer + float64 counts
        "yielded_maps": H * G * G * 4 + 2 * G * G * 8 + G * G * 4,  # per_head, n_cells (+copy), denominator
        "batch_attention": (3 + k) * B * H * S * S * 4,  # scores, softmax, mask-add temporaries + kept layers
        "batch_hidden": (L + 1) * B * S * d * 4 + 2 * B * S * 2 * d * 4,
        "per_cell_scatter": 2 * H * S * S * 4 + S * S * 8,
    }
    with torch.no_grad():  # warm-up: load kernels and code paths before measuring
        model.forward(next(model.tokenize(adata[:2], genes, batch_size=2)), layers=[0])
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    per_layer = []
    with RSSPeak() as rss:
        for la in iter_layer_attention(model, adata, genes, batch_size=B, layers_per_pass=k):
            per_layer.append({"layer": la.layer, "seconds": round(time.perf_counter() - t0, 3),
                              "mean_attention": float(la.head_mean[la.n_cells > 0].mean())})
            del la
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() - base) if dev.type == "cuda" else (rss.peak - rss.start)
    layer_passes = L * (L + 1) // 2 if k == 1 else L
    out = {
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "model": f"{L} layers x {H} heads, d {d} (BertForMaskedLM, random init)",
        "n_cells": args.n_cells, "n_genes": G, "tokens_per_cell_mean": float(lengths.mean()), "tokens_per_cell_max": S,
        "batch_size": B, "layers_per_pass": k,
        "seconds_total": round(elapsed, 2),
        "cells_per_second_all_layers": round(args.n_cells / elapsed, 3),
        "cell_layer_passes_per_second": round(args.n_cells * layer_passes / elapsed, 3),
        "peak_memory_measured_mib": round(peak / 2**20, 1),
        "peak_memory_measured_what": ("CUDA max_memory_allocated above start" if dev.type == "cuda"
                                      else "process RSS peak above start"),
        "memory_bound_mib": round(sum(bound.values()) / 2**20, 1),
        "memory_bound_components_mib": {k_: round(v / 2**20, 1) for k_, v in bound.items()},
        "within_bound": bool(peak <= sum(bound.values())),
        "all_layers_at_once_accumulators_mib": round((L * H * G * G * 4) / 2**20, 1),
        "per_layer": per_layer,
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
