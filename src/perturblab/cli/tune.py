"""``perturblab tune``: Optuna hyperparameter search without leakage of the held-out cell type."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("tune")
def tune_cmd(
    out: Path = typer.Option(..., help="Output folder (study.db by default, tables, report.html)."),
    model: str = typer.Option("scgen", help="Model to tune (scgen, scpram, ...)."),
    target: str = typer.Option("CD14 Mono", help="Held-out cell type; its stimulated cells never reach the objective."),
    dataset: str = typer.Option(None, help="Dataset with control and stimulated cells (kang2018)."),
    input: Path = typer.Option(None, help="Or: an .h5ad file of raw counts."),
    n_trials: int = typer.Option(20, help="Finished trials the study must hold (a rerun resumes)."),
    storage: str = typer.Option(None, help="SQLAlchemy URL shared by workers/machines (default: out/study.db)."),
    study_name: str = typer.Option(None, help="Study name (default: MODEL-TARGET)."),
    metric: str = typer.Option("r2_pearson_mean", help="Score of an inner fold (a metric of evaluate)."),
    gene_set: str = typer.Option("all", help="Gene set of the metric."),
    n_inner: int = typer.Option(3, help="Inner held-out training cell types per trial."),
    max_epochs: int = typer.Option(100, help="Maximum training epochs per model."),
    n_top_genes: int = typer.Option(2000, help="HVGs, chosen without the target's stimulated cells."),
    n_workers: int = typer.Option(1, help="Local worker processes on the same study."),
    timeout: float = typer.Option(None, help="Seconds after which workers stop starting trials."),
    n_bootstrap: int = typer.Option(100, help="Bootstrap resamples of the final comparison."),
    seed: int = typer.Option(0, help="Seed of the sampler (TPE) and of every model."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    condition_key: str = typer.Option("condition", help="obs column of the condition."),
    cell_type_key: str = typer.Option("cell_type", help="obs column of the cell type."),
    control: str = typer.Option("control", help="Control value of the condition column."),
    stimulated: str = typer.Option("stimulated", help="Stimulated value of the condition column."),
) -> None:
    """Tune a model with Optuna (TPE, median pruning) by nested leave-one-cell-type-out, then compare
    the tuned model with the default model and the baselines on the held-out target."""
    from rich.console import Console

    from ..predict.tuning import prepare_without_target, tune
    from .benchmark import load_counts

    console = Console()
    if dataset is None and input is None:
        dataset = "kang2018"
    keys = dict(condition_key=condition_key, cell_type_key=cell_type_key, control=control, stimulated=stimulated)
    try:
        adata = prepare_without_target(load_counts(dataset, input), target, n_top_genes=n_top_genes, **keys)
        res = tune(adata, model, target, out_dir=out, n_trials=n_trials, storage=storage, study_name=study_name,
                   metric=metric, gene_set=gene_set, n_inner=n_inner, max_epochs=max_epochs, n_workers=n_workers,
                   timeout=timeout, random_state=seed, device=device, n_bootstrap=n_bootstrap, **keys)
    except (KeyError, ValueError) as err:
        console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from err
    console.print(f"best inner score {res.best_value:.4g} with {res.best_params}")
    console.print(f"{len(res.trials)} trials in {res.wall_time_s:.0f} s; wrote {out / 'report.html'}")
