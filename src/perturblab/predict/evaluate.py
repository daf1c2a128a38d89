"""Evaluation of predicted cells against real stimulated cells: a tidy metric table with CIs.

Input representation everywhere: **log-normalised** expression (``normalize_total`` + ``log1p``), cells x
genes, the same genes in the same order in all three AnnData.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from .._validation import check_finite, to_dense, warn_representation
from ..exceptions import (
    InputError,
    MissingKeyError,
    PerturblabWarning,
    UnknownNameError,
)
from . import de as DE
from . import metrics as M
from .intervals import CI_METHODS, ResamplingPlan, bootstrap_interval
from .models.base import SOURCE_KEY
from .suite import (
    METRIC_DEFINITIONS,
    SuiteContext,
    compute_suite,
    definition,
    metric_bounds,
)

__all__ = ["METRIC_DEFINITIONS", "TABLE_COLUMNS", "evaluate", "perturbed_centroid", "rank_degs",
           "source_index"]

logger = logging.getLogger(__name__)

#: Columns of :func:`evaluate`'s table, in order (the first seven are the historical ones).
TABLE_COLUMNS = ["metric", "gene_set", "value", "ci_low", "ci_high", "n_bootstrap", "definition", "ci_method",
                 "ci_flag", "bias", "paired"]


def rank_degs(X_group, X_ref, var_names=None, method: str = "wilcoxon", use_scanpy: bool = False) -> np.ndarray:
    """Rank genes as DEGs of ``X_group`` vs ``X_ref`` (log-normalised, cells x genes).

    Parameters
    ----------
    X_group, X_ref
        Dense arrays with the same genes (columns).
    var_names
        Gene names; when given, names are returned instead of column indices.
    method
        ``"wilcoxon"``: descending Wilcoxon rank-sum z-score, the order of scanpy's
        ``rank_genes_groups(method="wilcoxon")`` "first 100" (up-regulated genes first);
        ``"mean_diff"``: descending ``|mean(group) - mean(ref)|``. The second exists
        because the Wilcoxon ranking is degenerate for shift-style predictions: a
        constant added to genes that are all-zero in the controls separates them
        perfectly, so they fill the top of the list (spec pitfall).
    use_scanpy
        For ``"wilcoxon"``, call :func:`scanpy.tl.rank_genes_groups` itself instead of the
        vectorised equivalent :func:`metrics.wilcoxon_scores` (same scores; tested).

    Returns
    -------
    numpy.ndarray
        All genes, best-ranked first (indices, or names when ``var_names`` is given).
    """
    X_group, X_ref = np.asarray(X_group), np.asarray(X_ref)
    if method == "wilcoxon":
        if use_scanpy:
            order = _scanpy_wilcoxon_order(X_group, X_ref)
        else:
            order = np.argsort(-M.wilcoxon_scores(X_group, X_ref), kind="stable")
    elif method == "mean_diff":
        order = np.argsort(-np.abs(X_group.mean(0) - X_ref.mean(0)), kind="stable")
    else:
        raise UnknownNameError("DEG ranking", method, ["wilcoxon", "mean_diff"])
    return np.asarray(var_names)[order] if var_names is not None else order


def _scanpy_wilcoxon_order(X_group, X_ref) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    a = ad.AnnData(np.vstack([X_group, X_ref]).astype(np.float32))
    a.var_names = [str(i) for i in range(a.n_vars)]
    a.obs["group"] = pd.Categorical(["group"] * len(X_group) + ["ref"] * len(X_ref))
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # scanpy's log fold change of all-zero genes (unused)
        sc.tl.rank_genes_groups(a, "group", groups=["group"], reference="ref", method="wilcoxon",
                                n_genes=a.n_vars, key_added="rgg")
    return a.uns["rgg"]["names"]["group"].astype(int)


def _to_dense_checked(adata, name: str, layer: str | None) -> np.ndarray:
    if layer is not None and layer not in adata.layers:
        raise MissingKeyError(f"{name} has no layer {layer!r}; pass one of {list(adata.layers)} or layer=None")
    X = adata.layers[layer] if layer else adata.X
    check_finite(X, name)
    warn_representation(X, "log1p", name)
    return to_dense(X, np.float64)


def source_index(pred, ctrl, paired="auto") -> np.ndarray | None:
    """Position in ``ctrl`` of the control cell each predicted cell was made from, or None (unpaired).

    Read from ``pred.obs[SOURCE_KEY]`` (obs names of ``ctrl``), which perturblab's cell-by-cell models
    write. ``paired="auto"`` pairs when that column is present and every name is found in ``ctrl``
    (otherwise a warning says why the resampling is unpaired); ``True`` requires it; ``False`` never pairs.

    Raises
    ------
    InputError
        With ``paired=True`` when the column is missing or names are not in ``ctrl``; for another value.
    """
    if paired not in ("auto", True, False):
        raise InputError(f"paired must be 'auto', True or False, got {paired!r}")
    if paired is False:
        return None
    if SOURCE_KEY not in pred.obs:
        if paired is True:
            raise InputError(f"pred.obs has no {SOURCE_KEY!r} column naming each predicted cell's control cell; "
                             "predict with a perturblab model or pass paired='auto'")
        return None
    names = pd.Index(ctrl.obs_names.astype(str))
    problem = None
    if not names.is_unique:
        problem = "the control cells' obs names are not unique"
    else:
        idx = names.get_indexer(pred.obs[SOURCE_KEY].astype(str))
        if (idx < 0).any():
            problem = f"{int((idx < 0).sum())} predicted cells name a source cell that is not among the control cells"
    if problem is not None:
        if paired is True:
            raise InputError(f"cannot pair predicted and control cells: {problem}; pass the control cells the "
                             "prediction was made from")
        warnings.warn(f"predicted and control cells are resampled independently: {problem}", PerturblabWarning,
                      stacklevel=3)
        return None
    return idx


def perturbed_centroid(adata, condition_key: str = "condition", cell_type_key: str = "cell_type",
                       stimulated: str = "stimulated", layer: str | None = None) -> np.ndarray:
    """Systema's reference: the average of the stimulated centroids of every cell type in ``adata``.

    ``mean_t mean(stimulated cells of type t)`` (mlbio-epfl/systema
    ``eval_utils.average_of_perturbation_centroids``, there over perturbations; here the perturbation is one
    and the groups are cell types). Pass the TRAINING cells (e.g. ``loco_split(...).train``), which hold no
    stimulated cell of the held-out type. Log-normalised input; returns one value per gene.

    Caveat for cell types as targets: Systema's reference is built for perturbations of one cell line, where
    it holds the shared response. Across cell types it also holds the other types' identity, so a delta from
    it measures how the held-out type differs from the others as much as its response: on Kang's CD4 Memory
    T cells, control cells as the prediction score ``pearson_delta_perturbed`` .96.

    Raises
    ------
    MissingKeyError, InputError
        A missing obs column, or no stimulated cell.
    """
    for key in (condition_key, cell_type_key):
        if key not in adata.obs:
            raise MissingKeyError(f"adata.obs has no column {key!r}; pass the condition and cell type columns")
    stim = adata.obs[condition_key].astype(str).to_numpy() == str(stimulated)
    if not stim.any():
        raise InputError(f"adata has no {stimulated!r} cells in obs[{condition_key!r}]; pass the training cells")
    X = to_dense(adata.layers[layer] if layer else adata.X, np.float64)[stim]
    types = adata.obs[cell_type_key].astype(str).to_numpy()[stim]
    return np.mean([X[types == t].mean(0) for t in np.unique(types)], axis=0)


def _context(S, C, n_degs, ks, n_pcs, random_state, perturbed, other, fdr, de_ns):
    from sklearn.decomposition import PCA

    n_pcs = min(n_pcs, S.shape[0] + C.shape[0] - 1, S.shape[1])
    pca = PCA(n_components=n_pcs, random_state=random_state).fit(np.vstack([S, C]))
    real_rank = {"wilcoxon": rank_degs(S, C, method="wilcoxon", use_scanpy=True),
                 "mean_diff": rank_degs(S, C, method="mean_diff")}
    if other is not None:
        weights, label = DE.deg_weights(S, other), "vsrest"
    else:
        weights, label = DE.deg_weights(S, C), "vscontrol"
    ctx = SuiteContext(pca=pca, degs=real_rank["wilcoxon"][:n_degs], n_degs=n_degs, ks=tuple(ks),
                       ttest_degs=DE.top_degs_ttest(S, C, n_degs), weights=weights, weight_label=label,
                       reference=perturbed, de_ns=tuple(de_ns), fdr=fdr)
    return ctx, real_rank


def evaluate(pred, real_stim, ctrl, n_degs: int = 100, ks=(50, 100, 200), n_pcs: int = 30,
             n_bootstrap: int = 100, resample: str = "bootstrap", fraction: float = 0.8,
             ci: float = 0.95, layer: str | None = None, random_state: int = 0, *, ci_method: str = "centered",
             paired="auto", perturbed_reference=None, other_stim=None, fdr: float = 0.05,
             de_ns=(50, 100, 200, None), min_cells: int = 10) -> pd.DataFrame:
    """Compare predicted to real stimulated cells of one cell type; one row per metric.

    Parameters
    ----------
    pred, real_stim, ctrl
        AnnData of predicted cells, real stimulated cells and real control cells of the
        held-out cell type; log-normalised (cells x genes), identical ``var_names``.
    n_degs
        Size of the real DEG set (scanpy ``rank_genes_groups`` Wilcoxon, real stimulated
        vs control, first ``n_degs`` genes; scGen's "top-100 DEGs") used for the
        gene-set metrics and for the Jaccard; also the size of scPerturBench's t-test DEG set.
    ks
        Values of ``k`` for :func:`metrics.overlap_at_k`.
    n_pcs
        Principal components of the space of the E-distance and MMD; the PCA is fitted
        on the real cells only (stimulated + control), then applied to the prediction.
    n_bootstrap
        Number of resamples for the confidence intervals (0: no intervals).
    resample
        ``"bootstrap"`` (default): each group's cells are resampled with replacement.
        ``"subsample"``: draws of ``fraction`` of the cells without replacement, as scPRAM and the
        ECCB tutorial (100 draws of 80%); their spread is about half the sampling standard error,
        so those intervals are too narrow.
    fraction
        Share of cells kept by ``"subsample"``.
    ci
        Central coverage of the intervals.
    layer
        Layer to read instead of ``X``.
    random_state
        Seed of the PCA and the resampling; the same seed gives identical numbers.
    ci_method
        ``"centered"`` (default: interval of the metric's expected value at these numbers of cells,
        containing the estimate by construction), ``"basic"`` (interval of the infinite-cell value) or
        ``"percentile"`` (the former behaviour); see :mod:`perturblab.predict.intervals`.
    paired
        ``"auto"`` (default): when ``pred.obs["source_cell"]`` names the control cell each predicted cell
        was made from (perturblab's identity, mean-shift, scGen and scPRAM predictions do), a resample draws
        control cells and takes the predicted cells made from them, so prediction and input move together
        (drawing them independently adds noise that is not there: the identity's predicted change, exactly
        0, became random). ``True`` requires pairing, ``False`` resamples independently.
    perturbed_reference
        Systema's reference (per-gene vector, e.g. :func:`perturbed_centroid` of the training cells): adds
        ``pearson_delta_perturbed`` and ``weighted_r2_delta_perturbed``.
    other_stim
        AnnData of the other cell types' stimulated cells (e.g. the training stimulated cells): Mejia et
        al.'s DEG weights are then the held-out type's stimulated cells "vs rest" as in the paper; without
        it, "vs control" (named in the gene_set column).
    fdr
        FDR threshold of cell-eval's DE metrics (0.05; a gene is a DEG when its FDR is strictly below).
    de_ns
        ``N`` of ``overlap_at_N`` / ``precision_at_N`` (None: the number of DEGs, cell-eval's ``_N``).
    min_cells
        Rows of a group with fewer cells are flagged "too few cells".

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`: ``metric, gene_set, value, ci_low, ci_high, n_bootstrap, definition``,
        then ``ci_method`` (how the interval was computed), ``ci_flag`` (empty when the interval is
        meaningful, else why not: NaN estimate, constant under resampling, undefined resamples, too few
        cells, extension to the estimate), ``bias`` (mean of the resamples minus the estimate) and ``paired``.
        The real DEG rankings and cell-eval's DE calls are recomputed inside each resample (vectorised
        Wilcoxon, same scores as scanpy); gene-set metrics keep the gene sets and weights of the full data.
        In bootstrap resamples, pairs of copies of one cell are left out of the within-group terms of the
        E-distance and the RBF MMD (duplicates would bias them).

    Raises
    ------
    InputError
        If genes differ between the inputs, a group has fewer than 2 cells, values are NaN/inf,
        ``resample`` or ``ci_method`` is unknown, or pairing is required and impossible.

    Examples
    --------
    >>> import perturblab as plab
    >>> adata = plab.predict.prepare(plab.datasets.kang2018(), n_top_genes=200)
    >>> split = plab.predict.loco_split(adata, "B")
    >>> model = plab.predict.make_model("mean_delta", split.train)
    >>> table = plab.predict.evaluate(model.predict(split.target_ctrl), split.target_stim, split.target_ctrl,
    ...                               n_bootstrap=20,
    ...                               perturbed_reference=plab.predict.perturbed_centroid(split.train))
    >>> r2 = table.set_index(["metric", "gene_set"]).loc[("r2_pearson_mean", "all"), "value"]
    >>> bool(0 < r2 <= 1)
    True
    """
    for name, a in (("real_stim", real_stim), ("ctrl", ctrl)):
        if list(a.var_names) != list(pred.var_names):
            raise InputError(f"pred and {name} have different genes (var_names); evaluate on the same genes in the "
                             "same order")
    if other_stim is not None and list(other_stim.var_names) != list(pred.var_names):
        raise InputError("other_stim has different genes (var_names); subset it to the evaluated genes")
    if resample not in ("bootstrap", "subsample"):
        raise UnknownNameError("resample", resample, ["bootstrap", "subsample"])
    if ci_method not in CI_METHODS:
        raise UnknownNameError("interval method", ci_method, CI_METHODS)
    P = _to_dense_checked(pred, "pred", layer)
    S = _to_dense_checked(real_stim, "real_stim", layer)
    C = _to_dense_checked(ctrl, "ctrl", layer)
    for name, X in (("pred", P), ("real_stim", S), ("ctrl", C)):
        if X.shape[0] < 2:
            raise InputError(f"{name} has {X.shape[0]} cells; at least 2 are needed")
    reference = None
    if perturbed_reference is not None:
        reference = np.asarray(perturbed_reference, dtype=np.float64).ravel()
        if reference.size != P.shape[1]:
            raise InputError(f"perturbed_reference has {reference.size} values for {P.shape[1]} genes; give one "
                             "per gene")
    other = _to_dense_checked(other_stim, "other_stim", layer) if other_stim is not None else None
    src = source_index(pred, ctrl, paired)
    ctx, real_rank = _context(S, C, n_degs, ks, n_pcs, random_state, reference, other, fdr, de_ns)
    point = compute_suite(P, S, C, ctx, order_pred={"wilcoxon": rank_degs(P, C, use_scanpy=True)},
                          order_real=real_rank)

    plan = ResamplingPlan({"pred": len(P), "stim": len(S), "ctrl": len(C)},
                          pairs={"pred": ("ctrl", src)} if src is not None else None,
                          resample=resample, fraction=fraction, random_state=random_state)
    draws: dict = {key: [] for key in point}
    for _ in range(n_bootstrap):
        idx = plan.draw()
        if len(idx["pred"]) < 2:
            for values in draws.values():
                values.append(np.nan)
            continue
        vals = compute_suite(P[idx["pred"]], S[idx["stim"]], C[idx["ctrl"]], ctx, ids_p=idx["pred"],
                             ids_s=idx["stim"])
        for key, v in vals.items():
            draws[key].append(v)

    n_cells = min(len(P), len(S), len(C))
    rows = []
    for (metric, gset), value in point.items():
        iv = bootstrap_interval(float(value), draws[(metric, gset)], ci=ci, method=ci_method,
                                min_cells=min_cells, n_cells=n_cells)
        lo, hi = metric_bounds(metric)
        rows.append({"metric": metric, "gene_set": gset, "value": float(value),
                     "ci_low": float(np.clip(iv.low, lo, hi)), "ci_high": float(np.clip(iv.high, lo, hi)),
                     "n_bootstrap": int(n_bootstrap), "definition": definition(metric),
                     "ci_method": iv.method if n_bootstrap else "none", "ci_flag": iv.flag, "bias": iv.bias,
                     "paired": src is not None})
    logger.debug("evaluated %d metrics with %d resamples (paired=%s)", len(rows), n_bootstrap, src is not None)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
