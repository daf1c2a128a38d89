"""Settings of a robustness audit (:class:`AuditConfig`) and their validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..exceptions import InputError, UnknownNameError

__all__ = [
    "AuditConfig",
    "CLASSIFIERS",
    "ATTACKS",
    "EVALUATIONS",
    "SPACES",
    "SPLITS",
    "SEARCH_MODES",
    "CGD_STRENGTHS",
    "GENE_COUNTS",
]

#: The six classifiers of :mod:`perturblab.classifiers` (registry names), in report order.
CLASSIFIERS = ("sctype", "chetah", "svm", "random_forest", "mlp", "celltypist")
#: Attacks an audit can run on every (classifier, cluster[, modification]); ``pgd`` and ``fgsm`` (white-box,
#: under biological budgets) run on the differentiable classifiers only.
ATTACKS = ("single_gene", "max_change", "cgd", "grid", "random_walk", "pgd", "fgsm")
#: Evaluations beyond the attacks (Part 2 of the audit); none by default.
EVALUATIONS = ("robustness", "detectability", "transferability", "defence", "abstention", "strength", "label_noise")
#: How the labelled cells are split into train and test halves.
SPLITS = ("stratified", "anchor")
#: White-box budgets: numbers of genes changed (L0) and amplitudes (fraction of each gene's allowed range).
WHITEBOX_KS = (1, 2, 5, 10, 20, 50)
WHITEBOX_AMPLITUDES = (1.0,)
#: Training-label noise levels and modes of the label-noise evaluation.
NOISE_RATES = (0.0, 0.05, 0.1, 0.2)
NOISE_MODES = ("uniform", "similar")
#: Where an attack writes its modification: the classifier's model input, or the raw counts
#: (then the classifier's own ``preprocess`` turns them into model input).
SPACES = ("model_input", "raw_counts")
SEARCH_MODES = ("auto", "exhaustive", "dichotomic")
#: CGD step sizes alpha = epsilon of the robustness curves (0 = no attack).
CGD_STRENGTHS = (0.0, 0.1, 0.5, 1.0, 2.0, 10.0)
#: Numbers of signature genes modified together along the gene-count robustness curve.
GENE_COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)

_MODIFICATION_ATTACKS = ("single_gene", "max_change", "grid", "random_walk")


@dataclass
class AuditConfig:
    """What :func:`perturblab.audit.run_audit` does.

    Parameters
    ----------
    data
        Dataset name (``"pbmc3k"``, default; ``"kang2018"``; see :data:`perturblab.datasets.DATASETS`) or the
        path of an ``.h5ad`` file of raw counts. With ``run_audit(data=adata)`` it names the AnnData given.
    label_key
        ``obs`` column with the cell-type labels (clusters); ``"cell_type"`` by default.
    classifiers
        Classifier names: registry names (:data:`perturblab.classifiers.CLASSIFIERS`: perturblab's six, the
        default, and names added with :func:`~perturblab.classifiers.register_classifier`, e.g. ``"transformer"``
        once :mod:`perturblab.bridges` is imported), aliases of ``registry_names``, and names of fitted classifiers
        (``classifier_checksums``).
    clusters
        Clusters to attack (default ``None``: every cluster of the test half).
    modifications
        Modification names of :mod:`perturblab.attack.modifications` (default perc1, perc99).
    attacks
        Attacks among :data:`ATTACKS` (default single-gene only).
    evaluations
        Extra evaluations among :data:`EVALUATIONS` (default none).
    spaces
        :data:`SPACES` the attacks run in (default model input only).
    search_modes
        Single-gene search mode per classifier, ``"auto"`` (default), ``"exhaustive"`` or
        ``"dichotomic"``; a classifier missing from the dict uses ``"auto"`` (see
        :func:`perturblab.audit.units.choose_mode`).
    seed
        Seed of the split, the classifiers and every random choice of the attacks.
    cgd_strength
        CGD step size alpha = epsilon of the CGD attacks (1.0, as the paper's vignettes).
    cgd_n_genes
        Number of signature genes CGD walks through (anchor: 500 in the paper; 100 here to bound time).
    cgd_strengths, gene_counts
        Strength grids of the robustness curves.
    grid_genes, walk_genes
        Genes combined by the grid (all ``(M + 1) ** G`` combinations) and random-walk attacks: the
        cluster's top one-vs-rest marker genes (Wilcoxon on the test half).
    test_size
        Fraction of labelled cells in the test half (0.5).
    drop_labels
        Labels whose cells are removed before the split (PBMC3k's QC failures ``UNDETERMINED``).
    min_cells
        Keep genes detected in at least this many cells (3).
    n_bootstrap
        Resamples of the test cells for the 95% intervals of accuracy and macro-F1 (100; 0: none).
    split
        ``"stratified"`` (default: :func:`~perturblab.audit.data.stratified_split`) or ``"anchor"``:
        adverSCarial's published PBMC3k halves (:func:`perturblab.datasets.pbmc3k_split`; PBMC3k only).
    label_map
        scType's map from ScTypeDB names to the dataset's labels: a shipped map's name (``"pbmc3k"``, the
        broad map, default on PBMC3k; ``"pbmc3k_strict"``), or the path of a CSV/TSV table (columns
        ``sctype_name``, ``label``); None elsewhere (scType's names then count as errors unless they equal
        the dataset's labels). See :mod:`perturblab.classifiers.label_maps`.
    whitebox_ks, whitebox_amplitudes, whitebox_bounds
        White-box budgets (``pgd`` / ``fgsm``): numbers of genes changed, amplitudes (fraction of each gene's
        allowed range) and the allowed range (``"range"``: observed min/max; ``"percentile"``: perc1/perc99).
    noise_rates, noise_modes
        Label-noise evaluation: fractions of training labels changed, and how (``"uniform"`` or to the
        ``"similar"`` cell type).
    strength_genes
        Strength-response evaluation: the cluster's top marker genes modified one at a time.
    registry_names
        ``{name: registry name}`` for classifiers audited under another name (``classifiers={"rf":
        "random_forest"}``).
    classifier_checksums
        ``{name: checksum}`` of the fitted classifiers the user passed (:func:`run_audit` fills it from
        ``classifiers={"mine": fitted}`` or the command line's ``--classifier-file``): a content checksum of the
        estimator or of its file (:func:`perturblab.classifiers.files.classifier_checksum`), so that a resumed
        run refuses a changed classifier. These classifiers are evaluated and attacked, never (re)trained.
    """

    data: str = "pbmc3k"
    label_key: str = "cell_type"
    classifiers: tuple[str, ...] = CLASSIFIERS
    clusters: tuple[str, ...] | None = None
    modifications: tuple[str, ...] = ("perc1", "perc99")
    attacks: tuple[str, ...] = ("single_gene",)
    evaluations: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ("model_input",)
    search_modes: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    cgd_strength: float = 1.0
    cgd_n_genes: int = 100
    cgd_strengths: tuple[float, ...] = CGD_STRENGTHS
    gene_counts: tuple[int, ...] = GENE_COUNTS
    grid_genes: int = 4
    walk_genes: int = 30
    test_size: float = 0.5
    drop_labels: tuple[str, ...] = ("UNDETERMINED",)
    min_cells: int = 3
    n_bootstrap: int = 100
    split: str = "stratified"
    label_map: str | None = "default"
    whitebox_ks: tuple[int, ...] = WHITEBOX_KS
    whitebox_amplitudes: tuple[float, ...] = WHITEBOX_AMPLITUDES
    whitebox_bounds: str = "range"
    noise_rates: tuple[float, ...] = NOISE_RATES
    noise_modes: tuple[str, ...] = NOISE_MODES
    strength_genes: int = 50
    registry_names: dict[str, str] = field(default_factory=dict)
    classifier_checksums: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("classifiers", "modifications", "attacks", "evaluations", "spaces", "drop_labels"):
            setattr(self, name, tuple(str(v) for v in _as_tuple(getattr(self, name))))
        if self.clusters is not None:
            self.clusters = tuple(str(c) for c in _as_tuple(self.clusters))
        self.cgd_strengths = tuple(float(v) for v in _as_tuple(self.cgd_strengths))
        self.gene_counts = tuple(int(v) for v in _as_tuple(self.gene_counts))
        self.whitebox_ks = tuple(int(v) for v in _as_tuple(self.whitebox_ks))
        self.whitebox_amplitudes = tuple(float(v) for v in _as_tuple(self.whitebox_amplitudes))
        self.noise_rates = tuple(float(v) for v in _as_tuple(self.noise_rates))
        self.noise_modes = tuple(str(v) for v in _as_tuple(self.noise_modes))
        if self.label_map == "default":  # the broad map on PBMC3k, none elsewhere (recorded as resolved)
            self.label_map = "pbmc3k" if self.data == "pbmc3k" else None
        # "auto" is the default: dropped so that equivalent settings compare equal on resume
        self.search_modes = {str(k): str(v) for k, v in dict(self.search_modes).items() if str(v) != "auto"}
        self.registry_names = {str(k): str(v) for k, v in dict(self.registry_names).items() if str(k) != str(v)}
        self.classifier_checksums = {str(k): str(v) for k, v in dict(self.classifier_checksums).items()}
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~perturblab.exceptions.InputError` naming the first unknown, empty or invalid setting."""
        from ..attack.modifications import get_modification
        from ..classifiers.registry import CLASSIFIERS as REGISTRY

        for name in self.classifiers:
            if name not in self.classifier_checksums:
                _check_subset([self.registry_name(name)], REGISTRY, "classifier")
        if len(set(self.classifiers)) != len(self.classifiers):
            raise InputError(f"classifier names must be unique, got {list(self.classifiers)}")
        _check_subset(self.attacks, ATTACKS, "attack")
        _check_subset(self.evaluations, EVALUATIONS, "evaluation")
        _check_subset(self.spaces, SPACES, "space")
        _check_subset(self.search_modes.values(), SEARCH_MODES, "search mode")
        _check_subset(self.search_modes.keys(), self.classifiers, "classifier in search_modes")
        for what in ("classifiers", "attacks", "spaces"):
            if not getattr(self, what):
                raise InputError(f"{what} is empty: give at least one")
        if any(a in _MODIFICATION_ATTACKS for a in self.attacks) and not self.modifications:
            raise InputError("modifications is empty but the attacks need at least one (e.g. perc1, perc99)")
        for m in self.modifications:
            get_modification(m)  # raises an error listing the valid names
        if not 0 < self.test_size < 1:
            raise InputError(f"test_size must be in (0, 1), got {self.test_size}")
        for name in ("cgd_n_genes", "grid_genes", "walk_genes"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.n_bootstrap < 0:
            raise InputError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}")
        if self.min_cells < 0:
            raise InputError(f"min_cells must be >= 0, got {self.min_cells}")
        if not self.cgd_strength > 0:
            raise InputError(f"cgd_strength must be > 0, got {self.cgd_strength}")
        if "defence" in self.evaluations and "single_gene" not in self.attacks:
            raise InputError("the defence evaluation augments training data with single-gene hits: add single_gene")
        if "transferability" in self.evaluations and len(self.classifiers) < 2:
            raise InputError("the transferability evaluation needs at least 2 classifiers")
        _check_subset([self.split], SPLITS, "split")
        if self.split == "anchor" and self.data != "pbmc3k":
            raise InputError("split 'anchor' is adverSCarial's published PBMC3k split: use it with --data pbmc3k, or "
                             "--split stratified")
        _check_subset([self.whitebox_bounds], ("range", "percentile"), "white-box bounds")
        _check_subset(self.noise_modes, ("uniform", "similar"), "label-noise mode")
        if not self.whitebox_ks or min(self.whitebox_ks) < 1:
            raise InputError(f"whitebox_ks must be numbers of genes >= 1, got {list(self.whitebox_ks)}")
        if not self.whitebox_amplitudes or not all(0 < a <= 1 for a in self.whitebox_amplitudes):
            raise InputError(f"whitebox_amplitudes must be in (0, 1], got {list(self.whitebox_amplitudes)}")
        if not self.noise_rates or not all(0 <= r < 1 for r in self.noise_rates):
            raise InputError(f"noise_rates must be in [0, 1), got {list(self.noise_rates)}")
        if self.strength_genes < 1:
            raise InputError(f"strength_genes must be >= 1, got {self.strength_genes}")
        if self.label_map is not None:
            from ..classifiers.label_maps import read_label_map

            read_label_map(self.label_map)  # raises naming the shipped maps, or the unreadable file

    def search_mode(self, classifier: str) -> str:
        """The single-gene search mode requested for ``classifier`` (``"auto"`` by default)."""
        return self.search_modes.get(classifier, "auto")

    def registry_name(self, name: str) -> str:
        """The registry name behind classifier ``name`` (itself unless aliased in ``registry_names``)."""
        return self.registry_names.get(name, name)

    def is_user_fitted(self, name: str) -> bool:
        """True for a fitted classifier the user passed (evaluated and attacked, never trained)."""
        return name in self.classifier_checksums

    def trainable(self) -> list[str]:
        """The classifiers the audit trains (and may retrain: defence, label noise), in order."""
        return [c for c in self.classifiers if not self.is_user_fitted(c)]

    def classifier_kwargs(self, name: str) -> dict:
        """Constructor arguments the audit sets for classifier ``name``: scType's label map."""
        sctype = self.registry_name(name) == "sctype"
        return {"label_map": self.label_map} if sctype and self.label_map is not None else {}

    def to_dict(self) -> dict:
        """JSON-serialisable settings (stored in the output folder to guard resumed runs)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    if isinstance(v, str):
        return tuple(x.strip() for x in v.split(",") if x.strip())
    return tuple(v)


def _check_subset(values, allowed, what: str) -> None:
    for v in values:
        if v not in allowed:
            raise UnknownNameError(what, v, allowed)
