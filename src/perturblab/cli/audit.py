"""``perturblab audit``: the robustness audit of cell-type classifiers (the main job)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..audit.config import ATTACKS, CLASSIFIERS, EVALUATIONS, SEARCH_MODES, SPACES
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
    str_enum,
)

Classifier = str_enum("Classifier", CLASSIFIERS)
Attack = str_enum("Attack", ATTACKS)
Evaluation = str_enum("Evaluation", EVALUATIONS)
Space = str_enum("Space", SPACES)


def _search_modes(value: str, classifiers: list[str]) -> dict[str, str]:
    """``"auto"`` / ``"exhaustive"`` (every classifier) or ``"mlp=dichotomic,svm=exhaustive"``."""
    from ..exceptions import InputError

    value = value.strip()
    if "=" not in value:
        return {c: value for c in classifiers}
    out = {}
    for part in value.split(","):
        name, sep, mode = part.partition("=")
        if not sep:
            raise InputError(f"--search-mode part {part!r} is not CLASSIFIER=MODE; e.g. mlp=dichotomic")
        out[name.strip()] = mode.strip()
    return out


@app.command("audit")
@command
def audit_cmd(
    out: Out,
    data: Data = "pbmc3k",
    label_key: Annotated[str, typer.Option(help="obs column with the cell-type labels (clusters).")] = "cell_type",
    classifier: Annotated[list[Classifier], typer.Option(  # type: ignore[valid-type]
        "--classifier", help="Classifier to audit (repeat; default all six).")] = list(Classifier),  # noqa: B008
    cluster: Annotated[list[str], typer.Option("--cluster", help="Cluster to attack (repeat; default all).")] = [],  # noqa: B006
    modification: Annotated[list[str], typer.Option(
        "--modification", help="Modification (repeat): perc1, perc99, aberrant, decile+N / decile-N (N 1-9), "
        "random, fixed:VALUE.")] = ["perc1", "perc99"],  # noqa: B006
    attack: Annotated[list[Attack], typer.Option(  # type: ignore[valid-type]
        "--attack", help="Attack (repeat).")] = [Attack("single_gene")],  # noqa: B006,B008
    evaluation: Annotated[list[Evaluation], typer.Option(  # type: ignore[valid-type]
        "--evaluation", help="Extra evaluation (repeat; default none).")] = [],  # noqa: B006
    space: Annotated[list[Space], typer.Option(  # type: ignore[valid-type]
        "--space", help="Where attacks modify the cells (repeat): model_input, or raw_counts through each "
        "classifier's own preprocessing.")] = [Space("model_input")],  # noqa: B006,B008
    search_mode: Annotated[str, typer.Option(help=f"Single-gene search: {', '.join(SEARCH_MODES)}, or per "
                                             "classifier, e.g. 'mlp=dichotomic,svm=exhaustive'.")] = "auto",
    cgd_strength: Annotated[float, typer.Option(help="CGD step alpha = epsilon.")] = 1.0,
    cgd_genes: Annotated[int, typer.Option(help="Signature genes CGD walks through.")] = 100,
    n_bootstrap: NBootstrap = 100,
    seed: Seed = 0,
    device: Device = "auto",
    n_jobs: NJobs = 1,
    scheduler: Scheduler = "",
    table_format: Format = TableFormat("parquet"),  # type: ignore[assignment]
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train, evaluate and attack cell-type classifiers; write tables, a JSON summary and an HTML report.

    Example: perturblab audit --out results/audit --classifier sctype --classifier mlp --cluster NK
    """
    from ..audit import AuditConfig, run_audit

    clfs = choices(classifier)
    config = AuditConfig(data=data, label_key=label_key, classifiers=clfs, clusters=cluster or None,
                         modifications=modification, attacks=choices(attack), evaluations=choices(evaluation),
                         spaces=choices(space), search_modes=_search_modes(search_mode, clfs), seed=seed,
                         cgd_strength=cgd_strength, cgd_n_genes=cgd_genes, n_bootstrap=n_bootstrap)
    result = run_audit(config, out, resume=resume, overwrite=overwrite, n_jobs=n_jobs, scheduler=scheduler or None,
                       table_format=choices([table_format])[0], device=device)
    s = result.summary
    acc = result.accuracy
    if not quiet:
        echo(acc[["classifier", "accuracy", "macro_f1", "macro_auroc"]].to_string(index=False))
        echo(f"{s['n_units']} units ({s['n_units_resumed']} resumed), {s['wall_time_s']:.1f} s, "
             f"peak memory {s['peak_rss_mb']:.0f} MiB")
    echo(f"audit: {s['headline']}; report {out / 'report.html'}")
