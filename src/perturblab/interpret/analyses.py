"""The issue-14 analyses as stages of :func:`~perturblab.interpret.pipeline.run_interpretation`.

Each analysis of :data:`~perturblab.interpret.catalogue.ANALYSES` selected in ``InterpretConfig.analyses`` runs
after the ablation as one unit of the run's store (keyed by its name and the settings it reads, so a finished
analysis is reused by ``--resume`` and never under other settings), returns named tidy tables, and adds its rows
to the statistics registry through its module's ``*_rows`` function. An analysis that cannot run on the data
(e.g. too few perturbations or cells for its design) is not dropped silently: :class:`AnalysisOutput` keeps the
reason (``notes``), the report shows it and a :class:`~perturblab.exceptions.PerturblabWarning` is issued.
Gene-set libraries that cannot be loaded (offline, no local copy) are named in the table ``gene_sets_unavailable``.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import DataFileNotFoundError, InputError, PerturblabWarning
from .edges import EdgeScores, correlation_scores, log_normalise
from .references import Reference, reference_recovery

if TYPE_CHECKING:
    from .config import InterpretConfig
    from .stages import Stages

__all__ = ["ANALYSIS_SETTINGS", "AnalysisContext", "AnalysisOutput", "analysis_rows", "load_gene_set_libraries",
           "run_analyses"]

log = logging.getLogger(__name__)

#: The config fields each analysis reads besides the run's shared settings (they key its stored unit).
ANALYSIS_SETTINGS: dict[str, tuple[str, ...]] = {
    "value_edges": ("value_measures", "n_bootstrap"),
    "matching": ("matching_k", "matching_caliper", "n_bootstrap"),
    "splits": ("split_folds_joint", "split_top_k", "n_bootstrap"),
    "tf_strata": ("alpha",),
    "circularity": (),
    "per_tf": ("n_bootstrap",),
    "decomposition": (),
    "hvg_protocol": (),
    "sensitivity": ("scan_lfc", "scan_cells", "scan_genes", "scan_bootstrap"),
    "layer_profiles": (),
    "partial": (),
    "coexpression": (),
    "gene_sets": ("gene_set_libraries", "gene_set_min_size", "gene_set_max_size"),
    "cssi_scaling": ("cssi_scaling_cells", "cssi_scaling_repeats"),
    "cssi_strata_scan": ("cssi_ks", "cssi_gene_null"),
    "cssi_edge_fdr": ("alpha",),
    "embedding_edges": ("n_bootstrap",),
    "sae": ("sae_layer", "sae_k", "sae_expansion", "sae_epochs", "sae_max_tokens", "sae_null_permutations",
            "gene_set_libraries", "gene_set_min_size", "gene_set_max_size", "alpha"),
    "in_silico": ("in_silico_mode", "in_silico_cells", "n_bootstrap"),
}


@dataclass
class AnalysisContext:
    """The pipeline's variables the analyses run on.

    ``ctrl`` control cells (raw counts, every gene), ``X`` their log-normalised expression over ``genes``,
    ``layer_paths`` the stored attention per layer, ``tested`` the attention score under test (per-perturbation
    rows of ``per_pert``), ``final`` its single-matrix form (one layer, mean or max over heads), ``corr``
    ``|Spearman|``, ``feats`` gene features, ``base`` gene-level baselines, ``refs`` every reference and
    ``eval_refs`` the directed ones with enough positives, ``pairs`` the incremental-value pairs, ``strata`` the
    CSSI strata labels of ``ctrl`` (None when CSSI did not run).
    """

    st: Stages
    cfg: InterpretConfig
    adata: Any
    ctrl: Any
    X: np.ndarray
    genes: np.ndarray
    model: Any
    layer_paths: dict[int, Path]
    tested: EdgeScores
    final: EdgeScores
    corr: EdgeScores
    feats: pd.DataFrame
    base: list[EdgeScores]
    refs: list[Reference]
    eval_refs: list[Reference]
    tfs: list[str] | None
    de: pd.DataFrame
    per_pert: pd.DataFrame
    pairs: pd.DataFrame
    strata: np.ndarray | None = None


@dataclass
class AnalysisOutput:
    """Tables of the analyses that ran (``{table name: DataFrame}``), their registry ``rows`` and ``notes``
    (``{analysis: why it did not run}``)."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


