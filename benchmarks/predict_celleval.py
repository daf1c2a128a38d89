"""perturblab's metrics beside cell-eval's (Arc Institute), run on the same predictions of every Kang target.

cell-eval is installed from PyPI into its own virtual environment (``--venv``; Python >= 3.11 is needed:
the first of this interpreter, /usr/bin/python3.12, ~/.pyenv 3.12 that qualifies) and run there through
its command line; perturblab never imports it. Predictions: the baselines (default, fast), ``--with-scgen``
adds scGen. Data: Kang 2018 subset, ``prepare(n_top_genes)``, every cell type with >= ``--min-cells``
cells per condition held out in turn (leave-one-cell-type-out).

Per model, two files as cell-eval expects them: the real cells (stimulated and control of every target)
and the prediction (the predicted cells as "stimulated" plus the SAME real control cells, since cell-eval
takes the prediction's deltas from the controls inside the prediction file). cell-eval runs once split by
cell type (``--celltype-col``: each target against its own controls, the per-target metrics) and once on
all targets together (targets as perturbations against the pooled controls: discrimination scores).

Known cell-eval behaviours, handled and reported:

- scale detection (``utils.guess_is_lognorm``): values without a fractional part are taken for counts and
  re-normalised; a negative value is an error ("Invalid scale: min value ... is negative"). Several
  predictions (mean shift, PCA shift, trainMean, linear, scGen) hold negative values: one such file is
  passed unchanged to show the error, then every prediction is clipped at 0 for BOTH tools (the share of
  clipped values is reported).
- controls inside the prediction file: see above.
- with one perturbation per cell-type run, cell-eval's discrimination scores are 1 by construction and its
  ``pearson_edistance`` / ``de_spearman_sig`` are undefined; they are compared on the combined run.

Prints one JSON document: per (model, target, metric) both values, and per metric the number of equal
pairs (``|diff| <= 1e-6 + 1e-4 |cell-eval|``), the largest difference and its explanation.

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/predict_celleval.py --out /tmp/predict_celleval \
        [--venv DIR] [--with-scgen] [--n-top-genes 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CELL_EVAL = "cell-eval==0.8.1"
#: perturblab (metric, gene_set) -> cell-eval column of results.csv, for the per-target run.
PAIRS = {
    "pearson_delta": ("pearson_delta", "all"), "mse": ("mse_mean", "all"), "mae": ("mae", "all"),
    "mse_delta": ("mse_delta", "all"), "mae_delta": ("mae_delta", "all"),
    **{f"overlap_at_{n}": (f"overlap_at_{n}", "pdex_fdr0.05") for n in ("N", "50", "100", "200")},
    **{f"precision_at_{n}": (f"precision_at_{n}", "pdex_fdr0.05") for n in ("N", "50", "100", "200")},
    **{m: (m, "pdex_fdr0.05") for m in ("de_direction_match", "de_spearman_lfc_sig", "de_sig_genes_recall",
                                        "de_nsig_counts_real", "de_nsig_counts_pred", "pr_auc", "roc_auc")},
}
EXPLAIN = {
    "tie": "a tie of |log2FC| crosses the cut N of the real or predicted top-N list (mostly |log2FC| = inf: "
           "genes with a one-sided zero); cell-eval orders tied genes arbitrarily (polars' struct rank, an "
           "unstable sort), perturblab by p-value then gene order: the two lists hold different tied genes",
    "other": "not explained by a tie at the cut: see the DE-table comparison",
}
_TOP = {f"overlap_at_{n}": ("real", None if n == "N" else int(n)) for n in ("N", "50", "100", "200")}
_TOP.update({f"precision_at_{n}": ("pred", None if n == "N" else int(n)) for n in ("N", "50", "100", "200")})


def tie_at_cut(real, pred, metric: str, fdr: float = 0.05) -> bool:
    """True when a tie of |log2FC| crosses the cut k of cell-eval's top-k lists for ``metric``."""
    import numpy as np

    on, n = _TOP[metric]
    lists = {side: de.ranked_significant(fdr) for side, de in (("real", real), ("pred", pred))}
    size = lists[on].size
    k = min(n or size, size)
    for de, ranked in ((real, lists["real"]), (pred, lists["pred"])):
        vals = np.abs(de.log2_fold_change[ranked])
        if 0 < k < vals.size and vals[k - 1] == vals[k]:
            return True
    return False


