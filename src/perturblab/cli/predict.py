"""``perturblab predict``: leave-one-cell-type-out prediction, evaluation and report."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

_DATASETS = ("kang2018",)


@app.command("predict")
def predict_cmd(
    dataset: str = typer.Option("kang2018", help="Dataset with control and stimulated cells (kang2018)."),
    model: str = typer.Option("scgen", help="scgen, scpram, baselines, or a comma-separated list of model names."),
    target: str = typer.Option("CD14 Mono", help='Cell type to hold out, or "all" (>= min-cells per condition).'),
    out: Path = typer.Option(..., help="Output folder (tables, JSON, report.html); a rerun resumes."),
    n_top_genes: int = typer.Option(2000, help="Highly variable genes kept."),
    max_epochs: int = typer.Option(None, help="Maximum training epochs (default: the model's)."),
    n_bootstrap: int = typer.Option(100, help="Bootstrap resamples for the confidence intervals."),
    min_cells: int = typer.Option(30, help='Minimum cells per condition of a target for --target all.'),
    seed: int = typer.Option(0, help="Random seed (models, splits, bootstraps)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    """Train, predict and evaluate perturbation-response models; baselines are always run beside them."""
    from rich.console import Console

    import perturblab as plab

    from .._io import write_json, write_table
    from ..predict import BASELINES, MODELS, loco_targets, prepare
    from ..predict.report import build_report, summary_table
    from ..predict.run import run_loco

    console = Console()
    if dataset not in _DATASETS:
        raise typer.BadParameter(f"unknown dataset {dataset!r}; available: {', '.join(_DATASETS)}")
    requested = [] if model == "baselines" else [m.strip() for m in model.split(",") if m.strip()]
    unknown = [m for m in requested if m not in MODELS]
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {unknown}; choose from baselines, {', '.join(MODELS)}")
    names = list(dict.fromkeys([*requested, *BASELINES]))
    adata = prepare(getattr(plab.datasets, dataset)(), n_top_genes=n_top_genes)
    targets = loco_targets(adata, min_cells=min_cells) if target == "all" else [target]
    console.print(f"[bold]{dataset}[/]: {adata.n_obs} cells x {adata.n_vars} genes; targets {targets}; "
                  f"models {names}")
    train_kwargs = {m: {"max_epochs": max_epochs} for m in names} if max_epochs else {}
    result = run_loco(adata, names, targets, train_kwargs=train_kwargs, evaluate_kwargs={"n_bootstrap": n_bootstrap},
                      random_state=seed, device=device, out_dir=out, log=console.print)
    write_table(out / "metrics.parquet", result.metrics)
    write_table(out / "metrics.csv", result.metrics)
    write_table(out / "training.csv", result.training)
    summary = summary_table(result.metrics, result.training)
    write_table(out / "summary.csv", summary)
    write_json(out / "summary.json", {"dataset": dataset, "targets": targets, "models": names, "seed": seed,
                                      "n_top_genes": n_top_genes, "n_bootstrap": n_bootstrap,
                                      "rows": summary.to_dict(orient="records")})
    build_report(result, title=f"perturblab predict: {dataset}").write(out / "report.html")
    console.print(f"wrote {out / 'report.html'}, metrics.parquet/csv, training.csv, summary.json")
