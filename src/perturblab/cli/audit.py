"""``perturblab audit``: the robustness audit of cell-type classifiers (the main job)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..audit.config import (
    ATTACKS,
    CLASSIFIERS,
    EVALUATIONS,
    NOISE_MODES,
    NOISE_RATES,
    SEARCH_MODES,
    SPACES,
    SPLITS,
    WHITEBOX_AMPLITUDES,
    WHITEBOX_KS,
)
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

Attack = str_enum("Attack", ATTACKS)
Evaluation = str_enum("Evaluation", EVALUATIONS)
Space = str_enum("Space", SPACES)
Split = str_enum("Split", SPLITS)
Bounds = str_enum("Bounds", ("range", "percentile"))
NoiseMode = str_enum("NoiseMode", NOISE_MODES)


def _search_modes(value: str, classifiers: list[str]) -> dict[str, str]:
    """``"auto"`` / ``"exhaustive"`` (every classifier) or ``"mlp=dichotomic,svm=exhaustive"``."""
    from ..exceptions import InputError

    value = value.strip()
    if "=" not in value:
        return dict.fromkeys(classifiers, value)
    out = {}
    for part in value.split(","):
        name, sep, mode = part.partition("=")
        if not sep:
            raise InputError(f"--search-mode part {part!r} is not CLASSIFIER=MODE; e.g. mlp=dichotomic")
        out[name.strip()] = mode.strip()
    return out


def _classifier_files(values: list[str]) -> tuple[dict, dict]:
    """``NAME=PATH`` entries -> ({name: fitted classifier}, {name: file checksum})."""
    from ..classifiers.files import load_classifier_file
    from ..exceptions import InputError

    user, checks = {}, {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--classifier-file {value!r} is not NAME=PATH; e.g. --classifier-file mine=model.skops")
        if name.strip() in user:
            raise InputError(f"--classifier-file names {name.strip()!r} twice; give each file its own name")
        clf = load_classifier_file(path.strip())
        user[name.strip()], checks[name.strip()] = clf, clf.checksum_
    return user, checks


@app.command("audit")
@command
def audit_cmd(
    out: Out,
    data: Data = "pbmc3k",
    label_key: Annotated[str, typer.Option(help="obs column with the cell-type labels (clusters).")] = "cell_type",
    classifier: Annotated[list[str], typer.Option(
        "--classifier", help=f"Classifier to audit (repeat; default perturblab's six: {', '.join(CLASSIFIERS)}; "
        "also 'transformer', a gene-token transformer annotator, and names registered by plugins).")] = [],
    classifier_file: Annotated[list[str], typer.Option(
        "--classifier-file", help="Your fitted classifier, NAME=PATH (repeat): a CellTypist model (.pkl; a pickle, "
        "so only files you trust) or a scikit-learn estimator saved with skops (.skops, fitted on a DataFrame of "
        "log1p expression whose columns are genes). Audited beside --classifier, never retrained.")] = [],
    cluster: Annotated[list[str], typer.Option("--cluster", help="Cluster to attack (repeat; default all).")] = [],
    modification: Annotated[list[str], typer.Option(
        "--modification", help="Modification (repeat): perc1, perc99, aberrant, decile+N / decile-N (N 1-9), "
        "random, fixed:VALUE.")] = ["perc1", "perc99"],
    attack: Annotated[list[Attack], typer.Option(  # type: ignore[valid-type]
        "--attack", help="Attack (repeat).")] = [Attack("single_gene")],
    evaluation: Annotated[list[Evaluation], typer.Option(  # type: ignore[valid-type]
        "--evaluation", help="Extra evaluation (repeat; default none).")] = [],
    space: Annotated[list[Space], typer.Option(  # type: ignore[valid-type]
        "--space", help="Where attacks modify the cells (repeat): model_input, or raw_counts through each "
        "classifier's own preprocessing.")] = [Space("model_input")],
    search_mode: Annotated[str, typer.Option(help=f"Single-gene search: {', '.join(SEARCH_MODES)}, or per "
                                             "classifier, e.g. 'mlp=dichotomic,svm=exhaustive'.")] = "auto",
    cgd_strength: Annotated[float, typer.Option(help="CGD step alpha = epsilon.")] = 1.0,
    cgd_genes: Annotated[int, typer.Option(help="Signature genes CGD walks through.")] = 100,
    split: Annotated[Split, typer.Option(help="Train/test halves: stratified, or anchor (adverSCarial's published "  # type: ignore[valid-type]
                                         "PBMC3k split).")] = Split("stratified"),
    label_map: Annotated[str, typer.Option(help="scType label map: pbmc3k (broad), pbmc3k_strict, none, or a CSV/TSV "
                                           "file (columns sctype_name, label); default: pbmc3k on PBMC3k, none "
                                           "elsewhere.")] = "default",
    whitebox_k: Annotated[list[int], typer.Option("--whitebox-k", help="PGD/FGSM gene budget (repeat).")]
    = list(WHITEBOX_KS),
    whitebox_amplitude: Annotated[list[float], typer.Option("--whitebox-amplitude", help="PGD/FGSM amplitude, a "
                                                            "fraction of each gene's allowed range (repeat).")]
    = list(WHITEBOX_AMPLITUDES),
    whitebox_bounds: Annotated[Bounds, typer.Option(help="PGD/FGSM allowed range per gene: observed range or "  # type: ignore[valid-type]
                                                    "[perc1, perc99].")] = Bounds("range"),
    noise_rate: Annotated[list[float], typer.Option("--noise-rate", help="label_noise: share of training labels "
                                                    "changed (repeat).")] = list(NOISE_RATES),
    noise_mode: Annotated[list[NoiseMode], typer.Option("--noise-mode", help="label_noise: how labels are "  # type: ignore[valid-type]
                                                        "changed (repeat).")] = list(NoiseMode),
    strength_genes: Annotated[int, typer.Option(help="strength / label_noise: top marker genes per cluster in the "
                                                "gene panel.")] = 50,
    n_bootstrap: NBootstrap = 100,
    seed: Seed = 0,
    device: Device = "auto",
    n_jobs: NJobs = 1,
    scheduler: Scheduler = "",
    table_format: Format = TableFormat("parquet"),
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train, evaluate and attack cell-type classifiers; write tables, a JSON summary and an HTML report.

    Example: perturblab audit --out results/audit --classifier sctype --classifier mlp --cluster NK
    """
    from .. import bridges  # noqa: F401  (registers the transformer annotator)
    from ..audit import AuditConfig, run_audit

    user, checks = _classifier_files(classifier_file)
    clfs = choices(classifier) or ([] if user else list(CLASSIFIERS))
    clfs = [c for c in clfs if c not in user] + list(user)
    config = AuditConfig(data=data, label_key=label_key, classifiers=tuple(clfs),
                         clusters=tuple(cluster) if cluster else None, modifications=tuple(modification),
                         attacks=tuple(choices(attack)), evaluations=tuple(choices(evaluation)),
                         spaces=tuple(choices(space)), search_modes=_search_modes(search_mode, clfs), seed=seed,
                         cgd_strength=cgd_strength, cgd_n_genes=cgd_genes, n_bootstrap=n_bootstrap,
                         split=choices([split])[0], label_map=None if label_map == "none" else label_map,
                         whitebox_ks=tuple(whitebox_k), whitebox_amplitudes=tuple(whitebox_amplitude),
                         whitebox_bounds=choices([whitebox_bounds])[0], noise_rates=tuple(noise_rate),
                         noise_modes=tuple(choices(noise_mode)), strength_genes=strength_genes,
                         classifier_checksums=checks)
    result = run_audit(config, out, resume=resume, overwrite=overwrite, n_jobs=n_jobs, scheduler=scheduler or None,
                       table_format=choices([table_format])[0], device=device, fitted=user)
    s = result.summary
    acc = result.accuracy
    if not quiet:
        echo(acc[["classifier", "accuracy", "macro_f1", "macro_auroc"]].to_string(index=False))
        echo(f"{s['n_units']} units ({s['n_units_resumed']} resumed), {s['wall_time_s']:.1f} s, "
             f"peak memory {s['peak_rss_mb']:.0f} MiB")
    echo(f"audit: {s['headline']}; report {out / 'report.html'}")