def _settings(cfg: InterpretConfig, name: str) -> dict:
    def plain(v):
        return list(v) if isinstance(v, tuple) else v

    return {k: plain(getattr(cfg, k)) for k in ANALYSIS_SETTINGS[name]}


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _layers(ctx: AnalysisContext) -> Iterator:
    """Each stored layer back, one at a time (:class:`~perturblab.interpret.layer_pass.LayerScores`)."""
    from .layer_pass import LayerScores, load_layer

    for layer in sorted(ctx.layer_paths):
        yield LayerScores(load_layer(ctx.layer_paths[layer], layer=layer))


def _summaries(ctx: AnalysisContext) -> list[EdgeScores]:
    from .layer_pass import LayerScores

    out: list[EdgeScores] = []
    for ls in _layers(ctx):
        out.extend(LayerScores(ls.la, per_head=False))
    return out


def _need_eval_refs(ctx: AnalysisContext) -> list[Reference]:
    if not ctx.eval_refs:
        raise InputError("no directed reference has >= 3 positive edges among the genes under study; add a reference "
                         "or more genes")
    return ctx.eval_refs


def load_gene_set_libraries(libraries, genes=None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Gene-set libraries by name (:func:`perturblab.datasets.gene_sets`) or GMT path (name: the file's stem).

    Returns
    -------
    ``({name: gene_set table}, unavailable)``: ``unavailable`` has ``library, reason`` for each library that
    could not be loaded (no local copy and no download, a missing file); nothing raises for them.
    """
    from ..datasets import gene_sets

    loaded: dict[str, pd.DataFrame] = {}
    missing = []
    for lib in libraries:
        lib = str(lib)
        is_path = lib.lower().endswith(".gmt") or "/" in lib
        name = Path(lib).stem if is_path else lib
        try:
            loaded[name] = gene_sets(name, path=lib) if is_path else gene_sets(lib)
        except (DataFileNotFoundError, FileNotFoundError, OSError) as err:
            missing.append({"library": name, "reason": f"{type(err).__name__}: {err}"})
            log.info("gene-set library %s not available: %s", name, err)
    return loaded, pd.DataFrame(missing, columns=["library", "reason"])


# --- robustness -----------------------------------------------------------------------------------------------


def _value_edges(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .edge_sources import evaluate_edge_sources
    from .value_edges import iter_value_edges, value_edge_scores

    cfg = ctx.cfg
    vs = value_edge_scores(iter_value_edges(ctx.model, ctx.ctrl, ctx.genes, measures=cfg.value_measures,
                                            batch_size=cfg.batch_size, device=cfg.device))
    return {"value_edges": evaluate_edge_sources(vs, ctx.refs, ctx.de, [ctx.corr, *ctx.base], tfs=ctx.tfs,
                                                 n_boot=cfg.n_bootstrap, random_state=cfg.random_state)}


def _matching(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .matching import matched_recovery

    cfg = ctx.cfg
    tabs, bals = [], []
    for r in _need_eval_refs(ctx):
        tab, bal = matched_recovery([ctx.final, ctx.corr], r, ctx.feats, tfs=ctx.tfs, k=cfg.matching_k,
                                    caliper_sd=cfg.matching_caliper, n_boot=cfg.n_bootstrap,
                                    random_state=cfg.random_state)
        tabs.append(tab if "reference" in tab.columns else tab.assign(reference=r.name))
        bals.append(bal if "reference" in bal.columns else bal.assign(reference=r.name))
    return {"matching": _concat(tabs), "matching_balance": _concat(bals)}


def _splits(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .splits import split_design

    cfg = ctx.cfg
    p = ctx.pairs
    if p.empty or p["perturbation"].nunique() < 2 or not p["is_target"].any() or p["is_target"].all():
        raise InputError("split designs need >= 2 perturbations with DE targets among the genes under study")
    return {"splits": split_design(p, n_splits_joint=cfg.split_folds_joint, top_k=cfg.split_top_k,
                                   n_boot=cfg.n_bootstrap, random_state=cfg.random_state)}


def _tf_strata(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .stratify import tf_stratification

    if ctx.tfs is None:
        raise InputError("TF stratification needs the TF list (Lambert 2018)")
    return {"tf_strata": tf_stratification(ctx.per_pert, ctx.tfs, ctx.tested.name, ctx.corr.name,
                                           alpha=ctx.cfg.alpha)}


def _circularity(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from ..datasets import trrust
    from .circularity import direction_recovery, sign_agreement
    from .edges import spearman_matrix

    reference = trrust()
    rho = EdgeScores("spearman rho", spearman_matrix(ctx.X), ctx.genes, "correlation")
    return {"circularity": direction_recovery([ctx.final, ctx.corr], reference, tfs=ctx.tfs),
            "sign_agreement": sign_agreement(rho, reference)}


def _per_tf(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .decomposition import per_tf_recovery

    cfg = ctx.cfg
    return {"per_tf": _concat([per_tf_recovery([ctx.final, ctx.corr], r, tfs=ctx.tfs, n_boot=cfg.n_bootstrap,
                                               random_state=cfg.random_state) for r in _need_eval_refs(ctx)])}


def _decomposition(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .decomposition import recovery_decomposition

    return {"decomposition": _concat([recovery_decomposition([ctx.final, ctx.corr], r, ctx.feats, tfs=ctx.tfs,
                                                             random_state=ctx.cfg.random_state)
                                      for r in _need_eval_refs(ctx)])}


def _score_fn(ctx: AnalysisContext) -> Callable[[Any, np.ndarray], list[EdgeScores]]:
    """Edge scores of a (cells, genes) configuration: the tested attention re-extracted, and ``|Spearman|``."""
    from .extraction import extract_attention

    cfg, final = ctx.cfg, ctx.final
    layer = int(final.layer) if final.layer is not None else ctx.model.n_layers - 1

    def score_fn(c, g) -> list[EdgeScores]:
        g = np.asarray(ctx.model.match_genes(c, list(g)).kept)
        la = extract_attention(ctx.model, c, g, layers=[layer], batch_size=cfg.batch_size, device=cfg.device)[layer]
        m = la.head_max if final.head == "max" else la.head_mean
        lib = np.asarray(c.X.sum(axis=1)).ravel()
        pos = pd.Index(np.asarray(c.var_names).astype(str)).get_indexer(g)
        return [EdgeScores(final.name, m, g, "attention", layer, final.head),
                correlation_scores(log_normalise(c.X[:, pos], library_size=lib), g)]

    return score_fn


def _hvg_protocol(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .sensitivity import hvg_protocol

    cfg = ctx.cfg
    return {"hvg_protocol": hvg_protocol(ctx.adata, ctx.ctrl, cfg.n_genes, _score_fn(ctx),
                                         perturbation_key=cfg.perturbation_key, control=cfg.control,
                                         lfc_threshold=cfg.de_lfc, alpha=cfg.de_alpha)}


def _sensitivity(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .sensitivity import default_scan_levels, sensitivity_scan

    cfg = ctx.cfg
    lv = default_scan_levels(ctx.ctrl.n_obs, ctx.genes.size)
    return {"sensitivity": sensitivity_scan(
        ctx.adata, ctx.ctrl, _score_fn(ctx), tested=ctx.final.name, perturbation_key=cfg.perturbation_key,
        control=cfg.control, lfc_thresholds=cfg.scan_lfc, n_cells=cfg.scan_cells or lv["n_cells"],
        n_genes=cfg.scan_genes or lv["n_genes"], alpha=cfg.de_alpha, n_boot=cfg.scan_bootstrap,
        random_state=cfg.random_state)}


# --- positive findings ----------------------------------------------------------------------------------------


def _layer_profiles(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .profiles import layer_profiles, profile_references

    prefs = profile_references()
    rec = _concat([reference_recovery(ls, prefs, tfs=ctx.tfs) for ls in _layers(ctx)]
                  + [reference_recovery([ctx.corr], prefs, tfs=ctx.tfs)])
    prof = _concat([layer_profiles(rec, unit=u, random_state=ctx.cfg.random_state).assign(unit=u)
                    for u in ("summary", "head")])
    return {"layer_profiles": prof, "layer_profile_recovery": rec}


def _partial(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .partial import partial_correlation

    return {"partial": partial_correlation(_summaries(ctx), ctx.refs, control=ctx.corr, tfs=ctx.tfs)}


def _coexpression(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .coexpression import attention_coexpression

    return {"coexpression": _concat([attention_coexpression(ls, ctx.corr, random_state=ctx.cfg.random_state)
                                     for ls in _layers(ctx)])}


def _gene_sets(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .gene_sets import gene_set_recovery, gene_set_references

    cfg = ctx.cfg
    libs, missing = load_gene_set_libraries(cfg.gene_set_libraries)
    out = {"gene_sets_unavailable": missing}
    if libs:
        grefs = gene_set_references(libs, genes=ctx.genes, min_size=cfg.gene_set_min_size,
                                    max_size=cfg.gene_set_max_size)
        out["gene_sets"] = gene_set_recovery([*_summaries(ctx), ctx.corr], grefs)
    return out


# --- CSSI -----------------------------------------------------------------------------------------------------


def _cssi_scaling(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .cssi_scan import scaling_curve, scaling_test

    cfg = ctx.cfg
    n_cells = tuple(n for n in cfg.cssi_scaling_cells if n <= ctx.X.shape[0])
    if len(n_cells) < 2:
        raise InputError(f"the CSSI scaling curve needs >= 2 of the cell numbers {cfg.cssi_scaling_cells} within the "
                         f"{ctx.X.shape[0]} control cells; lower cssi_scaling_cells")
    curves, tests = [], []
    for r in _need_eval_refs(ctx):
        c = scaling_curve(ctx.X, ctx.genes, r, tfs=ctx.tfs, n_cells=n_cells, n_repeats=cfg.cssi_scaling_repeats,
                          data="real", random_state=cfg.random_state)
        c = c if "reference" in c.columns else c.assign(reference=r.name)
        curves.append(c)
        t = scaling_test(c)
        tests.append(t if "reference" in t.columns else t.assign(reference=r.name))
    return {"cssi_scaling_curve": _concat(curves), "cssi_scaling": _concat(tests)}


def _cssi_strata_scan(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .cssi_scan import strata_scan
    from .extraction import cell_embeddings

    cfg = ctx.cfg
    emb = cell_embeddings(ctx.model, ctx.ctrl, ctx.genes, batch_size=cfg.batch_size)
    parts = []
    for r in _need_eval_refs(ctx):
        s = strata_scan(ctx.X, ctx.genes, r, emb, ks=cfg.cssi_ks, tfs=ctx.tfs, min_cells=cfg.cssi_min_cells,
                        n_gene_null=cfg.cssi_gene_null, data="real", random_state=cfg.random_state)
        parts.append(s if "reference" in s.columns else s.assign(reference=r.name))
    return {"cssi_strata_scan": _concat(parts)}


def _cssi_edge_fdr(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .cssi_scan import cssi_edge_fdr

    if ctx.strata is None:
        raise InputError("CSSI edge FDR needs the run's CSSI strata (no stratum had cssi_min_cells cells)")
    cfg = ctx.cfg
    r = _need_eval_refs(ctx)[0]
    return {"cssi_edge_fdr": cssi_edge_fdr(ctx.X, ctx.genes, ctx.strata, tfs=ctx.tfs, reference=r,
                                           min_cells=cfg.cssi_min_cells, alpha=cfg.alpha, data="real")}


# --- beyond the paper -----------------------------------------------------------------------------------------


def _embedding_edges(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .edge_sources import evaluate_edge_sources
    from .embedding_edges import embedding_similarity_scores

    cfg = ctx.cfg
    es = embedding_similarity_scores(ctx.model, ctx.ctrl, ctx.genes, batch_size=cfg.batch_size, device=cfg.device)
    return {"embedding_edges": evaluate_edge_sources(es, ctx.refs, ctx.de, [ctx.corr, *ctx.base], tfs=ctx.tfs,
                                                     n_boot=cfg.n_bootstrap, random_state=cfg.random_state)}


def _sae(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .sae import collect_residuals, feature_gene_matrix, feature_gene_set_edges, sae_gene_set_null, train_sae

    cfg = ctx.cfg
    Xr, gi = collect_residuals(ctx.model, ctx.ctrl, ctx.genes, layer=cfg.sae_layer, max_tokens=cfg.sae_max_tokens,
                               batch_size=cfg.batch_size, random_state=cfg.random_state, device=cfg.device)
    res = train_sae(Xr, k=cfg.sae_k, epochs=cfg.sae_epochs, expansion=cfg.sae_expansion,
                    random_state=cfg.random_state)
    fg = feature_gene_matrix(res.sae, Xr, gi, ctx.genes.size)
    out = {"sae_history": res.history}
    libs, missing = load_gene_set_libraries(cfg.gene_set_libraries)
    out["sae_gene_sets_unavailable"] = missing
    if libs:
        name, sets = next(iter(libs.items()))
        kw: dict[str, Any] = {"min_size": cfg.gene_set_min_size, "max_size": cfg.gene_set_max_size,
                              "alpha": cfg.alpha}
        try:
            tab = feature_gene_set_edges(fg, ctx.genes, sets, **kw)
        except InputError as err:  # e.g. no set of the allowed size among the genes under study
            out["sae_gene_sets_unavailable"] = pd.concat(
                [missing, pd.DataFrame([{"library": name, "reason": str(err)}])], ignore_index=True)
            return out
        tab = tab.assign(library=name, n_tests=int(tab.attrs.get("n_tests", len(tab))))
        null = sae_gene_set_null(fg, ctx.genes, sets, n_perm=cfg.sae_null_permutations,
                                 random_state=cfg.random_state, **kw)
        out["sae_gene_sets"] = tab
        out["sae_null"] = pd.DataFrame({"permutation": np.arange(null.size), "n_significant": null, "library": name})
    return out


def _in_silico(ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    from .in_silico import in_silico_perturbation, score_in_silico

    cfg = ctx.cfg
    present = set(ctx.genes.tolist())
    perturb = sorted({g for g in ctx.de["perturbation"].astype(str).unique() if g in present})
    if not perturb:
        raise InputError("no knocked-out gene is among the genes under study: nothing to perturb in silico")
    cells = ctx.ctrl
    if ctx.ctrl.n_obs > cfg.in_silico_cells:
        rng = np.random.default_rng(cfg.random_state)
        cells = ctx.ctrl[np.sort(rng.choice(ctx.ctrl.n_obs, cfg.in_silico_cells, replace=False))].copy()
    shifts = in_silico_perturbation(ctx.model, cells, ctx.genes, perturb, mode=cfg.in_silico_mode,
                                    batch_size=cfg.batch_size)
    return {"in_silico_shifts": shifts, "in_silico": score_in_silico(shifts, ctx.de, ctx.feats)}


_RUNNERS: dict[str, Callable[[AnalysisContext], dict[str, pd.DataFrame]]] = {
    "value_edges": _value_edges, "matching": _matching, "splits": _splits, "tf_strata": _tf_strata,
    "circularity": _circularity, "per_tf": _per_tf, "decomposition": _decomposition, "hvg_protocol": _hvg_protocol,
    "sensitivity": _sensitivity, "layer_profiles": _layer_profiles, "partial": _partial,
    "coexpression": _coexpression, "gene_sets": _gene_sets, "cssi_scaling": _cssi_scaling,
    "cssi_strata_scan": _cssi_strata_scan, "cssi_edge_fdr": _cssi_edge_fdr, "embedding_edges": _embedding_edges,
    "sae": _sae, "in_silico": _in_silico,
}


def analysis_rows(name: str, tables: dict[str, pd.DataFrame], cfg: InterpretConfig) -> list[dict]:
    """Registry rows of analysis ``name`` from its tables (the modules' ``*_rows`` functions)."""
    from . import (
        circularity,
        coexpression,
        cssi_scan,
        decomposition,
        edge_sources,
        gene_sets,
        in_silico,
        matching,
        partial,
        profiles,
        sae,
        sensitivity,
        splits,
        stratify,
    )

    def t(key: str) -> pd.DataFrame:
        return tables.get(key, pd.DataFrame())

    one: dict[str, tuple[Callable[[pd.DataFrame], list[dict]], str]] = {
        "value_edges": (edge_sources.edge_source_rows, "value_edges"),
        "matching": (matching.matched_recovery_rows, "matching"),
        "splits": (splits.split_design_rows, "splits"),
        "tf_strata": (stratify.tf_stratification_rows, "tf_strata"),
        "per_tf": (decomposition.per_tf_recovery_rows, "per_tf"),
        "decomposition": (decomposition.recovery_decomposition_rows, "decomposition"),
        "hvg_protocol": (sensitivity.hvg_protocol_rows, "hvg_protocol"),
        "sensitivity": (sensitivity.sensitivity_scan_rows, "sensitivity"),
        "layer_profiles": (profiles.layer_profile_rows, "layer_profiles"),
        "partial": (partial.partial_correlation_rows, "partial"),
        "coexpression": (coexpression.attention_coexpression_rows, "coexpression"),
        "gene_sets": (gene_sets.gene_set_recovery_rows, "gene_sets"),
        "cssi_scaling": (cssi_scan.scaling_test_rows, "cssi_scaling"),
        "cssi_strata_scan": (cssi_scan.strata_scan_rows, "cssi_strata_scan"),
        "cssi_edge_fdr": (cssi_scan.cssi_edge_fdr_rows, "cssi_edge_fdr"),
        "embedding_edges": (edge_sources.edge_source_rows, "embedding_edges"),
    }
    if name in one:
        fn, key = one[name]
        return fn(t(key)) if len(t(key)) else []
    if name == "circularity":
        return (circularity.direction_recovery_rows(t("circularity")) if len(t("circularity")) else []) + (
            circularity.sign_agreement_rows(t("sign_agreement")) if len(t("sign_agreement")) else [])
    if name == "sae":
        tab = t("sae_gene_sets")
        if "n_tests" in tab.columns and len(tab):
            tab.attrs["n_tests"] = int(tab["n_tests"].iloc[0])
        null = t("sae_null")
        if "sae_gene_sets" not in tables:
            return []
        return sae.feature_gene_set_rows(tab, null["n_significant"].astype(int).tolist() if len(null) else None)
    if name == "in_silico":
        return in_silico.score_in_silico_rows(t("in_silico"), n_boot=cfg.n_bootstrap,
                                              random_state=cfg.random_state) if len(t("in_silico")) else []
    raise KeyError(name)


def run_analyses(ctx: AnalysisContext) -> AnalysisOutput:
    """Run the selected analyses (``ctx.cfg.analyses``) as stored stages; see the module docstring."""
    out = AnalysisOutput()
    for name in ctx.cfg.analyses:
        key = {"stage": "analysis", "name": name, "settings": _settings(ctx.cfg, name)}
        try:
            tables = ctx.st.tables(key, functools.partial(_RUNNERS[name], ctx))
        except InputError as err:
            msg = f"{name} not run: {err}"
            warnings.warn(msg, PerturblabWarning, stacklevel=2)
            log.info(msg)
            out.notes[name] = str(err)
            continue
        out.tables.update(tables)
        out.rows.extend(analysis_rows(name, tables, ctx.cfg))
    return out
