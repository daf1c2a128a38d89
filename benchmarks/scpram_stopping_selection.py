"""Choose ScPRAM's stopping rule without looking at the benchmark targets (as ``scgen_decoder_selection.py`` chose
scGen's decoder).

perturblab's ScPRAM stopped early (10% validation, patience 25 on the denoising objective) and kept epochs
32-60, which cost up to .07 R2 on small cell types against the released code's fixed 100 epochs. Here the
benchmark targets of ``predict_compare.py`` (CD14 Mono, CD4 Naive T, B) lose their stimulated cells BEFORE
preprocessing (HVGs and library size never see them); the candidate rules are scored by leave-one-cell-type-out
on other Kang cell types (CD16 Mono, CD4 Memory T, CD8 T, NK, T activated). Primary score: R2 of the gene means
(squared Pearson, all genes), as in the scGen selection; also top-100 DEGs, Pearson delta on the t-test top-100
DEGs, E-distance, and the training time.

Candidates (``train`` keyword arguments of :class:`perturblab.predict.ScPRAM`):

- ``es25``: 10% validation, early stopping with patience 25, at most 100 epochs (the former default);
- ``fixed100``: no validation, 100 epochs (the released code);
- ``fixed60``: no validation, 60 epochs;
- ``es50``: 10% validation, patience 50, at most 150 epochs.

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/scpram_stopping_selection.py --out OUT [--seeds 0,1]

Writes ``OUT/selection.csv`` (one row per candidate, seed and inner target; resumable) and prints the means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

BENCHMARK_TARGETS = ["CD14 Mono", "CD4 Naive T", "B"]
INNER_TARGETS = ["CD16 Mono", "CD4 Memory T", "CD8 T", "NK", "T activated"]
CANDIDATES = {
    "es25": {"validation_fraction": 0.1, "early_stopping": True, "patience": 25, "max_epochs": 100},
    "fixed100": {"validation_fraction": 0.0, "early_stopping": False, "max_epochs": 100},
    "fixed60": {"validation_fraction": 0.0, "early_stopping": False, "max_epochs": 60},
    "es50": {"validation_fraction": 0.1, "early_stopping": True, "patience": 50, "max_epochs": 150},
}
METRICS = [("r2_pearson_mean", "all"), ("r2_pearson_mean", "top100_degs"), ("pearson_delta", "top100_degs_ttest"),
           ("edistance", "pca")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    args = p.parse_args(argv)

    import time

    import pandas as pd

    import perturblab as plab
    from perturblab.io import read_table, write_table
    from perturblab.predict import evaluate, loco_split, make_model, prepare

    raw = plab.datasets.kang2018()
    held = raw.obs["cell_type"].isin(BENCHMARK_TARGETS) & (raw.obs["condition"] == "stimulated")
    adata = prepare(raw[~held.to_numpy()].copy(), n_top_genes=2000)
    path = args.out / "selection.csv"
    table = read_table(path) if path.exists() else pd.DataFrame(columns=["candidate", "seed", "target"])
    done = set(zip(table["candidate"], table["seed"].astype(int), table["target"]))
    for name in args.candidates.split(","):
        for seed in map(int, args.seeds.split(",")):
            for target in INNER_TARGETS:
                if (name, seed, target) in done:
                    continue
                split = loco_split(adata, target)
                t0 = time.perf_counter()
                model = make_model("scpram", split.train, random_state=seed, device="cpu")
                hist = model.train(**CANDIDATES[name])
                train_s = time.perf_counter() - t0
                tab = evaluate(model.predict(split.target_ctrl), split.target_stim, split.target_ctrl, n_bootstrap=0)
                v = tab.set_index(["metric", "gene_set"])["value"]
                row = {"candidate": name, "seed": seed, "target": target,
                       **{f"{m}[{g}]": float(v[(m, g)]) for m, g in METRICS}, "train_seconds": train_s,
                       "epochs": int(len(hist.history)), "best_epoch": int(hist.best_epoch)}
                table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
                write_table(path, table)
                print(row, flush=True)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.precision", 3):
        num = table.drop(columns=["target"]).apply(pd.to_numeric, errors="ignore")
        print(num.groupby("candidate").mean(numeric_only=True).drop(columns=["seed"]))
        print(table.assign(**{c: pd.to_numeric(table[c]) for c in table.columns if "[" in c})
              .pivot_table(index="target", columns="candidate", values="r2_pearson_mean[all]"))


if __name__ == "__main__":
    main()
