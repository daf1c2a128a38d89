"""Interpretability analyses on simulated cells from a planted GRN (ground truth known).

Reports, over several simulator seeds: recovery of planted edges by |Spearman| (AUROC/AUPRC/EPR/F1),
CSSI (oracle state labels and Leiden-free random strata) vs pooled on state-specific edges, calibration
of the label-shuffle and curveball nulls (KS test of null p-values on random scores), DE-target recovery
per knock-out, and optionally the full pipeline with perturblab's own model trained on the simulated
control cells (``--with-model``; use ``--device cuda`` on a GPU).

Usage::

    PERTURBLAB_DATA_DIR=... python benchmarks/interpret_simulation.py --seeds 0 1 2 --out bench_out/interpret_sim.json
    python benchmarks/interpret_simulation.py --seeds 0 --with-model --epochs 20 --device cuda --out bench_out/sim.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from perturblab.interpret import (
    EdgeScores,
    Reference,
    correlation_scores,
    cssi_null_stress,
    de_targets,
    degree_preserving_null,
    label_shuffle_null,
    log_normalise,
    reference_recovery,
    simulate_grn,
)
from perturblab.io import write_json


def calibration(n_rep: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    genes = np.array([f"g{i}" for i in range(30)])
    tfs = list(genes[:6])
    p_lab, p_deg = [], []
    for rep in range(n_rep):
        S = EdgeScores("random", rng.random((30, 30)), genes, "attention")
        e = pd.DataFrame({"source": rng.choice(tfs, 40), "target": rng.choice(genes, 40)})
        ref = Reference("random", e[e["source"] != e["target"]])
        p_lab.append(label_shuffle_null(S, ref, tfs, n_null=199, random_state=rep)["p_empirical"])
        p_deg.append(degree_preserving_null(S, ref, tfs, n_null=99, random_state=rep)["p_empirical"])
    return {"n_replicates": n_rep, "label_shuffle_ks_p": float(stats.kstest(p_lab, "uniform").pvalue),
            "curveball_ks_p": float(stats.kstest(p_deg, "uniform").pvalue),
            "label_shuffle_frac_p_below_0.05": float(np.mean(np.array(p_lab) < 0.05)),
            "curveball_frac_p_below_0.05": float(np.mean(np.array(p_deg) < 0.05))}


def one_seed(seed: int, n_genes: int, n_states: int) -> dict:
    sim = simulate_grn(n_genes=n_genes, n_tfs=max(4, n_genes // 6), n_states=n_states, random_state=seed)
    a = sim.adata
    ctrl = a[a.obs["perturbation"] == "control"]
    X = log_normalise(ctrl.X)
    genes = a.var_names.to_numpy()
    corr = correlation_scores(X, genes)
    refs = [Reference("global", sim.reference("global")), Reference("state-specific", sim.reference("state_specific"))]
    rec = reference_recovery([corr], refs, tfs=sim.tfs)
    stress = cssi_null_stress(X, genes, refs[1], ctrl.obs["state"].to_numpy(), tfs=sim.tfs, n_repeats=5)
    cssi = stress.groupby(["strata", "score"])[["auroc", "auprc", "topk_f1"]].mean().reset_index()
    de = de_targets(a)
    dr = []
    for g in sim.knockouts:
        called = set(de[(de["perturbation"] == g) & de["is_target"]]["gene"])
        truth = sim.downstream(g)
        dr.append({"knockout": g, "n_true": len(truth), "n_called": len(called),
                   "recall": len(called & truth) / max(len(truth), 1),
                   "precision": len(called & truth) / max(len(called), 1)})
    return {"seed": seed, "spearman_recovery": rec.to_dict("records"), "cssi": cssi.to_dict("records"), "de": dr}


def with_model(seed: int, epochs: int, device: str, out_dir: str) -> dict:
    from perturblab.interpret import InterpretConfig, OwnGeneTransformer, run_interpretation, train_masked_expression

    sim = simulate_grn(random_state=seed)
    a = sim.adata
    ctrl = a[a.obs["perturbation"] == "control"]
    model = OwnGeneTransformer(a.var_names, d_model=32, n_heads=4, n_layers=2, random_state=seed, device=device)
    t = time.time()
    hist = train_masked_expression(model, ctrl, epochs=epochs, random_state=seed, progress=False).history
    train_s = time.time() - t
    refs = {"global": Reference("global", sim.reference("global")),
            "state-specific": Reference("state-specific", sim.reference("state_specific"))}
    cfg = InterpretConfig(n_cells=ctrl.n_obs, strata_key="state", device=device, ablation_ks=(1, 2, 4),
                          random_state=seed)
    t = time.time()
    res = run_interpretation(model, a, out_dir, cfg, references=refs, tfs=sim.tfs)
    return {"train_seconds": train_s, "final_train_loss": float(hist["train_loss"].iloc[-1]),
            "pipeline_seconds": time.time() - t, "summary": res.summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-genes", type=int, default=60)
    ap.add_argument("--n-states", type=int, default=3)
    ap.add_argument("--calibration-replicates", type=int, default=100)
    ap.add_argument("--with-model", action="store_true")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model-out", default="bench_out/interpret_sim_run")
    ap.add_argument("--out", default="bench_out/interpret_simulation.json")
    args = ap.parse_args()
    t = time.time()
    result = {"seeds": [one_seed(s, args.n_genes, args.n_states) for s in args.seeds],
              "calibration": calibration(args.calibration_replicates, args.seeds[0])}
    if args.with_model:
        result["own_model"] = with_model(args.seeds[0], args.epochs, args.device, args.model_out)
    result["seconds"] = time.time() - t
    write_json(args.out, result)
    for s in result["seeds"]:
        r = {x["reference"]: round(x["auroc"], 3) for x in s["spearman_recovery"]}
        c = {f"{x['strata']}/{x['score']}": round(x["auroc"], 3) for x in s["cssi"]}
        print(f"seed {s['seed']}: spearman AUROC {r}; state-specific edges {c}")
    print("calibration:", result["calibration"])
    if args.with_model:
        print("own model verdict:", result["own_model"]["summary"]["verdict"])
    print(f"written {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
