"""Mean and standard deviation over seeds of ``predict_compare.py`` runs (one ``--out`` folder per seed).

Usage::

    python benchmarks/predict_compare_seeds.py OUT_SEED0 OUT_SEED1 ... [--models scgen,pertpy_scgen[defaults]]

Prints, per target and model: the number of seeds, mean and sd of R2 (squared Pearson and
1 - SS_res/SS_tot, all genes and top-100 DEGs), E-distance and training seconds, and for each
seed the difference of every model's R2 to pertpy's with its defaults when both ran.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

COLUMNS = ["r2_pearson_all", "r2_pearson_top100", "r2_score_all", "r2_score_top100", "edistance", "train_seconds"]


def load(folders) -> pd.DataFrame:
    rows = []
    for folder in folders:
        result = json.loads((Path(folder) / "compare.json").read_text())
        rows += [{"seed": result["seed"], **{k: r.get(k, float("nan")) for k in ["target", "model", *COLUMNS]}}
                 for r in result["rows"] if r.get("source", "").startswith("measured")]
    table = pd.DataFrame(rows)
    if table.duplicated(["seed", "target", "model"]).any():
        raise ValueError("two folders hold the same seed; give one folder per seed")
    return table


def summarize(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and sd over seeds per (target, model); per-seed R2 differences to pertpy with its defaults."""
    summary = table.groupby(["target", "model"])[COLUMNS].agg(["mean", "std"])
    summary.insert(0, "n_seeds", table.groupby(["target", "model"]).size())
    ref = table[table["model"] == "pertpy_scgen[defaults]"].set_index(["seed", "target"])["r2_pearson_all"]
    wide = table.pivot_table(index=["seed", "target"], columns="model", values="r2_pearson_all")
    return summary, wide.sub(ref, axis=0).dropna(how="all")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--models", default=None, help="comma-separated models to show (default: all)")
    args = p.parse_args(argv)
    table = load(args.folders)
    if args.models:
        table = table[table["model"].isin(args.models.split(","))]
    summary, differences = summarize(table)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 3):
        print(summary.to_string())
        if len(differences):
            print("\nR2 (squared Pearson, all genes) minus pertpy's with its defaults, per seed:")
            print(differences.to_string())


if __name__ == "__main__":
    main()
