"""``perturblab predict``: leave-one-cell-type-out prediction, evaluation and report."""

from __future__ import annotations

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


@app.command("predict")
@command
def predict_cmd(
    out: Out,
    data: Data = "kang2018",
    model: Model = ["scgen"],
    target: Target = ["CD14 Mono"],
    protocol: ProtocolOption = ProtocolName("perturblab"),
    n_top_genes: NTopGenes = 2000,
    max_epochs: MaxEpochs = None,
    n_bootstrap: NBootstrap = 100,
    min_cells: MinCells = 30,
    cell_type_key: CellTypeKey = "cell_type",
    condition_key: ConditionKey = "condition",
    control: Control = "control",
    stimulated: Stimulated = "stimulated",
    seed: Seed = 0,
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
    """Train, predict and evaluate perturbation-response models (baselines always beside them); write tables,
    summary.json and report.html.

    Example: perturblab predict --data kang2018 --model scgen --target "CD14 Mono" --out results/predict
    """
    from ..predict import BASELINES, run_loco

    models = [m for m in model if m != "baselines"]
    proto = choices([protocol])[0]
    cfg = settings(cell_type_key=cell_type_key, condition_key=condition_key, control=control, stimulated=stimulated,
                   n_top_genes=n_top_genes, max_epochs=max_epochs, n_bootstrap=n_bootstrap, min_cells=min_cells,
                   device=device, parallel=n_jobs != 1 or bool(scheduler), models=[*models, *BASELINES],
                   protocol=proto)
    res = run_loco(data, models or list(BASELINES), target, out=out, settings=cfg, random_state=seed,
                   n_jobs=n_jobs, scheduler=scheduler or None, resume=resume, overwrite=overwrite,
                   table_format=choices([table_format])[0])
    echo(f"predict (protocol {res.summary['protocol']}): {_found(res.metrics)}; report {out / 'report.html'}")


def _found(metrics) -> str:
    """Per target, the best model by R2 of the gene means (all genes), the mean-delta baseline's value and the
    ceiling's."""
    r2 = metrics[(metrics["metric"] == "r2_pearson_mean") & (metrics["gene_set"] == "all")]
    ceiling = r2[r2["model"] == "ceiling"].set_index("target")["value"]
    r2 = r2[r2["model"] != "ceiling"]
    parts = []
    for target, g in r2.groupby("target", sort=False):
        best = g.loc[g["value"].idxmax()]
        ref = g[g["model"] == "mean_delta"]["value"]
        extra = f", mean_delta {ref.iloc[0]:.3f}" if len(ref) and best["model"] != "mean_delta" else ""
        if target in ceiling.index:
            extra += f", ceiling {ceiling[target]:.3f}"
        parts.append(f"{target}: best R2 {best['value']:.3f} by {best['model']}{extra}")
    return "; ".join(parts)
