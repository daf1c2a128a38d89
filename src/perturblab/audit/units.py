"""Units of work of an audit and the function that runs one.

A :class:`Unit` names one independent piece of work (e.g. "single-gene attack, perc99,
classifier mlp, cluster NK, model input, exhaustive search"); :func:`run_unit` runs it on a
:class:`Context` (one fitted classifier and its test-half data) and returns a
:class:`UnitResult` (summary and tables) that :class:`~perturblab.runs.UnitStore` persists under the
unit's :attr:`Unit.key`. Units do not depend on each other, so they run in any order, in parallel
(joblib) or on a Dask cluster (:func:`perturblab.runs.execute`), and a resumed audit skips the units
already persisted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..exceptions import InputError
from .config import AuditConfig

if TYPE_CHECKING:
    from ..classifiers.base import CellTypeClassifier
    from .detectability import Embedding

__all__ = ["Unit", "UnitResult", "Context", "run_unit", "choose_mode", "ROW_BUDGETS", "DEFAULT_ROW_BUDGET"]

#: ``"auto"`` single-gene search: the largest number of stacked rows (genes to evaluate x cluster
#: cells) scored exhaustively, per classifier type (from measured per-row costs on PBMC3k: scType's
#: linear fast path is free, the random forest's cached-path fast path (~1 s for 8,500 genes x 355
#: cells), the MLP's rank-one path, the 20-gene SVMs, CHETAH's incremental ranks and CellTypist's rank-one
#: path are cheap enough for every PBMC3k cluster; the full audit's time is measured by benchmarks/audit_full.py).
ROW_BUDGETS = {"ScTypeClassifier": float("inf"), "RandomForestClassifier": 5_000_000, "MLPClassifier": 1_500_000,
               "SVMClassifier": 250_000, "ChetahClassifier": 1_000_000, "CellTypistClassifier": 10_000_000}
#: Budget of any other classifier.
DEFAULT_ROW_BUDGET = 20_000
#: Max-change attacks drop (instead of splitting) flipping halves of at most this many genes, as
#: adverSCarial's ``maxChangeOverview`` does for speed (``advMaxChange``'s own default is 1).
MAX_CHANGE_SPLIT_SIZE = 100


@dataclass(frozen=True)
class Unit:
    """One unit of work. ``kind`` is ``"attack"`` or ``"robustness"``.

    Attack units: ``attack`` (single_gene, max_change, cgd, grid, random_walk), ``cluster``,
    ``modification`` ("" for CGD), ``space`` (model_input | raw_counts), ``mode`` (search mode of
    single-gene: exhaustive | dichotomic; "" otherwise). Robustness units: ``axis`` (genes | cgd)
    and ``strength``.
    """

    kind: str
    classifier: str
    attack: str = ""
    cluster: str = ""
    modification: str = ""
    space: str = "model_input"
    mode: str = ""
    axis: str = ""
    strength: float | None = None

    @property
    def key(self) -> dict:
        """The unit's fields: its identity in the run's :class:`~perturblab.runs.UnitStore`."""
        return asdict(self)

    def __str__(self) -> str:
        parts = [self.kind, self.classifier, self.attack or self.axis, self.cluster, self.modification, self.space,
                 self.mode, "" if self.strength is None else f"strength {self.strength:g}"]
        return " / ".join(p for p in parts if p)


@dataclass
class UnitResult:
    """What a unit produced: a one-row ``summary`` (JSON values) and tidy ``tables``."""

    summary: dict
    tables: dict[str, pd.DataFrame]


@dataclass
class Context:
    """What the units of one classifier need (shipped once to every worker).

    Attributes
    ----------
    name
        Registry name of the classifier.
    classifier
        The fitted classifier.
    X
        Test-half model input (cells x ``classifier.genes_``, dense float32).
    clusters
        Cluster (cell-type) label of each test cell.
    counts
        Test-half raw counts (cells x ``var_names``, dense float32); ``None`` when no unit
        attacks the raw counts.
    var_names
        Genes of ``counts``.
    cgd_genes
        Gene order of the CGD attacks (signature ranking over all genes; see :meth:`cgd_genes_in`).
    embedding
        :class:`~perturblab.audit.detectability.Embedding` fitted on ``X`` (detectability), or ``None``.
    markers
        ``{cluster: (gene indices, signs)}`` one-vs-rest marker ranking (robustness curves).
    config
        The audit's settings (seed, CGD step, genes combined by grid and random walk, ...).
    attacked
        The clusters the audit attacks.
    keep_cgd_values
        Keep CGD's attacked values (the transferability evaluation replays them on other classifiers).
    """

    name: str
    classifier: CellTypeClassifier
    X: np.ndarray
    clusters: np.ndarray
    counts: np.ndarray | None = None
    var_names: np.ndarray | None = None
    cgd_genes: list = field(default_factory=list)
    embedding: Embedding | None = None
    markers: dict = field(default_factory=dict)
    config: AuditConfig = field(default_factory=AuditConfig)
    attacked: list = field(default_factory=list)
    keep_cgd_values: bool = False

    def cgd_genes_in(self, genes) -> list[str]:
        """The first ``config.cgd_n_genes`` signature genes among ``genes`` (the attacked space's columns): a
        classifier reading fewer genes (the transformer annotator's variable genes) walks through the signature
        genes it reads, never an error."""
        have = set(np.asarray(genes).astype(str))
        return [g for g in self.cgd_genes if g in have][: self.config.cgd_n_genes]

    def space(self, space: str):
        """(model, matrix, gene names) of an attack ``space``."""
        if space == "model_input":
            return self.classifier, self.X, np.asarray(self.classifier.genes_).astype(str)
        if self.counts is None:
            raise InputError("raw-count attacks need the test counts in the context (counts=None)")
        from .space import RawCountsModel

        return RawCountsModel(self.classifier, self.var_names), self.counts, np.asarray(self.var_names).astype(str)

    def model_input_rows(self, space: str, rows: np.ndarray) -> np.ndarray:
        """Rows of an attacked matrix of ``space`` turned into model input."""
        if space == "model_input":
            return rows
        return self.space(space)[0].model_input(rows)


def choose_mode(classifier, n_genes_evaluated: int, n_cells: int, requested: str = "auto") -> str:
    """Single-gene search mode of one (classifier, cluster): ``requested`` unless ``"auto"``.

    ``"auto"`` picks ``"exhaustive"`` (exact: every flipping gene) when ``n_genes_evaluated *
    n_cells`` is within the classifier type's :data:`ROW_BUDGETS` entry (default
    :data:`DEFAULT_ROW_BUDGET`), else ``"dichotomic"`` (adverSCarial's search: ~200 cluster
    evaluations, may miss genes masked by others). With the defaults on PBMC3k: scType, the random
    forest, the SVM, CHETAH and CellTypist always exhaustive (each has an exact or near-tie-checked fast path,
    :mod:`perturblab.attack._fastpath`), the MLP exhaustive on clusters of up to ~110 cells (``row_budget``
    bounds the time of the full seven-classifier audit, ``benchmarks/audit_full.py``). The rule is
    deterministic (no timing), so a resumed audit plans the same units; the mode is recorded with every
    result. A classifier class may set its own ``row_budget``.
    """
    if requested != "auto":
        return requested
    budget = getattr(type(classifier), "row_budget", None)  # a classifier may declare its own (the transformer)
    if budget is None:
        budget = ROW_BUDGETS.get(type(classifier).__name__, DEFAULT_ROW_BUDGET)
    return "exhaustive" if n_genes_evaluated * n_cells <= budget else "dichotomic"


def run_unit(ctx: Context, unit: Unit) -> UnitResult:
    """Run ``unit`` on ``ctx`` (the unit function of :func:`perturblab.runs.execute`)."""
    t0 = time.perf_counter()
    if unit.kind == "attack":
        summary, tables = _ATTACKS[unit.attack](ctx, unit)
    elif unit.kind == "robustness":
        from .robustness import robustness_unit

        summary, tables = robustness_unit(ctx, unit)
    elif unit.kind == "strength":
        summary, tables = _strength(ctx, unit)
    else:
        raise InputError(f"unknown unit kind {unit.kind!r}")
    summary = {**_keys(unit), **summary, "unit_wall_time_s": time.perf_counter() - t0}
    return UnitResult(summary, tables)


def _keys(unit: Unit) -> dict:
    if unit.kind == "attack":
        return {"classifier": unit.classifier, "attack": unit.attack, "cluster": unit.cluster,
                "modification": unit.modification, "space": unit.space, "mode": unit.mode}
    if unit.kind == "strength":
        return {"classifier": unit.classifier}
    return {"classifier": unit.classifier, "axis": unit.axis, "strength": unit.strength}


def _with_keys(unit: Unit, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the unit's key columns (classifier, attack, cluster, ...) in front."""
    return pd.concat([pd.DataFrame(_keys(unit), index=df.index), df], axis=1)


def _genes_table(unit: Unit, genes, **cols) -> pd.DataFrame:
    return _with_keys(unit, pd.DataFrame({"gene": list(genes), **cols}))


def _modified_rows(ctx: Context, unit: Unit, X, gene_idx) -> tuple[np.ndarray, np.ndarray]:
    """(before, after): the cluster's rows of ``X`` without and with ``unit.modification`` on ``gene_idx``."""
    from ..attack.modifications import get_modification

    mask = ctx.clusters == unit.cluster
    before = X[mask]
    after = before.copy()
    after[:, gene_idx] = get_modification(unit.modification, random_state=ctx.config.seed).values(
        X, mask, gene_idx)
    return before, after


def _mapped(ctx: Context, label: str) -> str:
    return str(ctx.classifier.map_labels([label])[0])


def _detect(ctx: Context, unit: Unit, before, after, **keys) -> pd.DataFrame:
    """Detectability row of one perturbation of the cluster's rows (see :mod:`perturblab.audit.detectability`)."""
    from .detectability import perturbation_size

    if ctx.embedding is None:
        raise InputError("detectability needs the embedding in the context (embedding=None)")
    before_in = ctx.model_input_rows(unit.space, before)
    after_in = ctx.model_input_rows(unit.space, after)
    row = {**_keys(unit), **keys, **perturbation_size(before, after),
           **ctx.embedding.shift(before_in, after_in, unit.cluster, umap=unit.attack == "cgd")}
    return pd.DataFrame([row])


def _single_gene(ctx: Context, unit: Unit):
    from ..attack import single_gene_attack

    model, X, genes = ctx.space(unit.space)
    seed = ctx.config.seed
    res = single_gene_attack(model, X, ctx.clusters, unit.cluster, unit.modification, mode=unit.mode,
                             gene_names=genes, random_state=seed)
    t = res.table
    found = _genes_table(unit, t["gene"], original_label=res.baseline_label, new_label=t["new_label"].astype(str),
                         new_label_mapped=[_mapped(ctx, x) for x in t["new_label"].astype(str)],
                         score=t["score"].astype(float), n_classifier_calls=res.n_classifier_calls)
    summary = {"original_label": res.baseline_label, "original_label_mapped": _mapped(ctx, res.baseline_label),
               "original_score": res.baseline_score, "n_found": len(t), "success": len(t) > 0,
               "n_genes": res.n_genes, "n_genes_evaluated": res.n_genes_evaluated,
               "n_genes_skipped": res.n_genes_skipped, "n_classifier_calls": res.n_classifier_calls,
               "n_batched_calls": res.n_batched_calls, "attack_wall_time_s": res.wall_time_s}
    tables = {"genes": found}
    if ctx.embedding is not None and len(t):
        pos = {g: i for i, g in enumerate(genes)}
        det = [_detect(ctx, unit, *_modified_rows(ctx, unit, X, [pos[x] for x in str(g).split("__")]), gene=str(g))
               for g in t["gene"]]
        tables["detectability"] = pd.concat(det, ignore_index=True)
    return summary, tables


def _max_change(ctx: Context, unit: Unit):
    from ..attack.max_change import max_change_attack

    model, X, genes = ctx.space(unit.space)
    seed = ctx.config.seed
    res = max_change_attack(model, X, ctx.clusters, unit.cluster, unit.modification, gene_names=genes,
                            max_split_size=MAX_CHANGE_SPLIT_SIZE, random_state=seed)
    summary = {"original_label": res.baseline_label, "original_label_mapped": _mapped(ctx, res.baseline_label),
               "n_found": len(res.genes), "success": res.check_label != res.baseline_label,
               "n_genes": res.n_candidates, "check_label": res.check_label,
               "n_classifier_calls": res.n_classifier_calls, "n_batched_calls": res.n_batched_calls,
               "attack_wall_time_s": res.wall_time_s}
    tables = {"max_change_genes": _genes_table(unit, res.genes, order=np.arange(1, len(res.genes) + 1),
                                               n_classifier_calls=res.n_classifier_calls)}
    if ctx.embedding is not None and res.genes:
        idx = np.flatnonzero(np.isin(genes, res.genes))
        tables["detectability"] = _detect(ctx, unit, *_modified_rows(ctx, unit, X, idx), gene=f"{len(idx)} genes")
    return summary, tables


def _cgd(ctx: Context, unit: Unit):
    from ..attack.cgd import cgd_attack

    model, X, genes = ctx.space(unit.space)
    step = ctx.config.cgd_strength
    res = cgd_attack(model, X, ctx.clusters, unit.cluster, ctx.cgd_genes_in(genes), alpha=step, epsilon=step,
                     gene_names=genes)
    rows = np.flatnonzero(ctx.clusters == unit.cluster)
    # the cluster's majority answer after the attack (not CGD's target, which the stop rule may not reach)
    summary = {"original_label": res.original_label, "original_label_mapped": _mapped(ctx, res.original_label),
               "new_target": res.new_target, "new_label": res.new_label,
               "new_label_mapped": _mapped(ctx, res.new_label),
               "n_found": len(res.modified_genes), "success": bool(res.flipped), "switched": bool(res.switched),
               "alpha": step, "epsilon": step, "score_kind": res.score_kind,
               "n_classifier_calls": res.n_classifier_calls, "n_anchor_calls": res.n_anchor_calls,
               "n_batched_calls": res.n_batched_calls, "attack_wall_time_s": res.wall_time_s}
    path = _with_keys(unit, res.by_gene)
    tables = {
        "genes": _genes_table(unit, res.modified_genes, original_label=res.original_label, new_label=res.new_label,
                              new_label_mapped=_mapped(ctx, res.new_label), score=np.nan,
                              switched=bool(res.flipped), n_classifier_calls=res.n_classifier_calls),
        "cgd_path": path,
        "labels_after": _with_keys(unit, res.label_distribution),
    }
    idx = np.flatnonzero(np.isin(genes, res.modified_genes))
    if ctx.keep_cgd_values and len(idx):
        # the attacked values of the modified genes (cluster cells x genes), for transfer to other classifiers
        tables["cgd_values"] = pd.DataFrame(res.X[np.ix_(rows, idx)], columns=genes[idx])
    if "abstention" in ctx.config.evaluations:
        tables["abstention"] = _abstention(ctx, unit, X, res.X)
    if ctx.embedding is not None:
        before, after = X[rows], res.X[rows]
        tables["detectability"] = _detect(ctx, unit, before, after, gene=f"{len(idx)} genes")
        tables["embedding"] = _with_keys(unit, ctx.embedding.coordinates(ctx.model_input_rows(unit.space, before),
                                                                         ctx.model_input_rows(unit.space, after)))
    return summary, tables


def _abstention(ctx: Context, unit: Unit, X_before, X_after) -> pd.DataFrame:
    """Abstentions and margins of the cluster before and after an attack (model input of the classifier)."""
    from ..attack.abstention import abstention_table

    rows = ctx.clusters == unit.cluster
    before = ctx.model_input_rows(unit.space, X_before[rows])
    after = ctx.model_input_rows(unit.space, X_after[rows])
    tab = abstention_table(ctx.classifier, before, after, ctx.clusters[rows], [unit.cluster], attack=unit.attack,
                           name=ctx.name)
    return tab.assign(space=unit.space)


def _whitebox(ctx: Context, unit: Unit):
    """FGSM / PGD under the audit's biological budgets: success against the number of genes changed."""
    from ..attack.whitebox import budget_curve, whitebox_attack

    counts = unit.space == "raw_counts"
    X = ctx.counts if counts else ctx.X
    if X is None:
        raise InputError("raw-count attacks need the test counts in the context (counts=None)")
    cfg = ctx.config
    space = "counts" if counts else "model_input"
    var_names = ctx.var_names if counts else None
    tab = budget_curve(ctx.classifier, X, ctx.clusters, [unit.cluster], ks=cfg.whitebox_ks,
                       amplitudes=cfg.whitebox_amplitudes, methods=[unit.attack], bounds=cfg.whitebox_bounds,
                       space=space, var_names=var_names, name=ctx.name)
    flips = tab[tab["flipped"].astype(bool)]
    best = flips.sort_values(["k", "amplitude"]).iloc[0] if len(flips) else None
    orig = str(tab["original_label"].iloc[0])
    new_label = str(best["new_label"]) if best is not None else orig
    summary = {"original_label": orig, "original_label_mapped": _mapped(ctx, orig),
               "n_found": int(best["n_genes"]) if best is not None else 0, "success": best is not None,
               "min_genes": int(best["k"]) if best is not None else np.nan,
               "new_label": new_label,
               "cell_success_rate_max": float(tab["cell_success_rate"].max()),
               "n_classifier_calls": int(len(tab)), "attack_wall_time_s": float(tab["wall_time_s"].sum())}
    tables = {"budget": _with_keys(unit, tab.drop(columns=[c for c in ("classifier", "cluster", "space")
                                                             if c in tab.columns]))}
    if best is not None:
        genes = [g for g in str(best["genes"]).split(";") if g]
        tables["genes"] = _genes_table(unit, ["__".join(genes)], original_label=orig, new_label=new_label,
                                       new_label_mapped=_mapped(ctx, new_label), score=np.nan,
                                       n_classifier_calls=summary["n_classifier_calls"])
    if "abstention" in cfg.evaluations:
        k = int(best["k"]) if best is not None else max(cfg.whitebox_ks)
        amp = float(best["amplitude"]) if best is not None else max(cfg.whitebox_amplitudes)
        res = whitebox_attack(ctx.classifier, X, ctx.clusters, unit.cluster, method=unit.attack, k=k, amplitude=amp,
                              bounds=cfg.whitebox_bounds, space=space, var_names=var_names, name=ctx.name)
        tables["abstention"] = _abstention(ctx, unit, X, res.X)
    return summary, tables


def marker_panel(ctx: Context, n: int) -> list[str]:
    """The union of the attacked clusters' top ``n`` one-vs-rest marker genes that the classifier uses (a shared
    gene panel: it keeps classifiers comparable and the slow ones affordable)."""
    genes = set(np.asarray(ctx.classifier.genes_).astype(str))
    panel = dict.fromkeys(g for c in ctx.attacked for g in ctx.markers[c][0][:n] if g in genes)
    return list(panel)


def _strength(ctx: Context, unit: Unit):
    """Strength response: single-gene flips and moved cells from decile-9 to decile+9, perc1/perc99, aberrant and
    fixed values, on the attacked clusters' marker panel (the paper's qualitative claims, measured)."""
    from ..attack.strength import strength_response

    panel = marker_panel(ctx, ctx.config.strength_genes)
    tab = strength_response(ctx.classifier, ctx.X, ctx.clusters, ctx.attacked, genes=panel,
                            gene_names=np.asarray(ctx.classifier.genes_).astype(str), name=ctx.name,
                            random_state=ctx.config.seed)
    return {"n_genes": len(panel)}, {"strength": tab}


def _combination_genes(ctx: Context, unit: Unit) -> list[str]:
    """The cluster's top one-vs-rest marker genes (``markers``) that grid / random-walk combine."""
    n = ctx.config.grid_genes if unit.attack == "grid" else ctx.config.walk_genes
    return ctx.markers[unit.cluster][0][:n]


def _grid(ctx: Context, unit: Unit):
    from ..attack.grid import grid_attack

    model, X, genes = ctx.space(unit.space)
    names = _combination_genes(ctx, unit)
    res = grid_attack(model, X, ctx.clusters, unit.cluster, names, unit.modification.split("+"), gene_names=genes,
                      random_state=ctx.config.seed)
    combos = [("__".join(g for g in names if r[g]), " + ".join(f"{g}:{r[g]}" for g in names if r[g]), r["new_label"],
               r["score"]) for _, r in res.table.iterrows()]
    found = _genes_table(unit, [c[0] for c in combos], combination=[c[1] for c in combos],
                         original_label=res.baseline_label, new_label=[str(c[2]) for c in combos],
                         new_label_mapped=[_mapped(ctx, str(c[2])) for c in combos], score=[c[3] for c in combos],
                         n_classifier_calls=res.n_classifier_calls)
    summary = {"original_label": res.baseline_label, "original_label_mapped": _mapped(ctx, res.baseline_label),
               "n_found": len(res.table), "success": len(res.table) > 0, "n_genes": len(names),
               "min_genes": res.min_genes, "n_combinations": res.n_combinations, "n_flipping": res.n_flipping,
               "n_classifier_calls": res.n_classifier_calls, "n_batched_calls": res.n_batched_calls,
               "attack_wall_time_s": res.wall_time_s}
    return summary, {"genes": found}


def _random_walk(ctx: Context, unit: Unit):
    from ..attack.random_walk import random_walk_attack

    model, X, genes = ctx.space(unit.space)
    names = _combination_genes(ctx, unit)
    res = random_walk_attack(model, X, ctx.clusters, unit.cluster, unit.modification.split("+"), genes=names,
                             gene_names=genes, random_state=ctx.config.seed)
    ok = res.new_label is not None
    combination = " + ".join(f"{g}:{m}" for g, m in zip(res.genes, res.modifications))
    found = _genes_table(unit, ["__".join(res.genes)] if ok else [], combination=[combination] if ok else [],
                         original_label=res.baseline_label, new_label=[str(res.new_label)] if ok else [],
                         new_label_mapped=[_mapped(ctx, str(res.new_label))] if ok else [], score=np.nan,
                         n_classifier_calls=res.n_classifier_calls)
    summary = {"original_label": res.baseline_label, "original_label_mapped": _mapped(ctx, res.baseline_label),
               "n_found": len(res.genes), "success": ok, "n_genes": len(names),
               "n_classifier_calls": res.n_classifier_calls, "n_batched_calls": res.n_batched_calls,
               "attack_wall_time_s": res.wall_time_s}
    return summary, {"genes": found}


_ATTACKS = {"single_gene": _single_gene, "max_change": _max_change, "cgd": _cgd, "grid": _grid,
            "random_walk": _random_walk, "pgd": _whitebox, "fgsm": _whitebox}
