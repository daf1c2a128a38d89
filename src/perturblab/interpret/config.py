"""Settings of an interpretability run (:class:`InterpretConfig`): every field that changes results enters the run's
fingerprint (:mod:`perturblab.runs`); see :func:`~perturblab.interpret.pipeline.run_interpretation`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .._validation import check_fraction, check_positive
from ..exceptions import InputError, UnknownNameError
from .catalogue import ANALYSES, default_analyses
from .perturbation import DEFAULT_MIN_DETECTION
from .selection import SELECTIONS, SUMMARIES
from .stats import MIN_PERTURBATIONS

__all__ = ["MODEL_KINDS", "NOT_FINGERPRINTED", "InterpretConfig"]

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
