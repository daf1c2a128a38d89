"""``perturblab audit``: the robustness audit of cell-type classifiers (the main job)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


def _search_modes(value: str, classifiers: tuple[str, ...]) -> dict[str, str]:
    """``"auto"`` / ``"exhaustive"`` (every classifier) or ``"mlp=dichotomic,svm=exhaustive"``."""
    value = value.strip()
    if "=" not in value:
        return {c: value for c in classifiers}
    out = {}
    for part in value.split(","):
        name, _, mode = part.partition("=")
        out[name.strip()] = mode.strip()
    return out


@app.command("audit")
def audit_cmd(
    out: Path = typer.Option(..., "--out", help="Output folder (tables, summary.json, report.html, units/)."),
    dataset: str = typer.Option("pbmc3k", help="pbmc3k, kang2018 or the path of an .h5ad file of raw counts."),
    label_key: str = typer.Option("cell_type", help="obs column with the cell-type labels (clusters)."),
    classifiers: str = typer.Option("sctype,chetah,svm,random_forest,mlp,celltypist", help="Comma-separated."),
    clusters: str = typer.Option("", help="Clusters to attack, comma-separated (default: all)."),
    modifications: str = typer.Option("perc1,perc99", help="e.g. perc1,perc99,decile+5"),
    attacks: str = typer.Option("single_gene", help="single_gene,max_change,cgd,grid,random_walk"),
    evaluations: str = typer.Option("", help="robustness,detectability,transferability,defence (default none)."),
    spaces: str = typer.Option("model_input", help="model_input and/or raw_counts (attack the counts through preprocess)."),
    search_mode: str = typer.Option("auto", help="Single-gene search: auto|exhaustive|dichotomic, or per classifier "
                                    "e.g. 'mlp=dichotomic,svm=exhaustive'."),
    seed: int = typer.Option(0, help="Seed of the split, the classifiers and the attacks."),
    cgd_strength: float = typer.Option(1.0, help="CGD step alpha = epsilon."),
    cgd_genes: int = typer.Option(100, help="Signature genes CGD walks through."),
    table_format: str = typer.Option("parquet", "--format", help="Table format: parquet or csv."),
    n_jobs: int = typer.Option(-1, help="Local worker processes for training and attacks (-1 = all cores, 1 = none)."),
    scheduler: str = typer.Option("", help="Dask distributed scheduler address (tcp://host:port)."),
    resume: bool = typer.Option(False, help="Continue the audit in a non-empty --out (finished units are kept)."),
    overwrite: bool = typer.Option(False, help="Replace the audit in a non-empty --out."),
) -> None:
    """Train, evaluate and attack cell-type classifiers; write tables, a JSON summary and an HTML report."""
    from rich.console import Console

    from ..audit import AuditConfig, OutputExistsError, run_audit

    console = Console(stderr=True)
    clf_list = tuple(c.strip() for c in classifiers.split(",") if c.strip())
    try:
        config = AuditConfig(
            dataset=dataset, label_key=label_key, classifiers=clf_list, clusters=clusters or None,
            modifications=modifications, attacks=attacks, evaluations=evaluations, spaces=spaces,
            search_modes=_search_modes(search_mode, clf_list), seed=seed, cgd_strength=cgd_strength,
            cgd_n_genes=cgd_genes,
        )
        result = run_audit(config, out, resume=resume, overwrite=overwrite, n_jobs=n_jobs,
                           scheduler=scheduler or None, table_format=table_format, progress=True)
    except (OutputExistsError, ValueError, KeyError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(code=2) from None
    s = result.summary
    console.print(result.accuracy[["classifier", "accuracy", "macro_f1", "macro_auroc"]].to_string(index=False))
    console.print(f"{s['n_units']} units ({s['n_units_resumed']} resumed), {s['wall_time_s']:.1f} s, "
                  f"peak memory {s['peak_rss_mb']:.0f} MiB")
    console.print(f"report: {Path(out) / 'report.html'}")
