"""The stages of :func:`~perturblab.interpret.pipeline.run_interpretation` (each persisted as a unit of the run).

Model loading or training, cell subsampling, checksums, the paired comparisons, residualisation with both
residualisers, the nulls (in parallel through :func:`perturblab.runs.execute`), the head-ablation experiment and
CSSI. Kept apart from the pipeline's orchestration so that each file stays small.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ._types import records
from .confounds import degree_preserving_null, label_shuffle_null, residualise
from .cssi import cssi_null_stress, cssi_scores, leiden_strata, stratified_matrices
from .edges import EdgeScores
from .perturbation import compare_scores
from .references import reference_recovery
from .stats import retained_fraction

if TYPE_CHECKING:
    from .config import InterpretConfig

__all__ = [
    "RESIDUALISERS",
    "Stages",
    "ablation",
    "comparisons",
    "cssi",
    "files_checksum",
    "load_checkpoint",
    "model_checksum",
    "nulls",
    "own_model",
    "residualisation",
    "subsample",
]

log = logging.getLogger(__name__)

#: Residualisers, primary first (Kendiukhov 2026's primary is OLS).
RESIDUALISERS = ("ols", "gbdt")


class Stages:
    """Load a finished stage from the run's unit store, or compute and persist it."""

    def __init__(self, store):
        self.store = store

    def table(self, name: str, compute) -> pd.DataFrame:
        key = {"stage": name}
        if self.store.done(key):
            log.info("[resume] %s", name)
            return self.store.load(key).tables["table"]
        log.info("[stage] %s", name)
        df = compute()
        self.store.save(key, tables={"table": df})
        return df

    def tables(self, key: dict, compute: Callable[[], dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
        """Several named tables under one unit ``key`` (e.g. an analysis and the settings it reads)."""
        if self.store.done(key):
            log.info("[resume] %s", key.get("name", key.get("stage")))
            return dict(self.store.load(key).tables)
        log.info("[stage] %s", key.get("name", key.get("stage")))
        tables = compute()
        self.store.save(key, tables=tables)
        return tables

    def arrays(self, name: str, compute) -> dict[str, np.ndarray]:
        key = {"stage": name}
        if self.store.done(key):
            log.info("[resume] %s", name)
            return self.store.load(key).arrays()
        log.info("[stage] %s", name)
        arrays = compute()
        self.store.save(key, arrays=arrays)
        return arrays


def subsample(adata, cfg: InterpretConfig):
    """At most ``cfg.cells_per_group`` cells per perturbation (seeded), in their original order."""
    if cfg.cells_per_group is None:
        return adata
    rng = np.random.default_rng(cfg.random_state)
    labels = adata.obs[cfg.perturbation_key].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero(labels == g), min(cfg.cells_per_group, int((labels == g).sum())), replace=False)
            for g in sorted(set(labels))]
    return adata[np.sort(np.concatenate(keep))].copy()


def files_checksum(path: str | os.PathLike) -> str:
    """sha256 over the names and bytes of a checkpoint file or of every file in a checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model path {path} does not exist; give the checkpoint file or directory")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def model_checksum(model) -> str:
    """sha256 of a model object's weights (for a model given in Python)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in sorted(model.network.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def own_model(store, ctrl, genes_all, cfg: InterpretConfig):
    """The own model: the run's stored trained model, or trained now (``cfg.model_path`` unset)."""
    from .models import OwnGeneTransformer
    from .training import train_masked_expression

    key = {"stage": "own_model"}
    if store.done(key):
        log.info("[resume] own_model")
        return OwnGeneTransformer.from_checkpoint(store.load(key).checkpoint(map_location="cpu"), device=cfg.device)
    log.info("[stage] own_model: training on %d control cells x %d genes (%d epochs)", ctrl.n_obs, len(genes_all),
             cfg.epochs)
    net = OwnGeneTransformer(genes_all, d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers,
                             d_ff=2 * cfg.d_model, max_length=cfg.max_length, random_state=cfg.random_state,
                             device=cfg.device)
    res = train_masked_expression(net, ctrl, epochs=cfg.epochs, batch_size=cfg.train_batch_size,
                                  random_state=cfg.random_state)
    store.save(key, checkpoint=net.checkpoint(), tables={"history": res.history})
    return net


def load_checkpoint(cfg: InterpretConfig):
    """A checkpoint as shipped (``cfg.model_path``) through :func:`~perturblab.interpret.models.load_model`."""
    from .models import load_model

    log.info("loading %s model from %s", cfg.model, cfg.model_path)
    return load_model(cfg.model, str(cfg.model_path), device=cfg.device, token_dictionary=cfg.token_dictionary,
                      gene_median_file=cfg.gene_median_file, gene_id_key=cfg.gene_id_key)


