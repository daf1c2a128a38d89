"""Outputs of a tuning run: tables, best parameters (JSON) and the HTML report (optimisation
history, fANOVA parameter importances, best parameters, final test metrics of the tuned model
next to the default model and the baselines).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_json, write_table
from ..report import Report
from . import pl

__all__ = ["tuning_report", "write_tuning_outputs", "FINAL_METRICS"]

#: Rows of the final comparison shown in the report (all rows are in ``final_metrics.csv``).
FINAL_METRICS = (("r2_pearson_mean", "all"), ("r2_pearson_mean", "top100_degs"), ("r2_score_mean", "all"),
                 ("edistance", "pca"), ("mse_mean", "all"), ("pearson_delta", "all"),
                 ("pearson_delta", "top100_degs_ttest"), ("overlap_at_N", "pdex_fdr0.05"),
                 ("weighted_mse", "deg_weights[vsrest]"))


def tuning_report(result) -> Report:
    """Build the report of a :class:`~perturblab.predict.tuning.TuningResult`."""
    study = result.study
    cfg = study.user_attrs.get("perturblab", {})
    rep = Report(f"Tuning {cfg.get('model', '')} for {cfg.get('target', '')}",
                 subtitle=f"study {result.study_name}; {len(result.trials)} trials; {result.wall_time_s:.0f} s")
    sec = rep.section("Set-up", id="setup")
    sec.text("The objective never sees the held-out target's stimulated cells: each trial is scored by a nested "
             "leave-one-cell-type-out over the training cell types (inner targets below), mean of "
             f"{cfg.get('metric')} ({cfg.get('gene_set')}). Pruning: median rule on the validation loss after each "
             "epoch. The target's stimulated cells are used only for the final comparison.")
    sec.items([f"inner targets: {', '.join(result.inner_targets)}",
               *(f"{k}: {v}" for k, v in cfg.items() if k not in ("inner", "data"))])

    sec = rep.section("Optimisation history", id="history")
    states = result.trials["state"].astype(str).value_counts().to_dict() if len(result.trials) else {}
    sec.text("Trials by state: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    if len(result.trials):
        sec.figure(pl.tuning_history(result.trials, direction=study.direction.name.lower()).figure,
                   caption="score of each trial")

    sec = rep.section("Parameter importances", id="importances")
    if result.importances.empty:
        sec.text("Not computable (fewer than two complete trials, or no parameter varied).")
    else:
        sec.figure(pl.param_importances(result.importances).figure, caption="fANOVA (optuna.importance), seeded")
        sec.table(result.importances)

    sec = rep.section("Best parameters", id="best")
    sec.text(f"Best inner-LOCO score: {result.best_value:.4g}" if np.isfinite(result.best_value)
             else "No trial completed (all pruned or failed): no best score.")
    sec.table(pd.DataFrame({"param": list(result.best_params), "value": list(map(str, result.best_params.values()))}))

    sec = rep.section("Held-out target: tuned vs default vs baselines", id="final")
    if result.final.empty:
        sec.text("Not evaluated (final=False, or no trial completed).")
    else:
        from .report import format_value

        sec.text("Each model trained on every cell except the target's stimulated cells, evaluated against them. "
                 "The default model is trained with its own defaults (not the trials' epochs), the baselines are "
                 "not trained. Brackets: 95% resampling interval (method in ci_method), shown only where it is "
                 "meaningful, else the reason; bias = mean of the resamples minus the estimate.")
        keep = np.zeros(len(result.final), dtype=bool)
        for metric, gset in FINAL_METRICS:
            keep |= (result.final["metric"] == metric).to_numpy() & (result.final["gene_set"] == gset).to_numpy()
        shown = result.final.loc[keep].copy()
        shown["value [95% CI]"] = [format_value(r) for _, r in shown.iterrows()]
        cols = ["config", "model", "metric", "gene_set", "value [95% CI]", "ci_method", "bias", "train_seconds"]
        sec.table(shown[[c for c in cols if c in shown]])
    return rep


def write_tuning_outputs(result, out_dir: Path, report: bool = True, table_format: str = "parquet") -> None:
    """Write ``trials``, ``importances``, ``final_metrics`` (tables in ``table_format``), ``best_params.json`` and
    ``report.html`` into ``out_dir`` (each atomically)."""
    from .tuning_storage import safe_url

    trials = result.trials.copy()
    for col in trials.columns:  # durations / timestamps as text for CSV round trips
        if str(trials[col].dtype).startswith(("timedelta", "datetime")):
            trials[col] = trials[col].astype(str)
    write_table(out_dir / f"trials.{table_format}", trials)
    write_table(out_dir / f"importances.{table_format}", result.importances)
    write_table(out_dir / f"final_metrics.{table_format}", result.final)
    write_json(out_dir / "best_params.json", {"study_name": result.study_name, "storage": safe_url(result.storage),
                                              "best_value": result.best_value, "best_params": result.best_params,
                                              "inner_targets": result.inner_targets,
                                              "wall_time_s": result.wall_time_s})
    if report:
        tuning_report(result).write(out_dir / "report.html")
