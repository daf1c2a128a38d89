"""``perturblab benchmark``: models x targets x seeds x dataset variants, resumable, parallel."""

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
    Scheduler,
    TableFormat,
    Verbose,
    choices,
    command,
    echo,
    str_enum,
)
from ._predict_options import (
    CellTypeKey,
    ConditionKey,
    Control,
    ListModels,
    MaxEpochs,
    MinCells,
    Model,
    NTopGenes,
    ProtocolName,
    ProtocolOption,
    Stimulated,
    Target,
    settings,
)

Variant = str_enum("Variant", ("balanced", "unbalanced", "proportion_shift"))


@app.command("benchmark")
@command
def benchmark_cmd(
    out: Out,
    data: Data = "kang2018",
    model: Model = ["scgen", "scpram"],
    target: Target = ["all"],
    seed: Annotated[list[int], typer.Option("--seed", help="Seed (repeat).")] = [0],
    variant: Annotated[list[Variant], typer.Option(  # type: ignore[valid-type]
        "--variant", help="Dataset variant (repeat).")] = list(Variant),
    fraction: Annotated[float, typer.Option(help="unbalanced: share of stimulated training cells kept per cell "
                                            "type, in (0, 1].")] = 0.2,
    min_fraction: Annotated[float, typer.Option(help="proportion_shift: lowest share drawn per cell type, "
                                                "in (0, 1].")] = 0.1,
    protocol: ProtocolOption = ProtocolName("perturblab"),
    n_top_genes: NTopGenes = 2000,
    max_epochs: MaxEpochs = None,
    n_bootstrap: NBootstrap = 100,
    min_cells: MinCells = 30,
    cell_type_key: CellTypeKey = "cell_type",
    condition_key: ConditionKey = "condition",
    control: Control = "control",
    stimulated: Stimulated = "stimulated",
    device: Device = "auto",
    n_jobs: NJobs = 1,
    scheduler: Scheduler = "",
    table_format: Format = TableFormat("parquet"),
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    list_models: ListModels = False,
) -> None:
    """Benchmark perturbation-response models (leave-one-cell-type-out) and write a tidy table and a report.

    Example: perturblab benchmark --out results/bench --model scgen --model scpram --seed 0 --seed 1
    """
    from ..predict import BASELINES
    from ..predict.benchmark import run_benchmark

    cfg = settings(cell_type_key=cell_type_key, condition_key=condition_key, control=control, stimulated=stimulated,
                   n_top_genes=n_top_genes, max_epochs=max_epochs, n_bootstrap=n_bootstrap, min_cells=min_cells,
                   device=device, parallel=n_jobs != 1 or bool(scheduler), models=[*model, *BASELINES],
                   variant_params={"fraction": fraction, "min_fraction": min_fraction},
                   protocol=choices([protocol])[0])
    res = run_benchmark(data, out, models=model, targets=target, seeds=seed, variants=choices(variant),
                        settings=cfg, n_jobs=n_jobs, scheduler=scheduler or None, resume=resume, overwrite=overwrite,
                        table_format=choices([table_format])[0])
    r = res.ranking
    r = r[(r["metric"] == "r2_pearson_mean") & (r["gene_set"] == "all")]
    best = r[r["model"] != "ceiling"].groupby("variant", sort=False).head(1)
    ceil = r[r["model"] == "ceiling"].set_index("variant")["mean"].to_dict()
    found = "; ".join(f"{row.variant}: best R2 {row.mean:.3f} by {row.model}"
                      + (f" (ceiling {ceil[row.variant]:.3f})" if row.variant in ceil else "")
                      for row in best.itertuples())
    echo(f"benchmark of {res.data.get('file', data)} (protocol {cfg.protocol}): {len(res.units)} units "
         f"({res.n_run} run now); {found}; report {out / 'report.html'}")
