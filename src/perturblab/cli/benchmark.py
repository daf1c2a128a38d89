"""``perturblab benchmark``: models x targets x seeds x dataset variants, resumable, parallel."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

_DATASETS = ("kang2018",)


def load_counts(dataset: str | None, input_path: Path | None):
    """Raw-count AnnData of a perturblab dataset or of an ``.h5ad`` file (exactly one of the two)."""
    import anndata as ad

    import perturblab as plab

    if (dataset is None) == (input_path is None):
        raise typer.BadParameter("give exactly one of --dataset and --input")
    if input_path is not None:
        if not input_path.exists():
            raise typer.BadParameter(f"input file {input_path} does not exist")
        return ad.read_h5ad(input_path)
    if dataset not in _DATASETS:
        raise typer.BadParameter(f"unknown dataset {dataset!r}; available: {', '.join(_DATASETS)}")
    return getattr(plab.datasets, dataset)()


def per_model(names, **params) -> dict:
    """``{model: {param: value}}`` for the params that are set (not None)."""
    given = {k: v for k, v in params.items() if v is not None}
    return {m: dict(given) for m in names} if given else {}


@app.command("benchmark")
def benchmark_cmd(
    out: Path = typer.Option(..., help="Output folder; a rerun with the same settings resumes."),
    dataset: str = typer.Option(None, help="Dataset with control and stimulated cells (kang2018)."),
    input: Path = typer.Option(None, help="Or: an .h5ad file of raw counts."),
    model: list[str] = typer.Option(["scgen", "scpram"], help="Model to compare (repeat); baselines are added."),
    target: list[str] = typer.Option(None, help="Held-out cell type (repeat; default: all with --min-cells)."),
    seed: list[int] = typer.Option([0], help="Seed (repeat)."),
    variant: list[str] = typer.Option(["balanced", "unbalanced", "proportion_shift"], help="Dataset variant (repeat)."),
    fraction: float = typer.Option(0.2, help="unbalanced: share of stimulated training cells kept per cell type."),
    min_fraction: float = typer.Option(0.1, help="proportion_shift: lowest share drawn per cell type."),
    n_top_genes: int = typer.Option(2000, help="Highly variable genes kept."),
    max_epochs: int = typer.Option(None, help="Maximum training epochs of the VAEs (default: the model's)."),
    n_bootstrap: int = typer.Option(100, help="Bootstrap resamples for the confidence intervals."),
    min_cells: int = typer.Option(30, help="Minimum cells per condition of a default target."),
    n_jobs: int = typer.Option(1, help="Local parallel processes (joblib)."),
    scheduler: str = typer.Option(None, help="Dask distributed scheduler address (tcp://host:8786)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    condition_key: str = typer.Option("condition", help="obs column of the condition."),
    cell_type_key: str = typer.Option("cell_type", help="obs column of the cell type."),
    control: str = typer.Option("control", help="Control value of the condition column."),
    stimulated: str = typer.Option("stimulated", help="Stimulated value of the condition column."),
    overwrite: bool = typer.Option(False, help="Discard finished units of a different configuration."),
) -> None:
    """Benchmark perturbation-response models (leave-one-cell-type-out) and write a tidy table + report."""
    from rich.console import Console

    from ..predict import BASELINES, MODELS, prepare
    from ..predict.benchmark import run_benchmark
    from ..predict.benchmark_units import BenchmarkSettings
    from ..predict.models import VAEModel

    console = Console()
    if dataset is None and input is None:
        dataset = "kang2018"
    adata = prepare(load_counts(dataset, input), n_top_genes=n_top_genes, condition_key=condition_key,
                    cell_type_key=cell_type_key, control=control, stimulated=stimulated)
    vaes = [m for m in dict.fromkeys([*model, *BASELINES]) if m in MODELS and issubclass(MODELS[m][0], VAEModel)]
    settings = BenchmarkSettings(condition_key, cell_type_key, control, stimulated,
                                 train_params=per_model(vaes, max_epochs=max_epochs),
                                 evaluate_params={"n_bootstrap": n_bootstrap},
                                 variant_params={"fraction": fraction, "min_fraction": min_fraction},
                                 device=device, torch_threads=1 if n_jobs != 1 or scheduler else None)
    console.print(f"{adata.n_obs} cells x {adata.n_vars} genes; models {list(model)} + baselines {list(BASELINES)}")
    try:
        res = run_benchmark(adata, out, models=model, targets=target or None, seeds=seed, variants=variant,
                            settings=settings, n_jobs=n_jobs, scheduler=scheduler, overwrite=overwrite,
                            min_cells=min_cells)
    except (KeyError, ValueError) as err:
        console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from err
    console.print(f"{len(res.units)} units ({res.n_run} run now) in {res.wall_time_s:.0f} s; "
                  f"wrote {res.out_dir / 'benchmark.parquet'} and {res.out_dir / 'report.html'}")