def compare_de_tables(ours, path) -> dict:
    """perturblab's DE of one comparison against cell-eval's CSV (pdex output) of the same comparison."""
    import numpy as np
    import pandas as pd

    ce = pd.read_csv(path).set_index("feature")
    lfc_ce = ce["log2_fold_change"].to_numpy(float)
    fin = np.isfinite(lfc_ce) & np.isfinite(ours.log2_fold_change)
    return {"genes": len(ce), "same_infinite_fold_changes": bool(np.array_equal(np.isinf(lfc_ce),
                                                                                 np.isinf(ours.log2_fold_change))),
            "max_abs_diff_log2fc_finite": float(np.max(np.abs(lfc_ce[fin] - ours.log2_fold_change[fin]))),
            "max_abs_diff_fdr": float(np.max(np.abs(ce["fdr"].to_numpy(float) - ours.fdr))),
            "same_significant_genes": bool(np.array_equal(ce["fdr"].to_numpy(float) < 0.05, ours.fdr < 0.05))}


def find_python(explicit: str | None) -> str:
    """An interpreter >= 3.11 for cell-eval's venv."""
    pyenv = sorted(map(str, Path.home().glob(".pyenv/versions/3.1[2-9]*/bin/python")))
    candidates = [explicit] if explicit else [sys.executable, "/usr/bin/python3.12", "/usr/bin/python3.11", *pyenv]
    for py in candidates:
        if py and Path(py).exists():
            r = subprocess.run([py, "-c", "import sys; print(sys.version_info >= (3, 11))"], check=False,
                               capture_output=True, text=True)
            if r.stdout.strip() == "True":
                return py
    raise SystemExit("no Python >= 3.11 found for cell-eval; pass --python")


def ensure_venv(venv: Path, python: str, spec: str) -> Path:
    exe = venv / "bin" / "cell-eval"
    if not exe.exists():
        print(f"creating {venv} with {python} and pip-installing {spec}", file=sys.stderr, flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", spec], check=False,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"pip install {spec} failed: {r.stderr[-3000:]}")
    return exe


def _pack(parts, var):
    import anndata as ad
    import numpy as np

    blocks = []
    for X, obs in parts:
        b = ad.AnnData(np.asarray(X, dtype=np.float32), var=var.copy())
        for k, v in obs.items():
            b.obs[k] = v
        blocks.append(b)
    out = ad.concat(blocks)
    out.obs_names = [f"cell{i}" for i in range(out.n_obs)]
    out.var = var.copy()
    return out


def run_cell_eval(exe: Path, pred: Path, real: Path, outdir: Path, pert_col: str, threads: int,
                  celltype: bool, profile: str = "full") -> subprocess.CompletedProcess:
    cmd = [str(exe), "run", "-ap", str(pred), "-ar", str(real), "--control-pert", "control", "--pert-col", pert_col,
           "--profile", profile, "--num-threads", str(threads), "-o", str(outdir)]
    if celltype:
        cmd += ["--celltype-col", "cell_type"]
    else:
        cmd += ["--skip-metrics", "clustering_agreement,pearson_edistance"]
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)