def cssi(st: Stages, model, ctrl, X, genes, corr, best_att, refs, eval_refs, tfs, cfg):
    """CSSI recovery and null stress tests of correlation and of the single-matrix attention score ``best_att``
    (strata from ``cfg.strata_key`` or Leiden on the model's cell embeddings).

    Returns ``(recovery, null stress, strata labels of ctrl's cells or None when no stratum is large enough)``.
    """
    def strata():
        if cfg.strata_key is not None:
            return pd.DataFrame({"cell": ctrl.obs_names, "stratum": ctrl.obs[cfg.strata_key].astype(str).to_numpy()})
        from .extraction import cell_embeddings

        emb = cell_embeddings(model, ctrl, genes, batch_size=cfg.batch_size)
        return pd.DataFrame({"cell": ctrl.obs_names, "stratum": leiden_strata(
            emb, n_neighbors=cfg.n_neighbors, resolution=cfg.leiden_resolution, random_state=cfg.random_state)})

    strata_tab = st.table("cssi_strata", strata)
    lab = strata_tab["stratum"].astype(str).to_numpy()
    sizes = pd.Series(lab).value_counts()
    if (sizes >= cfg.cssi_min_cells).sum() == 0:
        log.info("CSSI skipped: no stratum has %d cells (sizes %s)", cfg.cssi_min_cells, sizes.to_dict())
        return pd.DataFrame(), pd.DataFrame(), None

    def recovery():
        stack, sizes, kept, left = stratified_matrices(X, lab, min_cells=cfg.cssi_min_cells)
        scores = cssi_scores(stack, sizes, genes, corr.name, "correlation")
        if len(kept) >= 2:
            from .extraction import extract_attention

            per = []
            for k in kept:
                la = extract_attention(model, ctrl[lab == k], genes, layers=[best_att.layer], batch_size=cfg.batch_size,
                                       device=cfg.device)[best_att.layer]
                per.append(la.head_mean if best_att.head == "mean" else la.head_max)
            scores += cssi_scores(np.stack(per), sizes, genes, best_att.name, "attention",
                                  aggregates=("max", "mean", "range", "std"), layer=best_att.layer)
        r = reference_recovery([corr, best_att, *scores], refs, tfs=tfs)
        r["n_strata"] = len(kept)
        r["strata_left_out"] = ", ".join(f"{k} ({n} cells)" for k, n in left.items())
        return r

    rec = st.table("cssi_recovery", recovery)
    null = st.table("cssi_null_stress", lambda: pd.concat(
        [cssi_null_stress(X, genes, r, lab, tfs=tfs, n_repeats=cfg.cssi_null_repeats, min_cells=cfg.cssi_min_cells,
                          random_state=cfg.random_state).assign(reference=r.name) for r in eval_refs],
        ignore_index=True) if eval_refs else pd.DataFrame())
    return rec, null, lab


def comparisons(per_pert: pd.DataFrame, tested: str, corr: str, baselines: list[str], cfg: InterpretConfig
                ) -> pd.DataFrame:
    """Paired comparisons over perturbations: the tested score vs correlation and each baseline, correlation vs
    each baseline; ``evaluable`` says whether n reaches ``cfg.min_perturbations``."""
    cols = ["a", "b", "n", "mean_a", "mean_b", "delta", "ci_low", "ci_high", "statistic", "p", "evaluable"]
    if per_pert.empty:
        return pd.DataFrame(columns=cols)
    pairs = [(tested, b) for b in [corr, *baselines]] + [(corr, b) for b in baselines]
    rows = [compare_scores(per_pert, a, b, n_boot=cfg.n_bootstrap, random_state=cfg.random_state) for a, b in pairs]
    out = pd.DataFrame(rows)
    out["evaluable"] = out["n"] >= cfg.min_perturbations
    return out.reindex(columns=cols)


def residualisation(scores: list[EdgeScores], feats: pd.DataFrame, refs, tfs, cfg: InterpretConfig) -> pd.DataFrame:
    """Reference AUROC of each score before and after cross-fitted residualisation on gene features, with OLS
    (primary, as Kendiukhov 2026) and GBDT (secondary); ``retained_fraction`` as
    :func:`~perturblab.interpret.stats.retained_fraction` defines it (0 when the raw AUROC is <= 0.5)."""
    rows = []
    for s in scores:
        for kind in RESIDUALISERS:
            res = residualise(s, feats, model=kind, random_state=cfg.random_state)
            rr = reference_recovery([s, res], refs, tfs=tfs)
            for ref_name, g in rr.groupby("reference", sort=False):
                raw, resid = g["auroc"].to_numpy()
                rows.append({"score": s.name, "reference": ref_name, "residualiser": kind,
                             "primary": kind == RESIDUALISERS[0], "auroc": raw, "auroc_residualised": resid,
                             "retained_fraction": retained_fraction(raw, resid)})
    return pd.DataFrame(rows, columns=["score", "reference", "residualiser", "primary", "auroc", "auroc_residualised",
                                       "retained_fraction"])


