"""``perturblab interpret``: test what a gene-token transformer's attention encodes (Kendiukhov 2026)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

_MODELS = ("own", "geneformer", "scgpt")


def _parse_ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated integers, got {text!r}") from None


@app.command("interpret")
def interpret_cmd(
    model: str = typer.Option("own", help="Model: 'own' (trained here on the control cells), 'geneformer' or 'scgpt'."),
    model_path: Path | None = typer.Option(None, help="Checkpoint directory for geneformer / scgpt; for 'own', "
                                           "a saved model to reuse (default: OUT/own_model.pt, trained if absent)."),
    data: str = typer.Option("papalexi2021", help="'papalexi2021' or a path to an .h5ad file with raw counts."),
    out: Path = typer.Option(..., help="Output folder (finished stages there are reused)."),
    perturbation_key: str = typer.Option("perturbation", help="obs column of the knocked-out gene."),
    control: str = typer.Option("control", help="Control label in the perturbation column."),
    cells_per_group: int | None = typer.Option(None, help="Subsample at most this many cells per perturbation "
                                               "(control included; seeded) for a quick run."),
    n_cells: int = typer.Option(2000, help="Control cells for attention extraction."),
    n_genes: int = typer.Option(2000, help="Highly variable genes (perturbed genes forced in)."),
    references: str = typer.Option("trrust,dorothea,collectri,string", help="Reference networks, comma-separated."),
    strata_key: str | None = typer.Option(None, help="obs column for CSSI strata (default: Leiden on cell embeddings)."),
    n_label_null: int = typer.Option(1000),
    n_degree_null: int = typer.Option(200),
    n_boot: int = typer.Option(1000),
    ablation_ks: str = typer.Option("5,10,20,50", help="Numbers of heads to ablate."),
    ablation_seeds: int = typer.Option(3),
    ablation_interventions: str = typer.Option("top,bottom,random,layer,uniform,mlp", help="Ablation interventions."),
    cssi_null_repeats: int = typer.Option(10),
    cssi_min_cells: int = typer.Option(20, help="Strata with fewer cells are left out of CSSI."),
    epochs: int = typer.Option(5, help="Own model: training epochs."),
    d_model: int = typer.Option(64, help="Own model: width."),
    n_layers: int = typer.Option(4, help="Own model: layers."),
    n_heads: int = typer.Option(4, help="Own model: heads per layer."),
    max_length: int | None = typer.Option(None, help="Own model: at most this many gene tokens per cell."),
    batch_size: int = typer.Option(16),
    device: str = typer.Option("auto", help="'auto', 'cpu' or 'cuda'."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
) -> None:
    """Run every interpretability analysis and write tables, summary.json and report.html into OUT.

    Example: perturblab interpret --model own --data papalexi2021 --out results/own
    """
    import numpy as np
    from rich.console import Console

    from ..interpret.models import GeneformerModel, OwnGeneTransformer, ScGPTModel
    from ..interpret.pipeline import InterpretConfig, run_interpretation
    from ..interpret.training import train_masked_expression

    console = Console()
    if model not in _MODELS:
        raise typer.BadParameter(f"--model must be one of {', '.join(_MODELS)}, got {model!r}")
    if model != "own" and model_path is None:
        raise typer.BadParameter(f"--model {model} needs --model-path (the checkpoint directory)")
    adata = _load_data(data)
    if perturbation_key not in adata.obs.columns:
        raise typer.BadParameter(f"obs column {perturbation_key!r} not in the data (have: {', '.join(adata.obs.columns)})")
    if cells_per_group is not None:
        rng = np.random.default_rng(seed)
        labels = adata.obs[perturbation_key].astype(str).to_numpy()
        keep = [rng.choice(np.flatnonzero(labels == g), min(cells_per_group, int((labels == g).sum())), replace=False)
                for g in sorted(set(labels))]
        adata = adata[np.sort(np.concatenate(keep))].copy()
    out.mkdir(parents=True, exist_ok=True)
    if model == "own":
        path = model_path or out / "own_model.pt"
        if path.exists():
            console.print(f"loading own model from {path}")
            net = OwnGeneTransformer.load(path, device=device)
        else:
            ctrl = adata[adata.obs[perturbation_key].astype(str).to_numpy() == control]
            console.print(f"training own model on {ctrl.n_obs} control cells x {ctrl.n_vars} genes ({epochs} epochs)")
            net = OwnGeneTransformer(adata.var_names, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                                     d_ff=2 * d_model, max_length=max_length, random_state=seed, device=device)
            res = train_masked_expression(net, ctrl, epochs=epochs, batch_size=64, random_state=seed, save_path=path)
            console.print(res.history.to_string(index=False))
    elif model == "geneformer":
        net = GeneformerModel.from_pretrained(model_path, device=device)
    else:
        net = ScGPTModel.from_pretrained(model_path, device=device)
    cfg = InterpretConfig(
        perturbation_key=perturbation_key, control=control, n_cells=n_cells, n_genes=n_genes,
        references=tuple(r.strip() for r in references.split(",") if r.strip()), batch_size=batch_size, device=device,
        n_label_null=n_label_null, n_degree_null=n_degree_null, n_boot=n_boot,
        ablation_ks=_parse_ints(ablation_ks, "--ablation-ks"), ablation_seeds=ablation_seeds,
        ablation_interventions=tuple(x.strip() for x in ablation_interventions.split(",") if x.strip()), strata_key=strata_key,
        cssi_null_repeats=cssi_null_repeats, cssi_min_cells=cssi_min_cells, random_state=seed,
    )
    def log(msg: str) -> None:  # plain text: gene names and brackets are not rich markup
        console.print(msg, markup=False, highlight=False)

    result = run_interpretation(net, adata, out, cfg, log=log)
    v = result.summary["verdict"]
    log(f"verdict: {'PASS' if v['passed'] else 'FAIL'}")
    for c in v["criteria"]:
        status = {True: "pass", False: "fail", None: "not evaluable"}[c["passed"]]
        log(f"  {status}: {c['name']}: {c['evidence']}")


def _load_data(data: str):
    import anndata as ad

    from .. import datasets

    if data == "papalexi2021":
        return datasets.papalexi2021()
    path = Path(data)
    if path.suffix == ".h5ad" and path.is_file():
        return ad.read_h5ad(path)
    raise typer.BadParameter(f"--data must be 'papalexi2021' or an existing .h5ad file, got {data!r}")
