"""``perturblab interpret``: test what a gene-token transformer's attention encodes (Kendiukhov 2026)."""

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
    Seed,
    TableFormat,
    Verbose,
    choices,
    command,
    echo,
    str_enum,
)

ModelKind = str_enum("ModelKind", ("own", "geneformer", "scgpt"))
Reference = str_enum("Reference", ("trrust", "dorothea", "collectri", "string"))
Intervention = str_enum("Intervention", ("top", "bottom", "random", "layer", "uniform", "mlp"))
LayerSelection = str_enum("LayerSelection", ("nested-cv", "prespecified"))
LayerSummary = str_enum("LayerSummary", ("mean", "max"))
HeadRanking = str_enum("HeadRanking", ("composite", "reference", "perturbation"))
InSilicoMode = str_enum("InSilicoMode", ("delete", "overexpress"))
RandomHeads = str_enum("RandomHeads", ("entropy-matched", "uniform"))


@app.command("interpret")
@command
def interpret_cmd(
    out: Out,
    data: Data = "papalexi2021",
    model: Annotated[ModelKind, typer.Option(  # type: ignore[valid-type]
        "--model", "-m", help="'own' (trained here on the control cells), 'geneformer' or 'scgpt'.")]
    = ModelKind("own"),
    model_path: Annotated[str, typer.Option(help="Checkpoint directory for geneformer / scgpt; for 'own', a model "
                                            "saved with OwnGeneTransformer.save to use instead of training one.",
                                            show_default=False)] = "",
    token_dictionary: Annotated[str, typer.Option(help="Geneformer: token dictionary file (default: found in the "
                                                  "checkpoint's shipped layout).", show_default=False)] = "",
    gene_median_file: Annotated[str, typer.Option(help="Geneformer: gene median dictionary file (default: found in "
                                                  "the checkpoint's shipped layout).", show_default=False)] = "",
    gene_id_key: Annotated[str, typer.Option(help="adata.var column with the ids the checkpoint knows (Geneformer: "
                                             "Ensembl ids, e.g. gene_ids; default: var_names).",
                                             show_default=False)] = "",
    perturbation_key: Annotated[str, typer.Option(help="obs column of the knocked-out gene.")] = "perturbation",
    control: Annotated[str, typer.Option(help="Control label in the perturbation column.")] = "control",
    cells_per_group: Annotated[int | None, typer.Option(help="Subsample at most this many cells per perturbation "
                                                        "(control included; seeded) for a quick run.",
                                                        show_default=False)] = None,
    n_cells: Annotated[int, typer.Option(help="Control cells for attention extraction (>= 20).")] = 2000,
    n_genes: Annotated[int, typer.Option(help="Highly variable genes (perturbed genes forced in).")] = 2000,
    reference: Annotated[list[Reference], typer.Option(  # type: ignore[valid-type]
        "--reference", help="Reference network (repeat).")] = list(Reference),
    de_lfc: Annotated[float, typer.Option(help="DE targets: |log2 fold change| threshold.")] = 0.5,
    de_alpha: Annotated[float, typer.Option(help="DE targets: Benjamini-Hochberg level.")] = 0.05,
    de_min_detection: Annotated[float, typer.Option(help="DE targets: test a gene only when it is detected in at "
                                                    "least this fraction of the perturbed or the control cells "
                                                    "(0: every gene, as the paper).")] = 0.1,
    layer_selection: Annotated[LayerSelection, typer.Option(  # type: ignore[valid-type]
        help="How the tested layer summary is chosen: nested cross-validation over perturbations (Bonferroni over "
             "candidates where one matrix is tested) or the pre-specified --layer / --layer-summary.")]
    = LayerSelection("nested-cv"),
    layer: Annotated[str, typer.Option(help="Pre-specified layer: last, first or an index (also the fallback of "
                                       "nested-cv with fewer than 2 perturbations).")] = "last",
    layer_summary: Annotated[LayerSummary, typer.Option(  # type: ignore[valid-type]
        help="Pre-specified summary over the layer's heads.")] = LayerSummary("mean"),
    layer_folds: Annotated[int, typer.Option(help="Folds of the nested cross-validation over perturbations.")] = 5,
    min_perturbations: Annotated[int, typer.Option(help="Below this many rankable perturbations the "
                                                   "perturbation-based criteria are not evaluable.")] = 6,
    alpha: Annotated[float, typer.Option(help="Significance level of the tests (BH) and the verdict.")] = 0.05,
    strata_key: Annotated[str, typer.Option(help="obs column for CSSI strata (default: Leiden on cell "
                                            "embeddings).", show_default=False)] = "",
    n_label_null: Annotated[int, typer.Option(help="Label-shuffle null size.")] = 1000,
    n_degree_null: Annotated[int, typer.Option(help="Degree-preserving (curveball) null size.")] = 200,
    n_bootstrap: NBootstrap = 1000,
    ablation_k: Annotated[list[int], typer.Option("--ablation-k", help="Number of heads to ablate (repeat).")]
    = [5, 10, 20, 50],
    ablation_seeds: Annotated[int, typer.Option(help="Random-head draws per k.")] = 3,
    ablation_random: Annotated[RandomHeads, typer.Option(  # type: ignore[valid-type]
        help="Random control heads: matched to the top heads' attention entropy, or uniform.")]
    = RandomHeads("entropy-matched"),
    ablation_cells: Annotated[int | None, typer.Option(help="Control cells used by the ablation experiment "
                                                       "(default 500; 0: the extraction's cells).")] = 500,
    head_ranking: Annotated[HeadRanking, typer.Option(  # type: ignore[valid-type]
        help="Head ranking for ablation: composite (reference + perturbation AUROC), reference or perturbation.")]
    = HeadRanking("composite"),
    ablation_intervention: Annotated[list[Intervention], typer.Option(  # type: ignore[valid-type]
        "--ablation-intervention", help="Ablation intervention (repeat).")] = list(Intervention),
    cssi_null_repeats: Annotated[int, typer.Option(help="CSSI null repeats.")] = 10,
    cssi_min_cells: Annotated[int, typer.Option(help="Strata with fewer cells are left out of CSSI.")] = 20,
    analysis: Annotated[list[str] | None, typer.Option(
        "--analysis", help="Issue-14 analysis to run (repeat; 'all' for every one, 'none' for none; default: the "
        "default set of perturblab.interpret.catalogue).", show_default=False)] = None,
    gene_set_library: Annotated[list[str] | None, typer.Option(
        "--gene-set-library", help="Gene-set library: reactome, kegg, go_bp or a GMT file (repeat; default: all "
        "three; libraries that cannot be loaded are named in the report).", show_default=False)] = None,
    in_silico_cells: Annotated[int, typer.Option(help="Control cells of the in-silico perturbation.")] = 200,
    in_silico_mode: Annotated[InSilicoMode, typer.Option(  # type: ignore[valid-type]
        help="In-silico perturbation: delete the gene or overexpress it.")] = InSilicoMode("delete"),
    sae_epochs: Annotated[int, typer.Option(help="Sparse autoencoder: training epochs.")] = 10,
    scan_bootstrap: Annotated[int, typer.Option(help="Sensitivity scan: bootstrap resamples per configuration.")]
    = 200,
    cssi_scaling_repeats: Annotated[int, typer.Option(help="CSSI scaling curve: repeats per number of cells.")] = 10,
    epochs: Annotated[int, typer.Option(help="Own model: training epochs.")] = 5,
    d_model: Annotated[int, typer.Option(help="Own model: width.")] = 64,
    n_layers: Annotated[int, typer.Option(help="Own model: layers.")] = 4,
    n_heads: Annotated[int, typer.Option(help="Own model: heads per layer.")] = 4,
    max_length: Annotated[int | None, typer.Option(help="Own model: at most this many gene tokens per cell.",
                                                   show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="Extraction batch size.")] = 16,
    seed: Seed = 0,
    device: Device = "auto",
    n_jobs: NJobs = 1,
    table_format: Format = TableFormat("parquet"),
    resume: Resume = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run every interpretability analysis and write tables, summary.json and report.html into OUT.

    Example: perturblab interpret --model own --data papalexi2021 --out results/own
    """
    from ..interpret import InterpretConfig, run_interpretation
    from ..interpret.catalogue import ANALYSES, default_analyses

    names = list(analysis or [])
    if names == ["all"]:
        analyses = tuple(ANALYSES)
    elif names == ["none"]:
        analyses = ()
    elif not names:
        analyses = default_analyses()
    else:
        if "all" in names or "none" in names:
            from ..exceptions import InputError

            raise InputError("--analysis all / none cannot be combined with analysis names; give one or the other")
        analyses = tuple(names)
    libraries = tuple(gene_set_library) if gene_set_library else InterpretConfig.gene_set_libraries
    cfg = InterpretConfig(
        model=choices([model])[0], model_path=model_path or None, token_dictionary=token_dictionary or None,
        gene_median_file=gene_median_file or None, gene_id_key=gene_id_key or None, epochs=epochs, d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads, max_length=max_length, perturbation_key=perturbation_key, control=control,
        cells_per_group=cells_per_group, n_cells=n_cells, n_genes=n_genes, references=tuple(choices(reference)),
        batch_size=batch_size, device=device, n_label_null=n_label_null, n_degree_null=n_degree_null,
        n_bootstrap=n_bootstrap, ablation_ks=tuple(ablation_k), ablation_seeds=ablation_seeds,
        ablation_interventions=tuple(choices(ablation_intervention)), strata_key=strata_key or None,
        cssi_null_repeats=cssi_null_repeats, cssi_min_cells=cssi_min_cells, random_state=seed, de_lfc=de_lfc,
        de_alpha=de_alpha, de_min_detection=de_min_detection, layer_selection=choices([layer_selection])[0],
        layer=layer, layer_summary=choices([layer_summary])[0], layer_folds=layer_folds,
        min_perturbations=min_perturbations, alpha=alpha, ablation_random=choices([ablation_random])[0],
        ablation_cells=ablation_cells or None, head_ranking=choices([head_ranking])[0], n_jobs=n_jobs,
        analyses=analyses, in_silico_cells=in_silico_cells, in_silico_mode=choices([in_silico_mode])[0],
        sae_epochs=sae_epochs, scan_bootstrap=scan_bootstrap, cssi_scaling_repeats=cssi_scaling_repeats,
        gene_set_libraries=libraries)
    result = run_interpretation(data, out, cfg, resume=resume, overwrite=overwrite,
                                table_format=choices([table_format])[0])
    v = result.summary["verdict"]
    if not quiet:
        echo(f"  tested: {result.summary['layer_selection']['description']}")
        for c in v["criteria"]:
            echo(f"  {c['status']}: {c['name']}: {c['evidence']}")
    n_pass = sum(c["passed"] is True for c in v["criteria"])
    n_ne = sum(c["passed"] is None for c in v["criteria"])
    echo(f"interpret: verdict {'PASS' if v['passed'] else 'FAIL'} ({n_pass} of {len(v['criteria'])} criteria pass, "
         f"{n_ne} not evaluable; attention score tested {result.summary['attention_score_tested']}); "
         f"report {out / 'report.html'}")
