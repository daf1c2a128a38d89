"""Options shared by the prediction commands (predict, benchmark, tune): data keys, genes, epochs."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import str_enum

__all__ = [
    "BUILTIN_MODELS",
    "CellTypeKey",
    "ListModels",
    "ConditionKey",
    "Control",
    "MaxEpochs",
    "MinCells",
    "Model",
    "NTopGenes",
    "ProtocolName",
    "ProtocolOption",
    "Stimulated",
    "Target",
]

#: The models that ship with perturblab (listed in --help; registered models are accepted too).
BUILTIN_MODELS = ("scgen, scpram, scpram_first_cell, scpram_residual, ot_shift, scgen_unbalanced (a trained model: "
                  "scGen without balancing), and the baselines; models of installed plugins too (see --list-models)")


def model_lines() -> list[str]:
    """One line per model of :data:`perturblab.predict.MODELS`: name, class, fixed parameters, and whether it is
    a baseline, built in, or registered (plugins and :func:`perturblab.predict.register_model`)."""
    from ..predict.models import BASELINES, MODELS

    lines = []
    for name in MODELS:
        cls, fixed = MODELS[name]
        kind = "registered"
        if name in MODELS.builtin_names:
            kind = "baseline" if name in (*BASELINES, "additive") else "built-in"
        extra = f" {fixed}" if fixed else ""
        lines.append(f"{name}\t{kind}\t{cls.__module__}.{cls.__qualname__}{extra}")
    return lines


def _list_models(value: bool) -> None:
    if value:
        for line in model_lines():
            typer.echo(line)
        raise typer.Exit(0)


ListModels = Annotated[bool, typer.Option("--list-models", is_eager=True, callback=_list_models,
                                          help="List the models (built-in, baselines, registered and plugin "
                                          "models) and exit.")]

ProtocolName = str_enum("ProtocolName", ("perturblab", "scgen"))
ProtocolOption = Annotated[ProtocolName, typer.Option(  # type: ignore[valid-type]
    "--protocol", help="perturblab: all cell types kept, median library size, mean-delta control mean with the "
    "held-out type's controls; scgen: the published protocol (types with < 30 cells per condition dropped, 1e4 "
    "counts, control mean without the held-out type).")]

CellTypeKey = Annotated[str, typer.Option("--cell-type-key", help="obs column of the cell type.")]
ConditionKey = Annotated[str, typer.Option("--condition-key", help="obs column of the condition.")]
Control = Annotated[str, typer.Option("--control", help="Control value of the condition column.")]
Stimulated = Annotated[str, typer.Option("--stimulated", help="Stimulated value of the condition column.")]
NTopGenes = Annotated[int, typer.Option("--n-top-genes", help="Highly variable genes kept (>= 1).")]
MaxEpochs = Annotated[int | None, typer.Option("--max-epochs", help="Maximum training epochs of the VAE models "
                                               "(default: each model's own).", show_default=False)]
MinCells = Annotated[int, typer.Option("--min-cells", help="Default targets: cell types with at least this many "
                                       "cells in each condition.")]
Model = Annotated[list[str], typer.Option("--model", "-m", help=f"Model (repeat): {BUILTIN_MODELS}; the baselines "
                                          "are always added.")]
Target = Annotated[list[str], typer.Option("--target", "-t", help="Held-out cell type (repeat), or 'all' (every cell "
                                           "type with --min-cells cells per condition).")]


def settings(*, cell_type_key: str, condition_key: str, control: str, stimulated: str, n_top_genes: int,
             max_epochs: int | None, n_bootstrap: int, min_cells: int, device: str, parallel: bool,
             models, variant_params: dict | None = None, protocol: str = "perturblab"):
    """The :class:`~perturblab.predict.benchmark.BenchmarkSettings` these options describe (``protocol``: a name
    of :data:`perturblab.predict.PROTOCOLS`, whose preprocessing and baseline settings are used)."""
    from ..predict.benchmark import BenchmarkSettings
    from ..predict.protocols import get_protocol

    proto = get_protocol(protocol)
    train = {m: {"max_epochs": max_epochs} for m in models} if max_epochs is not None else {}
    return BenchmarkSettings(condition_key=condition_key, cell_type_key=cell_type_key, control=control,
                             stimulated=stimulated, preprocessing=proto.with_genes(n_top_genes),
                             min_cells=min_cells, model_params={m: dict(p) for m, p in proto.model_params.items()},
                             train_params=train, evaluate_params={"n_bootstrap": n_bootstrap},
                             variant_params=variant_params or {}, device=device, torch_threads=1 if parallel else None)
