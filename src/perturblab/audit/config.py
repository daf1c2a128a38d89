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
    "SEARCH_MODES",
    "CGD_STRENGTHS",
    "GENE_COUNTS",
]

#: The six classifiers of :mod:`perturblab.classifiers` (registry names), in report order.
CLASSIFIERS = ("sctype", "chetah", "svm", "random_forest", "mlp", "celltypist")
#: Attacks an audit can run on every (classifier, cluster[, modification]).
ATTACKS = ("single_gene", "max_change", "cgd", "grid", "random_walk")
#: Evaluations beyond the attacks (Part 2 of the audit); none by default.
EVALUATIONS = ("robustness", "detectability", "transferability", "defence")
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
        Registry names (:data:`CLASSIFIERS`; default all six).
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

    def __post_init__(self):
        for name in ("classifiers", "modifications", "attacks", "evaluations", "spaces", "drop_labels"):
            setattr(self, name, tuple(str(v) for v in _as_tuple(getattr(self, name))))
        if self.clusters is not None:
            self.clusters = tuple(str(c) for c in _as_tuple(self.clusters))
        self.cgd_strengths = tuple(float(v) for v in _as_tuple(self.cgd_strengths))
        self.gene_counts = tuple(int(v) for v in _as_tuple(self.gene_counts))
        # "auto" is the default: dropped so that equivalent settings compare equal on resume
        self.search_modes = {str(k): str(v) for k, v in dict(self.search_modes).items() if str(v) != "auto"}
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~perturblab.exceptions.InputError` naming the first unknown, empty or invalid setting."""
        from ..attack.modifications import get_modification

        _check_subset(self.classifiers, CLASSIFIERS, "classifier")
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

    def search_mode(self, classifier: str) -> str:
        """The single-gene search mode requested for ``classifier`` (``"auto"`` by default)."""
        return self.search_modes.get(classifier, "auto")

    def classifier_kwargs(self, name: str) -> dict:
        """Constructor arguments the audit sets for classifier ``name``: scType's PBMC3k label map on PBMC3k."""
        from ..classifiers import PBMC3K_LABEL_MAP

        return {"label_map": PBMC3K_LABEL_MAP} if name == "sctype" and self.data == "pbmc3k" else {}

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