def _null_unit(ctx: dict, task) -> dict:
    score, ref_name, kind = task
    f, n = ((degree_preserving_null, ctx["n_degree"]) if kind == "degree" else (label_shuffle_null, ctx["n_label"]))
    return f(ctx["scores"][score], ctx["refs"][ref_name], ctx["tfs"], n_null=n, random_state=ctx["seed"])


def nulls(scores: list[EdgeScores], refs, tfs, cfg: InterpretConfig) -> pd.DataFrame:
    """Degree-preserving and label-shuffle nulls of each score against each reference (parallel with
    ``cfg.n_jobs``; the same seed for each unit, so the numbers do not depend on the number of workers)."""
    from ..runs import execute

    tasks = [(s.name, r.name, kind) for s in scores for r in refs for kind in ("degree", "label")]
    if not tasks:
        return pd.DataFrame()
    ctx = {"scores": {s.name: s for s in scores}, "refs": {r.name: r for r in refs},
           "tfs": None if tfs is None else list(tfs), "n_degree": cfg.n_degree_null, "n_label": cfg.n_label_null,
           "seed": cfg.random_state}
    done = dict(execute(_null_unit, tasks, shared={"nulls": ctx}, n_jobs=cfg.n_jobs))
    return pd.DataFrame([done[t] for t in tasks])


def ablation(model, ctrl, genes, layer_paths: dict, counts: np.ndarray, heads: pd.DataFrame, targets, summary: str,
             cfg: InterpretConfig):
    """The head-ablation experiment of the run (:func:`~perturblab.interpret.ablation.ablation_experiment`).

    Heads are ranked by ``heads`` (:func:`~perturblab.interpret.ablation.rank_heads`, best first); the outcome is
    the perturbation AUROC of the downstream attention (summary ``summary`` over the downstream heads) for the
    DE targets of ``targets``; layer-level interventions run at the regulatory layers (those of the top heads
    at the smallest k). With ``cfg.ablation_cells`` the experiment runs on that many control cells (seeded) and
    extracts its own intact maps; otherwise the stored maps of the extraction are the intact reference.
    """
    from .ablation import ablation_experiment, regulatory_layers
    from .layer_pass import load_layer

    ranking = [(int(r.layer), int(r.head)) for r in records(heads)]
    ks = sorted({int(k) for k in cfg.ablation_ks if 1 <= int(k) < len(ranking)})
    layer_level = [i for i in cfg.ablation_interventions if i in ("layer", "uniform", "mlp")]
    reg = regulatory_layers(ranking, ks[0], model.n_layers) if ks else []
    interventions = [i for i in cfg.ablation_interventions if i not in layer_level or reg]
    if layer_level and not reg:
        log.info("ablation: no layer-level intervention: the top-%s heads sit in the last layer (no downstream "
                 "attention)", ks[0] if ks else "k")
    cells, intact = ctrl, None
    if cfg.ablation_cells is not None and ctrl.n_obs > cfg.ablation_cells:
        rng = np.random.default_rng(cfg.random_state)
        cells = ctrl[np.sort(rng.choice(ctrl.n_obs, cfg.ablation_cells, replace=False))].copy()
    else:
        cache: dict = {}

        def intact(layer: int):
            if layer not in cache:
                cache.clear()  # one layer in memory at a time
                cache[layer] = load_layer(layer_paths[layer], counts, layer)
            return cache[layer]

    def evaluate(matrix: np.ndarray) -> pd.Series:
        return pd.Series(targets.rank(matrix, ("auroc",))["auroc"], index=targets.perturbations)

    entropy = {(int(r.layer), int(r.head)): float(r.entropy) for r in records(heads)}
    return ablation_experiment(model, cells, genes, ranking, evaluate if len(targets) else None, ks=ks,
                               n_random_seeds=cfg.ablation_seeds, layers=reg or None, interventions=interventions,
                               random_heads=cfg.ablation_random, head_entropy=entropy, summary=summary, intact=intact,
                               batch_size=cfg.batch_size, random_state=cfg.random_state)
