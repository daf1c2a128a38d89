"""``perturblab tune``: Optuna hyperparameter search without leakage of the held-out cell type."""

from __future__ import annotations

from typing import Annotated

import typer

from . import app
from ._common import (
    Data,
    Device,
    Format,
    NBootstrap,
    NJobs,
    Out,
    Overwrite,
    Quiet,
    Resume,
    Seed,
    TableFormat,
    Verbose,
    choices,
    command,
    echo,
)
from ._predict_options import (
    CellTypeKey,
    ConditionKey,
    Control,
    ListModels,
    MinCells,
    NTopGenes,
    Stimulated,
)


@app.command("tune")
@command
def tune_cmd(
    out: Out,
    data: Data = "kang2018",
    model: Annotated[str, typer.Option("--model", "-m", help="Model to tune: scgen, scpram, scpram_first_cell, "
                                       "scpram_residual, or a registered model with a search_space (see "
                                       "--list-models).")] = "scgen",
    target: Annotated[str, typer.Option("--target", "-t", help="Held-out cell type; its stimulated cells never "
                                        "reach the objective.")] = "CD14 Mono",
    n_trials: Annotated[int, typer.Option(help="Finished trials the study must hold (a resumed study runs the "
                                          "missing ones).")] = 20,
    storage: Annotated[str, typer.Option(help="SQLAlchemy URL shared by workers/machines (default: OUT/study.db), "
                                         "e.g. postgresql://user:password@host/db.", show_default=False)] = "",
    study_name: Annotated[str, typer.Option(help="Study name (default: MODEL-TARGET).", show_default=False)] = "",
    metric: Annotated[str, typer.Option(help="Score of an inner fold (a metric of evaluate).")] = "r2_pearson_mean",
    gene_set: Annotated[str, typer.Option(help="Gene set of the metric.")] = "all",
    n_inner: Annotated[int, typer.Option(help="Inner held-out training cell types per trial.")] = 3,
    max_epochs: Annotated[int, typer.Option(help="Maximum training epochs per trial model.")] = 100,
    timeout: Annotated[float | None, typer.Option(help="Seconds after which workers stop starting trials.",
                                                  show_default=False)] = None,
    n_top_genes: NTopGenes = 2000,
    n_bootstrap: NBootstrap = 100,
    min_cells: MinCells = 30,
    cell_type_key: CellTypeKey = "cell_type",
    condition_key: ConditionKey = "condition",
    control: Control = "control",
    stimulated: Stimulated = "stimulated",
    seed: Seed = 0,
    device: Device = "auto",
    n_jobs: NJobs = 1,
    table_format: Format = TableFormat("parquet"),
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    list_models: ListModels = False,
) -> None:
    """Tune a model with Optuna (TPE, median pruning) by nested leave-one-cell-type-out, then compare the tuned
    model with the default model and the baselines on the held-out target.

    Example: perturblab tune --model scgen --target "CD14 Mono" --n-trials 20 --out results/tune
    """
    from ..predict.tuning import tune

    res = tune(data, model, target, out, n_trials=n_trials, storage=storage or None, study_name=study_name or None,
               metric=metric, gene_set=gene_set, n_inner=n_inner, min_cells=min_cells, max_epochs=max_epochs,
               n_jobs=n_jobs, timeout=timeout, random_state=seed, device=device, n_bootstrap=n_bootstrap,
               n_top_genes=n_top_genes, condition_key=condition_key, cell_type_key=cell_type_key, control=control,
               stimulated=stimulated, resume=resume, overwrite=overwrite, table_format=choices([table_format])[0])
    n_done = int((res.trials["state"].astype(str) == "COMPLETE").sum()) if len(res.trials) else 0
    echo(f"tune: {len(res.trials)} trials ({n_done} complete) in {res.wall_time_s:.0f} s; best inner {metric} "
         f"{res.best_value:.4g} with {res.best_params}; report {out / 'report.html'}")