def equal(a: float, b: float) -> bool:
    import math

    if math.isnan(a) and math.isnan(b):
        return True
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-6 + 1e-4 * abs(b)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/predict_celleval"))
    p.add_argument("--venv", type=Path, default=None, help="cell-eval's venv (default: OUT/celleval-venv)")
    p.add_argument("--python", default=None, help="interpreter >= 3.11 for the venv")
    p.add_argument("--cell-eval", default=CELL_EVAL, help="pip requirement of cell-eval")
    p.add_argument("--n-top-genes", type=int, default=2000)
    p.add_argument("--min-cells", type=int, default=30)
    p.add_argument("--with-scgen", action="store_true", help="also predict with scGen (trained per target)")
    p.add_argument("--scgen-epochs", type=int, default=None, help="scGen's max epochs (default: its own, 60)")
    p.add_argument("--targets", default=None, help="comma-separated targets (default: all with --min-cells)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rerun", action="store_true", help="rerun cell-eval even where this --out holds its results")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    exe = ensure_venv(args.venv or args.out / "celleval-venv", find_python(args.python), args.cell_eval)
    version = subprocess.run([str(exe.parent / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('cell-eval'), m.version('pdex'))"],
                             check=False, capture_output=True, text=True).stdout.split()

    import numpy as np
    import pandas as pd

    import perturblab as plab
    from perturblab import io
    from perturblab.predict import (
        BASELINES,
        evaluate,
        loco_split,
        loco_targets,
        make_model,
        prepare,
    )
    from perturblab.predict import de as DE
    from perturblab.predict.metrics_targets import discrimination_score

    adata = prepare(plab.datasets.kang2018(), n_top_genes=args.n_top_genes)
    targets = loco_targets(adata, min_cells=args.min_cells)
    if args.targets:
        targets = [t for t in targets if t in args.targets.split(",")]
    models = list(BASELINES) + (["scgen"] if args.with_scgen else [])
    splits = {t: loco_split(adata, t) for t in targets}
    var = adata.var[[]].copy()
    real = _pack([(s.target_stim.X, {"condition": "stimulated", "cell_type": t, "target": t}) for t, s in
                  splits.items()] + [(s.target_ctrl.X, {"condition": "control", "cell_type": t, "target": "control"})
                                     for t, s in splits.items()], var)
    real_path = io.write_h5ad(args.out / "real.h5ad", real)

    rows, notes, clipped, disc, de_cmp = [], {}, {}, {}, {}
    t_ours = t_ce = 0.0
    for model in models:
        preds, neg = {}, 0
        for t, s in splits.items():
            m = make_model(model, s.train, random_state=0)
            if model == "scgen":
                m.train(progress=False, max_epochs=args.scgen_epochs)
            pr = m.predict(s.target_ctrl)
            neg += int((pr.X < 0).sum())
            preds[t] = pr
        n_values = sum(pr.X.size for pr in preds.values())
        clipped[model] = round(neg / n_values, 5)
        raw = _pack([(preds[t].X, {"condition": "stimulated", "cell_type": t, "target": t}) for t in targets]
                    + [(splits[t].target_ctrl.X, {"condition": "control", "cell_type": t, "target": "control"})
                       for t in targets], var)
        if neg and "negative_values" not in notes and (args.rerun or not (args.out / f"ce_{model}_unclipped").exists()
                                                        or not (args.out / "negative_note.json").exists()):
            path = io.write_h5ad(args.out / f"pred_{model}_unclipped.h5ad", raw)
            r = run_cell_eval(exe, path, real_path, args.out / f"ce_{model}_unclipped", "condition", args.threads,
                              True)
            err = [ln for ln in (r.stderr + r.stdout).splitlines() if "Invalid scale" in ln]
            notes["negative_values"] = {"model": model, "share_negative": clipped[model], "exit_code": r.returncode,
                                        "cell_eval_says": err[-1].strip() if err else (r.stderr or r.stdout)[-500:]}
            io.write_json(args.out / "negative_note.json", notes["negative_values"])
        elif neg and "negative_values" not in notes:
            notes["negative_values"] = io.read_json(args.out / "negative_note.json")
        for pr in preds.values():
            pr.X = np.clip(pr.X, 0, None)
        pred = _pack([(preds[t].X, {"condition": "stimulated", "cell_type": t, "target": t}) for t in targets]
                     + [(splits[t].target_ctrl.X, {"condition": "control", "cell_type": t, "target": "control"})
                        for t in targets], var)
        pred_path = io.write_h5ad(args.out / f"pred_{model}.h5ad", pred)
        t0 = time.perf_counter()
        done = (args.out / f"ce_{model}" / f"{targets[-1]}_results.csv").exists() and \
            (args.out / f"ce_{model}_all" / "results.csv").exists()
        if args.rerun or not done:  # predictions are seeded: earlier cell-eval results of this --out are reused
            r = run_cell_eval(exe, pred_path, real_path, args.out / f"ce_{model}", "condition", args.threads, True)
            r2 = run_cell_eval(exe, pred_path, real_path, args.out / f"ce_{model}_all", "target", args.threads,
                               False, profile="anndata")
            if r.returncode != 0 or r2.returncode != 0:
                raise SystemExit(f"cell-eval failed on {model}: {(r.stderr + r2.stderr)[-3000:]}")
        t_ce += time.perf_counter() - t0
        t0 = time.perf_counter()
        de_cmp[model] = []
        for t in targets:
            ours = evaluate(preds[t], splits[t].target_stim, splits[t].target_ctrl, n_bootstrap=0)
            ours = ours.set_index(["metric", "gene_set"])["value"]
            ce = pd.read_csv(args.out / f"ce_{model}" / f"{t}_results.csv").set_index("perturbation").loc["stimulated"]
            S, C = splits[t].target_stim.X, splits[t].target_ctrl.X
            de_real, de_pred = DE.differential_expression(S, C), DE.differential_expression(preds[t].X, C)
            de_cmp[model] += [compare_de_tables(de_real, args.out / f"ce_{model}" / f"{t}_real_de.csv"),
                              compare_de_tables(de_pred, args.out / f"ce_{model}" / f"{t}_pred_de.csv")]
            for ce_name, key in PAIRS.items():
                a, b = float(ours[key]), float(ce[ce_name])
                same = equal(a, b)
                why = "" if same else ("tie" if ce_name in _TOP and tie_at_cut(de_real, de_pred, ce_name)
                                       else "other")
                rows.append({"model": model, "target": t, "metric": ce_name, "perturblab": a, "cell_eval": b,
                             "diff": a - b, "equal": same, "why": why})
        # discrimination over targets: cell-eval's combined run uses the pooled controls for every target
        ce_all = pd.read_csv(args.out / f"ce_{model}_all" / "results.csv").set_index("perturbation")
        pooled = np.vstack([splits[t].target_ctrl.X for t in targets]).mean(0)
        pm = np.vstack([preds[t].X.mean(0) for t in targets]) - pooled
        rm = np.vstack([splits[t].target_stim.X.mean(0) for t in targets]) - pooled
        own_p = np.vstack([preds[t].X.mean(0) - splits[t].target_ctrl.X.mean(0) for t in targets])
        own_r = np.vstack([splits[t].target_stim.X.mean(0) - splits[t].target_ctrl.X.mean(0) for t in targets])
        disc[model] = {}
        for d in ("l1", "l2", "cosine"):
            ours_pooled = discrimination_score(pm, rm, d)
            ce_vals = ce_all.loc[targets, f"discrimination_score_{d}"].to_numpy(float)
            for t, a, b in zip(targets, ours_pooled, ce_vals, strict=True):
                rows.append({"model": model, "target": t, "metric": f"discrimination_score_{d}[pooled control]",
                             "perturblab": float(a), "cell_eval": float(b), "diff": float(a - b),
                             "equal": equal(float(a), float(b)), "why": ""})
            disc[model][d] = {"pooled_control_mean": float(ours_pooled.mean()), "cell_eval_mean": float(ce_vals.mean()),
                              "own_control_mean": float(discrimination_score(own_p, own_r, d).mean())}
        t_ours += time.perf_counter() - t0

    table = pd.DataFrame(rows)
    io.write_table(args.out / "side_by_side.csv", table)
    summary = {}
    for metric, g in table.groupby("metric", sort=False):
        bad = g[~g["equal"]]
        both_nan = int((g["perturblab"].isna() & g["cell_eval"].isna()).sum())
        entry = {"pairs": len(g), "equal": int(g["equal"].sum()), "both_nan": both_nan,
                 "max_abs_diff": float(np.nanmax(np.abs(g["diff"]))) if g["diff"].notna().any() else None}
        if len(bad):
            entry["differing"] = bad[["model", "target", "perturblab", "cell_eval", "why"]].round(6).to_dict(
                "records")[:6]
            entry["why"] = {w: f"{int((bad['why'] == w).sum())} pairs: {EXPLAIN[w]}" for w in sorted(set(bad["why"]))}
        summary[metric] = entry
    doc = {"cell_eval": version, "data": {"dataset": "kang2018 subset", "n_top_genes": args.n_top_genes,
                                          "targets": targets, "min_cells": args.min_cells},
           "models": models, "share_of_prediction_values_clipped_at_0": clipped, "notes": notes,
           "seconds": {"cell_eval": round(t_ce, 1), "perturblab": round(t_ours, 1)},
           "summary": summary, "discrimination_means": disc,
           "de_tables": {m: {"comparisons": len(v),
                             "all_same_significant_genes": all(x["same_significant_genes"] for x in v),
                             "all_same_infinite_fold_changes": all(x["same_infinite_fold_changes"] for x in v),
                             "max_abs_diff_log2fc_finite": max(x["max_abs_diff_log2fc_finite"] for x in v),
                             "max_abs_diff_fdr": max(x["max_abs_diff_fdr"] for x in v)} for m, v in de_cmp.items()},
           "all_differences_explained": bool((table.loc[~table["equal"], "why"] == "tie").all()),
           "discrimination_note": "cell-eval's combined run takes every target's delta from the pooled controls; "
                                  "perturblab's evaluate_targets takes each cell type's delta from its own "
                                  "controls (own_control_mean): with cell types as targets, pooled controls let "
                                  "the score recognise the cell type that every prediction inherits from its input",
           "all_pairs_equal": bool(table["equal"].all())}
    io.write_json(args.out / "predict_celleval.json", doc)
    print(json.dumps(doc, indent=1, default=str))


if __name__ == "__main__":
    main()
