"""The main interpretability run: every analysis on one model and one perturbation dataset, resumable.

:func:`run_interpretation` loads (or trains) the model, streams attention from control cells to disk one layer at a
time, runs the registered analyses (reference recovery, perturbation-first evaluation, gene baselines, incremental
value, confounds and nulls, causal head ablation, CSSI), fills the statistics registry, applies the four-criterion
verdict and writes tables, JSON and the HTML report into ``out``. The attention score under test is never chosen
on the perturbations it is tested on (:mod:`.selection`). It follows the run contract of :mod:`perturblab.runs`:
each finished stage (the trained own model and every layer included) is a unit persisted atomically with the
run's fingerprint, and a rerun needs ``resume`` (identical settings and data) or ``overwrite``; reference
recovery per layer, the nulls and DE run in worker processes with ``n_jobs``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_fraction, check_labels, check_obs_key, check_positive
from ..exceptions import InputError, UnknownNameError
from ..io import TABLE_FORMATS, write_json, write_table
from .baselines import baseline_scores, gene_features
from .catalogue import ANALYSES, default_analyses
from .confounds import confound_r2
from .edges import correlation_scores, log_normalise
from .incremental import build_pairs, incremental_value
from .perturbation import DEFAULT_MIN_DETECTION, TargetLabels, de_targets, perturbation_auroc
from .references import Reference, load_reference, load_tf_list, reference_recovery
from .result import InterpretResult
from .selection import SELECTIONS, SUMMARIES
from .stats import MIN_PERTURBATIONS

__all__ = ["MODEL_KINDS", "InterpretConfig", "InterpretResult", "run_interpretation", "select_genes"]

log = logging.getLogger(__name__)

#: Models :func:`run_interpretation` can load or train by name.
MODEL_KINDS = ("own", "geneformer", "scgpt")
#: Settings that do not change results (left out of the run's fingerprint).
NOT_FINGERPRINTED = ("device", "n_jobs")


@dataclass
class InterpretConfig:
    """Settings of :func:`run_interpretation` (defaults follow Kendiukhov 2026 where it gives them).

    Attributes
    ----------
    model
        ``"own"`` (perturblab's gene-token transformer, trained here by masked expression modelling on the
        control cells), ``"geneformer"`` or ``"scgpt"`` (a checkpoint directory in ``model_path``).
    model_path
        Checkpoint directory (Geneformer / scGPT, as shipped), or for ``"own"`` a model saved by
        :meth:`~perturblab.interpret.models.OwnGeneTransformer.save` to use instead of training one.
    token_dictionary, gene_median_file, gene_id_key
        Geneformer: explicit dictionary files (default: found in the checkpoint's shipped layout) and the
        ``adata.var`` column of the ids the model knows (Ensembl ids; None: ``var_names``); scGPT takes
        ``gene_id_key`` (see :func:`~perturblab.interpret.models.load_model`).
    epochs, d_model, n_layers, n_heads, max_length, train_batch_size
        The own model: training epochs, width, layers, heads per layer, gene tokens per cell (None: all),
        training batch size.
    perturbation_key, control
        ``obs`` column of the knocked-out gene and its control value.
    cells_per_group
        Subsample at most this many cells per perturbation (control included; seeded) for a quick run (None:
        all cells).
    n_cells, n_genes
        Control cells used for extraction (sampled with ``random_state``) and genes (highly variable genes of
        the control cells, perturbed genes forced in; all genes when there are fewer).
    references
        Reference networks (:data:`~perturblab.interpret.references.REFERENCE_NAMES`).
    de_lfc, de_alpha, de_min_detection
        DE targets (:func:`~perturblab.interpret.perturbation.de_targets`): ``|log2FC|`` threshold (0.5), BH
        level (0.05) and the minimum-detection filter (0.1: genes seen in < 10% of both groups are not tested).
    layer_selection, layer, layer_summary, layer_folds
        How the tested attention score is chosen (:mod:`~perturblab.interpret.selection`): ``"nested-cv"``
        (default; cross-validation over perturbations in ``layer_folds`` folds among all layer summaries,
        Bonferroni over them where one data-chosen matrix is tested) or ``"prespecified"`` (``layer``:
        ``"last"``, ``"first"`` or an index, and ``layer_summary``: ``"mean"`` or ``"max"`` over heads; also
        the fallback when nested CV has fewer than 2 perturbations).
    min_perturbations
        Rankable perturbations (with DE targets) below which the perturbation-based criteria are not evaluable
        (default 6: the smallest n at which a two-sided Wilcoxon test can reach p < 0.05).
    alpha
        Significance level of the registry (BH) and the verdict.
    batch_size, device
        Extraction batch size and torch device (the device is not part of the fingerprint).
    n_label_null, n_degree_null, n_bootstrap
        Label-shuffle and curveball null sizes, bootstrap resamples.
    head_ranking
        Head ranking for ablation: ``"composite"`` (reference + perturbation AUROC), ``"reference"`` or
        ``"perturbation"`` (:func:`~perturblab.interpret.ablation.rank_heads`).
    ablation_ks, ablation_seeds, ablation_interventions, ablation_random, ablation_cells
        Head counts ablated (below the number of heads), random-head draws, the interventions run
        (see :func:`~perturblab.interpret.ablation.ablation_experiment`), how random heads are drawn
        (``"entropy-matched"`` or ``"uniform"``) and the control cells used (None: the extraction's cells).
    strata_key, leiden_resolution, n_neighbors, cssi_min_cells, cssi_null_repeats
        CSSI strata: an ``obs`` column, else Leiden on the model's cell embeddings.
    analyses
        The issue-14 analyses run after the ablation (names of :data:`~perturblab.interpret.catalogue.ANALYSES`;
        default :func:`~perturblab.interpret.catalogue.default_analyses`; empty: none). Their settings:
    value_measures
        Value-weighted edge measures (``"context"``, ``"norm"``; :mod:`~perturblab.interpret.value_edges`).
    matching_k, matching_caliper
        Propensity matching: controls per reference edge and caliper in SD of the logit propensity.
    split_folds_joint, split_top_k
        Split designs: folds of the joint cross-gene x cross-perturbation split, k of top-k recall.
    gene_set_libraries, gene_set_min_size, gene_set_max_size
        Gene-set libraries (``"reactome"``, ``"kegg"``, ``"go_bp"`` or GMT file paths; the first one loaded
        also serves the SAE features) and the set-size filter over the genes under study. Libraries that cannot
        be loaded (offline, no local copy) are named in the report; the run goes on.
    scan_lfc, scan_cells, scan_genes, scan_bootstrap
        Sensitivity scan levels (None: 1/4, 1/2 and all of the run's control cells / genes) and its bootstrap
        resamples.
    cssi_ks, cssi_scaling_cells, cssi_scaling_repeats, cssi_gene_null
        CSSI strata numbers scanned, cell numbers and repeats of the scaling curve (numbers above the run's
        control cells are left out), gene-permuted null size.
    sae_layer, sae_k, sae_expansion, sae_epochs, sae_max_tokens, sae_null_permutations
        TopK sparse autoencoder on one layer's residual stream (:mod:`~perturblab.interpret.sae`) and the
        gene-label permutations of its gene-set null.
    in_silico_mode, in_silico_cells
        In-silico perturbation (``"delete"`` or ``"overexpress"``) and the control cells it runs on (seeded
        sample).

        The defaults keep the default run's analyses cheap: 200 in-silico cells (not 500), strata numbers
        (2, 4, 8) (not 2-8 in five steps) and 10 SAE epochs (not 20). Measured on the shared 2-core machine, the
        analyses took 244 s of a 61-min default run with 500 cells / five strata numbers / 20 epochs (in-silico
        39 s, strata scan 58 s, SAE 55 s); the rest was model training, extraction and ablation under load.
    n_jobs
        Worker processes for DE, per-layer reference recovery and the nulls (:func:`perturblab.runs.execute`;
        ``-1``: all cores). Not part of the fingerprint: results do not depend on it.
    random_state
        Seed of every random choice.

    Raises
    ------
    InputError, UnknownNameError
        For an invalid value (e.g. ``n_cells < 20``, an unknown model).
    """

    model: str = "own"
    model_path: str | None = None
    token_dictionary: str | None = None
    gene_median_file: str | None = None
    gene_id_key: str | None = None
    epochs: int = 5
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    max_length: int | None = None
    train_batch_size: int = 64
    perturbation_key: str = "perturbation"
    control: str = "control"
    cells_per_group: int | None = None
    n_cells: int = 2000
    n_genes: int = 2000
    references: tuple[str, ...] = ("trrust", "dorothea", "collectri", "string")
    de_lfc: float = 0.5
    de_alpha: float = 0.05
    de_min_detection: float = DEFAULT_MIN_DETECTION
    layer_selection: str = "nested-cv"
    layer: str = "last"
    layer_summary: str = "mean"
    layer_folds: int = 5
    min_perturbations: int = MIN_PERTURBATIONS
    alpha: float = 0.05
    batch_size: int = 16
    device: str | None = None
    n_label_null: int = 1000
    n_degree_null: int = 200
    n_bootstrap: int = 1000
    head_ranking: str = "composite"
    ablation_ks: tuple[int, ...] = (5, 10, 20, 50)
    ablation_seeds: int = 3
    ablation_interventions: tuple[str, ...] = ("top", "bottom", "random", "layer", "uniform", "mlp")
    ablation_random: str = "entropy-matched"
    ablation_cells: int | None = 500
    strata_key: str | None = None
    leiden_resolution: float = 1.0
    n_neighbors: int = 15
    cssi_min_cells: int = 20
    cssi_null_repeats: int = 10
    analyses: tuple[str, ...] = field(default_factory=default_analyses)
    value_measures: tuple[str, ...] = ("context", "norm")
    matching_k: int = 5
    matching_caliper: float = 0.2
    split_folds_joint: int = 3
    split_top_k: int = 20
    gene_set_libraries: tuple[str, ...] = ("reactome", "kegg", "go_bp")
    gene_set_min_size: int = 5
    gene_set_max_size: int = 300
    scan_lfc: tuple[float, ...] = (0.25, 0.5, 1.0)
    scan_cells: tuple[int, ...] | None = None
    scan_genes: tuple[int, ...] | None = None
    scan_bootstrap: int = 200
    cssi_ks: tuple[int, ...] = (2, 4, 8)
    cssi_scaling_cells: tuple[int, ...] = (200, 400, 600, 800, 1000)
    cssi_scaling_repeats: int = 10
    cssi_gene_null: int = 200
    sae_layer: int = -1
    sae_k: int = 8
    sae_expansion: int = 4
    sae_epochs: int = 10
    sae_max_tokens: int = 50_000
    sae_null_permutations: int = 20
    in_silico_mode: str = "delete"
    in_silico_cells: int = 200
    n_jobs: int = 1
    random_state: int = 0

    def __post_init__(self) -> None:
        from ..runs import resolve_n_jobs
        from .ablation import HEAD_RANKINGS, INTERVENTIONS
        from .references import REFERENCE_NAMES

        self.references = tuple(str(r) for r in self.references)
        self.ablation_ks = tuple(int(k) for k in self.ablation_ks)
        self.ablation_interventions = tuple(str(i) for i in self.ablation_interventions)
        self.layer = str(self.layer)
        self.analyses = tuple(str(a) for a in self.analyses)
        self.value_measures = tuple(str(m) for m in self.value_measures)
        self.gene_set_libraries = tuple(str(g) for g in self.gene_set_libraries)
        self.scan_lfc = tuple(float(x) for x in self.scan_lfc)
        self.cssi_ks = tuple(int(k) for k in self.cssi_ks)
        self.cssi_scaling_cells = tuple(int(n) for n in self.cssi_scaling_cells)
        if self.scan_cells is not None:
            self.scan_cells = tuple(int(n) for n in self.scan_cells)
        if self.scan_genes is not None:
            self.scan_genes = tuple(int(n) for n in self.scan_genes)
        self._check_analyses()
        if self.model not in MODEL_KINDS:
            raise UnknownNameError("model", self.model, MODEL_KINDS)
        if self.model != "own" and not self.model_path:
            raise InputError(f"model {self.model!r} needs model_path (--model-path): the checkpoint directory")
        if self.model == "own" and (self.token_dictionary or self.gene_median_file or self.gene_id_key):
            raise InputError("token_dictionary, gene_median_file and gene_id_key apply to geneformer / scgpt "
                             "checkpoints, not to the own model; drop them")
        for name in ("epochs", "d_model", "n_layers", "n_heads", "train_batch_size", "batch_size", "n_genes",
                     "n_neighbors", "cssi_min_cells", "ablation_seeds", "layer_folds", "min_perturbations"):
            check_positive(getattr(self, name), name)
        check_positive(self.n_cells, "n_cells", minimum=20)
        check_positive(self.cells_per_group, "cells_per_group", allow_none=True)
        check_positive(self.ablation_cells, "ablation_cells", minimum=2, allow_none=True)
        check_positive(self.max_length, "max_length", minimum=2, allow_none=True)
        for name in ("n_label_null", "n_degree_null", "n_bootstrap", "cssi_null_repeats"):
            check_positive(getattr(self, name), name, minimum=0)
        check_positive(self.random_state, "seed (random_state)", minimum=0)
        check_positive(self.leiden_resolution, "leiden_resolution", minimum=1e-9)
        check_positive(self.de_lfc, "de_lfc", minimum=0)
        check_fraction(self.de_alpha, "de_alpha")
        check_fraction(self.alpha, "alpha")
        check_fraction(self.de_min_detection, "de_min_detection", closed_low=True)
        resolve_n_jobs(self.n_jobs)
        if self.d_model % self.n_heads:
            raise InputError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if not self.references:
            raise InputError("references is empty: give at least one reference network")
        for r in self.references:
            if r not in REFERENCE_NAMES:
                raise UnknownNameError("reference network", r, REFERENCE_NAMES)
        for i in self.ablation_interventions:
            if i not in INTERVENTIONS:
                raise UnknownNameError("ablation intervention", i, INTERVENTIONS)
        for k in self.ablation_ks:
            check_positive(k, "ablation k")
        if self.layer_selection not in SELECTIONS:
            raise UnknownNameError("layer selection", self.layer_selection, SELECTIONS)
        if self.layer_summary not in SUMMARIES:
            raise UnknownNameError("layer summary", self.layer_summary, SUMMARIES)
        if self.head_ranking not in HEAD_RANKINGS:
            raise UnknownNameError("head ranking", self.head_ranking, HEAD_RANKINGS)
        if self.ablation_random not in ("entropy-matched", "uniform"):
            raise UnknownNameError("random head draw", self.ablation_random, ("entropy-matched", "uniform"))
        if self.layer.lower() not in ("last", "first"):
            try:
                int(self.layer)
            except ValueError:
                raise InputError(f"layer must be 'last', 'first' or a layer index, got {self.layer!r}") from None

    def _check_analyses(self) -> None:
        from .in_silico import MODES
        from .value_edges import MEASURES

        for a in self.analyses:
            if a not in ANALYSES:
                raise UnknownNameError("analysis", a, tuple(ANALYSES))
        if len(set(self.analyses)) < len(self.analyses):
            raise InputError(f"analyses lists a name twice ({', '.join(self.analyses)}); give each once")
        for m in self.value_measures:
            if m not in MEASURES:
                raise UnknownNameError("value-edge measure", m, tuple(MEASURES))
        if self.in_silico_mode not in MODES:
            raise UnknownNameError("in-silico mode", self.in_silico_mode, tuple(MODES))
        for name in ("matching_k", "split_top_k", "gene_set_min_size", "gene_set_max_size", "cssi_scaling_repeats",
                     "sae_k", "sae_expansion", "sae_epochs", "sae_max_tokens", "in_silico_cells"):
            check_positive(getattr(self, name), name)
        check_positive(self.split_folds_joint, "split_folds_joint", minimum=2)
        for name in ("scan_bootstrap", "cssi_gene_null", "sae_null_permutations"):
            check_positive(getattr(self, name), name, minimum=0)
        check_positive(self.matching_caliper, "matching_caliper", minimum=1e-9)
        if self.gene_set_min_size < 2 or self.gene_set_min_size > self.gene_set_max_size:
            raise InputError(f"need 2 <= gene_set_min_size <= gene_set_max_size, got {self.gene_set_min_size} and "
                             f"{self.gene_set_max_size}")
        for k in self.cssi_ks:
            check_positive(k, "cssi k", minimum=2)
        for n in (*self.cssi_scaling_cells, *(self.scan_cells or ()), *(self.scan_genes or ())):
            check_positive(n, "scan / scaling level", minimum=20)
        for x in self.scan_lfc:
            check_positive(x, "scan |log2FC| threshold", minimum=0)

    def fingerprint(self) -> dict:
        """The settings that change results (not the device, not the number of worker processes)."""
        d = asdict(self)
        for name in NOT_FINGERPRINTED:
            d.pop(name)
        if self.model != "own" or self.model_path is not None:  # no own model is trained
            for name in ("epochs", "d_model", "n_layers", "n_heads", "max_length", "train_batch_size"):
                d.pop(name)
        return d


def select_genes(adata_ctrl, n_genes: int, forced=()) -> np.ndarray:
    """Genes for extraction: top ``n_genes`` highly variable genes (scanpy, Seurat flavour, on
    log1p-normalised control cells; raw counts expected) plus the ``forced`` (perturbed) genes present."""
    import anndata as ad
    import scanpy as sc

    var = np.asarray(adata_ctrl.var_names).astype(str)
    forced = [g for g in forced if g in set(var)]
    if var.size <= n_genes:
        return var
    a = ad.AnnData(log_normalise(adata_ctrl.X).astype(np.float32), var=pd.DataFrame(index=var))
    sc.pp.highly_variable_genes(a, n_top_genes=n_genes, flavor="seurat")
    chosen = set(var[a.var["highly_variable"].to_numpy()]) | set(forced)
    return np.array([g for g in var if g in chosen])


def _n_pos(rec: pd.DataFrame, ref: str, score: str) -> int:
    r = rec[(rec["reference"] == ref) & (rec["score"] == score)]
    return int(r["n_positive"].iloc[0]) if len(r) and pd.notna(r["n_positive"].iloc[0]) else 0


def run_interpretation(data, out: str | os.PathLike | None = None, config: InterpretConfig | None = None, *,
                       model=None, references: dict[str, Reference] | None = None, tfs=None, resume: bool = False,
                       overwrite: bool = False, table_format: str = "parquet") -> InterpretResult:
    """Run every registered analysis and write tables, ``summary.json`` and ``report.html``.

    Parameters
    ----------
    data
        Cells x genes **raw counts** of a perturbation screen with ``obs[config.perturbation_key]`` (control
        cells labelled ``config.control``): an AnnData, a dataset name (``"papalexi2021"``) or an ``.h5ad`` path.
    out
        Output folder (``None``: a temporary folder, nothing kept); follows the run contract of
        :func:`perturblab.runs.open_run`.
    config
        :class:`InterpretConfig` (model, data keys, analysis settings).
    model
        A :class:`~perturblab.interpret.models.GeneTokenModel` adapter to use instead of ``config.model`` (its
        weights' checksum enters the fingerprint).
    references, tfs
        Reference networks and the TF list; default: loaded through :mod:`perturblab.datasets`
        (``config.references`` and Lambert 2018).
    resume, overwrite, table_format
        Run contract and table format (``"parquet"`` or ``"csv"``).

    Returns
    -------
    InterpretResult

    Raises
    ------
    MissingKeyError, UnknownNameError, InputError
        Missing columns, NaN perturbation labels, too few control cells, invalid settings, negative counts.
    RunFolderError, SettingsMismatchError
        ``out`` cannot be used as asked.

    Examples
    --------
    >>> from perturblab import interpret
    >>> cfg = interpret.InterpretConfig(cells_per_group=60, n_cells=200, epochs=1, d_model=32, n_layers=2)
    >>> res = interpret.run_interpretation("papalexi2021", "results/interpret", cfg)  # doctest: +SKIP
    >>> res.summary["verdict"]["passed"]  # doctest: +SKIP
    """
    import tempfile

    from .. import datasets
    from .._device import check_device
    from .._validation import check_counts
    from ..runs import UnitStore, data_checksum, open_run
    from . import stages
    from .ablation import AblationResult, ablation_effects, rank_heads
    from .analyses import AnalysisContext, run_analyses
    from .findings import apply_verdict, data_caveat, register_tests
    from .layer_pass import analyse_layers, extract_layers, layer_summary_scores, load_counts
    from .registry_rows import add_rows
    from .report import build_report
    from .selection import (
        LayerSelection,
        candidate_names,
        nested_cv_selection,
        prespecified_score,
        selected_scores,
    )
    from .stats import Registry

    cfg = config or InterpretConfig()
    check_device(cfg.device)
    if table_format not in TABLE_FORMATS:
        raise InputError(f"table format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}")
    source = data if isinstance(data, str | os.PathLike) else "AnnData given in Python"
    adata = datasets.load(data)
    labels = check_labels(adata, cfg.perturbation_key, "perturbation")
    if cfg.strata_key is not None:
        check_obs_key(adata, cfg.strata_key, "CSSI stratum")
    check_counts(adata.X, "adata.X")
    n_ctrl = int((labels == cfg.control).sum())
    if n_ctrl < 20:
        from .._validation import check_values_present

        check_values_present([cfg.control], set(labels), f"control (in adata.obs[{cfg.perturbation_key!r}])")
        raise InputError(f"{n_ctrl} control cells labelled {cfg.control!r} in obs[{cfg.perturbation_key!r}]; "
                         "need >= 20")
    settings = cfg.fingerprint()
    if model is not None:
        settings["model"] = f"{type(model).__name__} given in Python"
        settings["model_weights"] = stages.model_checksum(model)
    elif cfg.model_path is not None:
        settings["model_files"] = stages.files_checksum(cfg.model_path)
    tmp = tempfile.TemporaryDirectory(prefix="perturblab-interpret-") if out is None else None
    run = open_run(tmp.name if tmp else str(out), "interpret", settings, data_checksum(adata), resume=resume,
                   overwrite=overwrite)
    store = UnitStore(run)
    st = stages.Stages(store)
    data_info = {"source": str(source), "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars),
                 "n_perturbations": int(len(set(labels)) - 1), "n_control": n_ctrl}
    adata = stages.subsample(adata, cfg)
    data_info["n_cells_used"] = int(adata.n_obs)
    labels = adata.obs[cfg.perturbation_key].astype(str).to_numpy()
    is_ctrl = labels == cfg.control
    rng = np.random.default_rng(cfg.random_state)
    ctrl_idx = np.flatnonzero(is_ctrl)
    if model is None:
        model = (stages.own_model(store, adata[ctrl_idx].copy(), np.asarray(adata.var_names).astype(str), cfg)
                 if cfg.model == "own" and cfg.model_path is None else stages.load_checkpoint(cfg))
    if ctrl_idx.size > cfg.n_cells:
        ctrl_idx = np.sort(rng.choice(ctrl_idx, cfg.n_cells, replace=False))
    ctrl = adata[ctrl_idx].copy()
    perturbed = sorted(set(labels[~is_ctrl]))
    match = model.match_genes(ctrl, select_genes(ctrl, cfg.n_genes, forced=perturbed))
    genes = match.kept  # genes without a token in the model's vocabulary are left out, and said so
    # ctrl keeps every gene (library sizes, model tokenizers); X is the log-normalised gene subset
    X = log_normalise(ctrl[:, genes].X, library_size=np.asarray(ctrl.X.sum(axis=1)).ravel())
    if references is None:
        references = {n: load_reference(n) for n in cfg.references}
    if tfs is None:
        tfs = load_tf_list()
    refs = list(references.values())
    directed = [r for r in refs if r.directed]
    write_json(run.file("config.json"), {**asdict(cfg), "n_control_cells_used": int(ctrl.n_obs),
                                         "n_genes_used": int(genes.size), "model_class": type(model).__name__,
                                         "n_layers_used": model.n_layers, "n_heads_used": model.n_heads,
                                         "genes_without_token": match.dropped.tolist()})

    # 4. DE targets (parallel over perturbations)
    de = st.table("de_targets", lambda: de_targets(adata, cfg.perturbation_key, cfg.control, genes=genes,
                                                   lfc_threshold=cfg.de_lfc, alpha=cfg.de_alpha,
                                                   min_detection=cfg.de_min_detection, n_jobs=cfg.n_jobs))
    targets = TargetLabels(de, genes)

    # 1-3. attention streamed to disk one layer at a time; per-layer recovery and perturbation AUROC
    layer_paths = extract_layers(store, model, ctrl, genes, batch_size=cfg.batch_size, device=cfg.device)
    per_layer = analyse_layers(store, layer_paths, refs, tfs, de, genes, n_jobs=cfg.n_jobs)
    corr = correlation_scores(X, genes)
    feats = gene_features(X, genes)
    ref_for_degree = max(directed, key=lambda r: len(r.edges)) if directed else None
    base = baseline_scores(feats, ref_for_degree.edges if ref_for_degree is not None else None)
    rec = pd.concat([per_layer["recovery"], st.table("reference_recovery_correlation",
                                                     lambda: reference_recovery([corr], refs, tfs=tfs))],
                    ignore_index=True)

    # the tested attention score: pre-specified, or nested cross-validation over perturbations
    L = model.n_layers
    prespec = prespecified_score(cfg.layer, cfg.layer_summary, L)
    att_pp = per_layer["perturbation"]
    if cfg.layer_selection == "nested-cv":
        selection = nested_cv_selection(att_pp, candidate_names(L), prespec, cfg.layer_folds, cfg.random_state)
    else:
        selection = LayerSelection("prespecified", prespec, [prespec])

    def load_candidate(name: str):
        layer, summary = int(name.split()[1][1:]), name.split()[2]
        return layer_summary_scores(layer_paths[layer], layer, summary)

    tested, final = selected_scores(selection, load_candidate)
    log.info("attention score under test: %s", selection.describe())
    per_pert = pd.concat([att_pp, *([perturbation_auroc([tested], de, targets=targets)]
                                     if selection.method == "nested-cv" else []),
                          perturbation_auroc([corr, *base], de, targets=targets)], ignore_index=True)
    means = per_pert.groupby("score")["auroc"].mean() if len(per_pert) else pd.Series(dtype=float)
    tested_rows = per_pert[per_pert["score"] == tested.name]
    n_rankable = int(tested_rows["auroc"].notna().sum())
    comps = st.table("perturbation_comparisons", lambda: stages.comparisons(
        per_pert, tested.name, corr.name, [s.name for s in base], cfg))

    # 6. incremental value
    pairs = build_pairs(de, feats, {"attention": tested, "correlation": corr})
    rankable = pairs["perturbation"].nunique()
    if rankable >= 2 and pairs["is_target"].any() and not pairs["is_target"].all():
        inc = st.table("incremental", lambda: incremental_value(pairs, n_boot=cfg.n_bootstrap,
                                                                random_state=cfg.random_state))
    else:
        log.info("incremental value skipped: %d rankable perturbation(s) with DE targets (need >= 2)", rankable)
        inc = pd.DataFrame()

    # 7. confounds and nulls (the single-matrix score `final`)
    conf = st.table("confound_r2", lambda: pd.concat([confound_r2(final, feats, random_state=cfg.random_state),
                                                       confound_r2(corr, feats, random_state=cfg.random_state)]))
    eval_refs = [r for r in directed if _n_pos(rec, r.name, corr.name) >= 3]
    resid = st.table("residualisation",
                     lambda: stages.residualisation([final, corr], feats, eval_refs or refs, tfs, cfg))
    nulls = st.table("nulls", lambda: stages.nulls([final, corr], eval_refs, tfs, cfg))

    # 8. causal ablation: heads ranked by reference + perturbation AUROC, downstream outcomes
    att_rec = rec[rec["kind"].eq("attention") & ~rec["head"].isin(["mean", "max"])]
    heads = rank_heads(att_rec[["layer", "head", "auroc"]],
                       per_layer["perturbation_heads"][["layer", "head", "auroc"]], method=cfg.head_ranking,
                       entropy=per_layer["entropy"]) if len(att_rec) else pd.DataFrame()
    abl_key = {"stage": "ablation"}
    if store.done(abl_key):
        u = store.load(abl_key)
        abl = AblationResult(u.tables["runs"], u.tables["perturbations"], **u.summary)
    elif len(heads):
        log.info("[stage] ablation")
        abl = stages.ablation(model, ctrl, genes, layer_paths, load_counts(store), heads, targets,
                              final.head if final.head in ("mean", "max") else "mean", cfg)
        store.save(abl_key, tables={"runs": abl.runs, "perturbations": abl.perturbations},
                   summary={"ks": abl.ks, "ranking": [list(h) for h in abl.ranking], "n_layers": abl.n_layers,
                            "regulatory_layers": abl.regulatory_layers})
    else:
        abl = None
    if abl is not None:
        abl.ranking = [(int(h[0]), int(h[1])) for h in abl.ranking]
    effects = ablation_effects(abl) if abl is not None and len(abl.runs) > 1 else None

    # 10. CSSI
    cssi_rec, cssi_null, strata = stages.cssi(st, model, ctrl, X, genes, corr, final, refs, eval_refs, tfs, cfg)

    # 12. the issue-14 analyses (robustness, positive findings, CSSI scans, beyond the paper), each a stored stage
    extra = run_analyses(AnalysisContext(
        st=st, cfg=cfg, adata=adata, ctrl=ctrl, X=X, genes=genes, model=model, layer_paths=layer_paths,
        tested=tested, final=final, corr=corr, feats=feats, base=base, refs=refs, eval_refs=eval_refs,
        tfs=None if tfs is None else list(tfs), de=de, per_pert=per_pert, pairs=pairs, strata=strata))

    # 11. registry and verdict
    reg = Registry(alpha=cfg.alpha)
    register_tests(reg, rec=rec, comps=comps, inc=inc, nulls=nulls, effects=effects, cssi_null=cssi_null,
                   selection=selection, corr_name=corr.name, n_perturbations=n_rankable,
                   min_perturbations=cfg.min_perturbations)
    add_rows(reg, extra.rows)
    registry, claims = reg.table(), reg.claims()
    verd = apply_verdict(registry, comps, inc, resid, nulls, effects, selection, n_rankable, cfg.min_perturbations,
                         cfg.alpha)
    data_info.update(n_control_used=int(ctrl.n_obs), n_genes_used=int(genes.size),
                     n_perturbed_in_genes=len(targets), n_rankable=n_rankable, de_lfc=cfg.de_lfc,
                     de_alpha=cfg.de_alpha, de_min_detection=cfg.de_min_detection,
                     n_reference_positives=max((_n_pos(rec, r.name, corr.name) for r in directed), default=None))
    summary = {
        "model": type(model).__name__, "attention_score_tested": tested.name,
        "layer_selection": selection.to_dict(), "data": data_info,
        "caveats": data_caveat(data_info, cfg.min_perturbations),
        "n_control_cells": int(ctrl.n_obs),
        "n_genes": int(genes.size), "n_genes_without_token": match.n_dropped, "gene_vocabulary": match.describe(),
        "perturbed_genes_without_token": sorted(set(perturbed) & set(match.dropped.tolist())),
        "n_rankable_perturbations": n_rankable, "min_perturbations": cfg.min_perturbations,
        "mean_perturbation_auroc": {k: float(x) for k, x in means.items()},
        "residualisers": {"primary": "ols", "secondary": "gbdt"},
        "ablation": effects.to_dict() if effects is not None else None,
        "n_tests": len(registry), "n_confirmatory": int(registry["confirmatory"].sum()) if len(registry) else 0,
        "verdict": verd.to_dict(),
        "analyses": list(cfg.analyses), "analyses_not_run": extra.notes,
    }
    tables = {"reference_recovery": rec, "de_targets": de, "perturbation_auroc": per_pert,
              "perturbation_auroc_heads": per_layer["perturbation_heads"], "layer_selection": selection.folds,
              "perturbation_comparisons": comps, "incremental": inc, "confound_r2": conf, "residualisation": resid,
              "nulls": nulls, "head_ranking": heads, "ablation": abl.runs if abl is not None else pd.DataFrame(),
              "ablation_perturbations": abl.perturbations if abl is not None else pd.DataFrame(),
              "cssi_recovery": cssi_rec, "cssi_null_stress": cssi_null, "registry": registry, "claims": claims,
              "verdict": verd.table(), **extra.tables}
    if tmp is not None:
        tmp.cleanup()
        return InterpretResult(Path(), tables, summary)
    for name, df in tables.items():
        if len(df):
            write_table(run.file(f"{name}.{table_format}"), df)
    write_json(run.file("summary.json"), summary)
    build_report(tables, summary).write(run.file("report.html"))
    log.info("report: %s", run.file("report.html"))
    return InterpretResult(run.path, tables, summary, dict(layer_paths))
