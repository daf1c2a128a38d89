"""The main interpretability run: every analysis on one model and one perturbation dataset, resumable.

:func:`run_interpretation` loads (or trains) the model, extracts attention from control cells, runs the
registered analyses (reference recovery, perturbation-first evaluation, gene baselines, incremental value,
confounds and nulls, causal head ablation, CSSI), fills the statistics registry, applies the four-criterion
verdict and writes tables, JSON and the HTML report into ``out``. It follows the run contract of
:mod:`perturblab.runs`: each finished stage (the trained own model included) is a unit persisted atomically
with the run's fingerprint, and a rerun needs ``resume`` (identical settings and data) or ``overwrite``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_labels, check_obs_key, check_positive
from ..exceptions import InputError, UnknownNameError
from ..io import TABLE_FORMATS, write_json, write_table
from .baselines import baseline_scores, gene_features
from .confounds import (
    confound_r2,
    degree_preserving_null,
    label_shuffle_null,
    residualise,
)
from .cssi import cssi_null_stress, cssi_scores, leiden_strata, stratified_matrices
from .edges import EdgeScores, attention_scores, correlation_scores, log_normalise
from .incremental import build_pairs, incremental_value
from .perturbation import compare_scores, de_targets, perturbation_auroc
from .references import Reference, load_reference, load_tf_list, reference_recovery

__all__ = ["InterpretConfig", "InterpretResult", "run_interpretation", "select_genes", "MODEL_KINDS"]

log = logging.getLogger(__name__)

#: Models :func:`run_interpretation` can load or train by name.
MODEL_KINDS = ("own", "geneformer", "scgpt")


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
    batch_size, device
        Extraction batch size and torch device (the device is not part of the fingerprint).
    n_label_null, n_degree_null, n_bootstrap
        Label-shuffle and curveball null sizes, bootstrap resamples.
    ablation_ks, ablation_seeds, ablation_interventions
        Head counts ablated (capped at the number of heads), random-head seeds and the interventions run
        (see :func:`~perturblab.interpret.ablation.ablation_experiment`).
    strata_key, leiden_resolution, n_neighbors, cssi_min_cells, cssi_null_repeats
        CSSI strata: an ``obs`` column, else Leiden on the model's cell embeddings.
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
    batch_size: int = 16
    device: str | None = None
    n_label_null: int = 1000
    n_degree_null: int = 200
    n_bootstrap: int = 1000
    ablation_ks: tuple[int, ...] = (5, 10, 20, 50)
    ablation_seeds: int = 3
    ablation_interventions: tuple[str, ...] = ("top", "bottom", "random", "layer", "uniform", "mlp")
    strata_key: str | None = None
    leiden_resolution: float = 1.0
    n_neighbors: int = 15
    cssi_min_cells: int = 20
    cssi_null_repeats: int = 10
    random_state: int = 0

    def __post_init__(self) -> None:
        from .ablation import INTERVENTIONS
        from .references import REFERENCE_NAMES

        self.references = tuple(str(r) for r in self.references)
        self.ablation_ks = tuple(int(k) for k in self.ablation_ks)
        self.ablation_interventions = tuple(str(i) for i in self.ablation_interventions)
        if self.model not in MODEL_KINDS:
            raise UnknownNameError("model", self.model, MODEL_KINDS)
        if self.model != "own" and not self.model_path:
            raise InputError(f"model {self.model!r} needs model_path (--model-path): the checkpoint directory")
        if self.model == "own" and (self.token_dictionary or self.gene_median_file or self.gene_id_key):
            raise InputError("token_dictionary, gene_median_file and gene_id_key apply to geneformer / scgpt "
                             "checkpoints, not to the own model; drop them")
        for name in ("epochs", "d_model", "n_layers", "n_heads", "train_batch_size", "batch_size", "n_genes",
                     "n_neighbors", "cssi_min_cells", "ablation_seeds"):
            check_positive(getattr(self, name), name)
        check_positive(self.n_cells, "n_cells", minimum=20)
        check_positive(self.cells_per_group, "cells_per_group", allow_none=True)
        check_positive(self.max_length, "max_length", minimum=2, allow_none=True)
        for name in ("n_label_null", "n_degree_null", "n_bootstrap", "cssi_null_repeats"):
            check_positive(getattr(self, name), name, minimum=0)
        check_positive(self.random_state, "seed (random_state)", minimum=0)
        check_positive(self.leiden_resolution, "leiden_resolution", minimum=1e-9)
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

    def fingerprint(self) -> dict:
        """The settings that change results (not the device)."""
        d = asdict(self)
        d.pop("device")
        if self.model != "own" or self.model_path is not None:  # no own model is trained
            for name in ("epochs", "d_model", "n_layers", "n_heads", "max_length", "train_batch_size"):
                d.pop(name)
        return d


@dataclass
class InterpretResult:
    """Tables of a run (also written to ``out_dir``), the registry table and the verdict."""

    out_dir: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


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


class _Stages:
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

    def arrays(self, name: str, compute) -> dict[str, np.ndarray]:
        key = {"stage": name}
        if self.store.done(key):
            log.info("[resume] %s", name)
            return self.store.load(key).arrays()
        log.info("[stage] %s", name)
        arrays = compute()
        self.store.save(key, arrays=arrays)
        return arrays


def _attention_arrays(model, adata, genes, cfg: InterpretConfig) -> dict[str, np.ndarray]:
    from .extraction import iter_layer_attention

    out = {"genes": np.asarray(genes).astype(str)}
    for la in iter_layer_attention(model, adata, genes, batch_size=cfg.batch_size, device=cfg.device):
        out[f"layer{la.layer}"] = la.per_head
        out["n_cells"] = la.n_cells
    return out


def _layers_from_arrays(arrays) -> dict:
    from .extraction import LayerAttention

    genes, n_cells = arrays["genes"], arrays["n_cells"]
    return {int(k[5:]): LayerAttention(int(k[5:]), genes, v, n_cells) for k, v in arrays.items() if k.startswith("layer")}


def _perturbation_mean(per_pert: pd.DataFrame) -> pd.Series:
    return per_pert.groupby("score")["auroc"].mean()


def _subsample(adata, cfg: InterpretConfig):
    """At most ``cfg.cells_per_group`` cells per perturbation (seeded), in their original order."""
    if cfg.cells_per_group is None:
        return adata
    rng = np.random.default_rng(cfg.random_state)
    labels = adata.obs[cfg.perturbation_key].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero(labels == g), min(cfg.cells_per_group, int((labels == g).sum())), replace=False)
            for g in sorted(set(labels))]
    return adata[np.sort(np.concatenate(keep))].copy()


def _files_checksum(path: str | os.PathLike) -> str:
    """sha256 over the names and bytes of a checkpoint file or of every file in a checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model path {path} does not exist; give the checkpoint file or directory")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _model_checksum(model) -> str:
    """sha256 of a model object's weights (for a model given in Python)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in sorted(model.network.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _own_model(store, ctrl, genes_all, cfg: InterpretConfig):
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


def _load_model(cfg: InterpretConfig):
    """A checkpoint as shipped (``cfg.model_path``) through :func:`~perturblab.interpret.models.load_model`."""
    from .models import load_model

    log.info("loading %s model from %s", cfg.model, cfg.model_path)
    return load_model(cfg.model, cfg.model_path, device=cfg.device, token_dictionary=cfg.token_dictionary,
                      gene_median_file=cfg.gene_median_file, gene_id_key=cfg.gene_id_key)


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
    from .report import build_report
    from .stats import Registry, verdict

    cfg = config or InterpretConfig()
    check_device(cfg.device)
    if table_format not in TABLE_FORMATS:
        raise InputError(f"table format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}")
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
        settings["model_weights"] = _model_checksum(model)
    elif cfg.model_path is not None:
        settings["model_files"] = _files_checksum(cfg.model_path)
    tmp = tempfile.TemporaryDirectory(prefix="perturblab-interpret-") if out is None else None
    run = open_run(tmp.name if tmp else out, "interpret", settings, data_checksum(adata), resume=resume,
                   overwrite=overwrite)
    store = UnitStore(run)
    st = _Stages(store)
    adata = _subsample(adata, cfg)
    labels = adata.obs[cfg.perturbation_key].astype(str).to_numpy()
    is_ctrl = labels == cfg.control
    rng = np.random.default_rng(cfg.random_state)
    ctrl_idx = np.flatnonzero(is_ctrl)
    if model is None:
        model = (_own_model(store, adata[ctrl_idx].copy(), np.asarray(adata.var_names).astype(str), cfg)
                 if cfg.model == "own" and cfg.model_path is None else _load_model(cfg))
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

    # 1-2. attention (persisted) and edge scores
    arrays = st.arrays("attention", lambda: _attention_arrays(model, ctrl, genes, cfg))
    layers = _layers_from_arrays(arrays)
    att_all = attention_scores(layers, per_head=True)
    att_summary = [s for s in att_all if s.head in ("mean", "max")]
    corr = correlation_scores(X, genes)
    feats = gene_features(X, genes)
    ref_for_degree = max(directed, key=lambda r: len(r.edges)) if directed else None
    base = baseline_scores(feats, ref_for_degree.edges if ref_for_degree is not None else None)

    # 3. reference recovery per layer and head
    rec = st.table("reference_recovery", lambda: reference_recovery([*att_all, corr], refs, tfs=tfs))

    # 4-5. perturbation-first evaluation and trivial baselines
    de = st.table("de_targets", lambda: de_targets(adata, cfg.perturbation_key, cfg.control, genes=genes,
                                                   lfc_threshold=0.5, alpha=0.05))
    per_pert = st.table("perturbation_auroc", lambda: perturbation_auroc([*att_summary, corr, *base], de))
    means = _perturbation_mean(per_pert) if len(per_pert) else pd.Series(dtype=float)
    att_means = means[[s.name for s in att_summary if s.name in means.index]].dropna()
    r = (rec[rec["kind"].eq("attention") & rec["head"].isin(["mean", "max"])].dropna(subset=["auroc"])
         if "auroc" in rec.columns else rec.iloc[:0])
    if len(att_means):
        best = att_means.idxmax()
    elif len(r):  # no rankable perturbation with DE targets: fall back to reference recovery
        best = r.groupby("score")["auroc"].mean().idxmax()
    else:  # nothing to choose on: the last layer's mean over heads
        best = next(s.name for s in reversed(att_summary) if s.head == "mean")
    best_att = next(s for s in att_summary if s.name == best)
    log.info("attention score under test: %s (best mean perturbation AUROC; selection favours attention)", best)

    def _comparisons():
        rows = []
        if per_pert.empty:
            return pd.DataFrame(columns=["a", "b", "n", "delta", "ci_low", "ci_high", "p"])
        for b in [corr.name, *[s.name for s in base]]:
            rows.append(compare_scores(per_pert, best, b, n_boot=cfg.n_bootstrap, random_state=cfg.random_state))
        for b in [s.name for s in base]:
            rows.append(compare_scores(per_pert, corr.name, b, n_boot=cfg.n_bootstrap, random_state=cfg.random_state))
        return pd.DataFrame(rows)

    comps = st.table("perturbation_comparisons", _comparisons)

    # 6. incremental value
    pairs = build_pairs(de, feats, {"attention": best_att, "correlation": corr})
    rankable = pairs["perturbation"].nunique()
    if rankable >= 2 and pairs["is_target"].any() and not pairs["is_target"].all():
        inc = st.table("incremental", lambda: incremental_value(pairs, n_boot=cfg.n_bootstrap,
                                                                random_state=cfg.random_state))
    else:
        log.info("incremental value skipped: %d rankable perturbation(s) with DE targets (need >= 2)", rankable)
        inc = pd.DataFrame()

    # 7. confounds and nulls
    conf = st.table("confound_r2", lambda: pd.concat([confound_r2(best_att, feats, random_state=cfg.random_state),
                                                       confound_r2(corr, feats, random_state=cfg.random_state)]))
    eval_refs = [r for r in directed if _n_pos(rec, r.name, corr.name) >= 3]

    def _residual():
        rows = []
        for s in (best_att, corr):
            res = residualise(s, feats, random_state=cfg.random_state)
            rr = reference_recovery([s, res], eval_refs or refs, tfs=tfs)
            for ref_name, g in rr.groupby("reference"):
                raw, resid = g["auroc"].to_numpy()
                rows.append({"score": s.name, "reference": ref_name, "auroc": raw, "auroc_residualised": resid,
                             "retained_fraction": (resid - 0.5) / (raw - 0.5) if raw != 0.5 else np.nan})
        return pd.DataFrame(rows)

    resid = st.table("residualisation", _residual)
    nulls = st.table("nulls", lambda: pd.DataFrame(
        [f(s, r, tfs, n_null=n, random_state=cfg.random_state)
         for s in (best_att, corr) for r in eval_refs
         for f, n in ((degree_preserving_null, cfg.n_degree_null), (label_shuffle_null, cfg.n_label_null))]))

    # 8. causal ablation
    abl = st.table("ablation", lambda: _ablation(model, ctrl, genes, rec, de, best_att, cfg))

    # 10. CSSI
    cssi_rec, cssi_null = _cssi(st, model, ctrl, X, genes, corr, best_att, refs, eval_refs, tfs, cfg)

    # 11. registry and verdict
    reg = Registry()
    _register(reg, rec, comps, inc, nulls, abl, cssi_null, best, corr.name)
    registry, claims = reg.table(), reg.claims()
    verd = _verdict(verdict, comps, inc, resid, nulls, abl, best)
    summary = {
        "model": type(model).__name__, "attention_score_tested": best, "n_control_cells": int(ctrl.n_obs),
        "n_genes": int(genes.size), "n_genes_without_token": match.n_dropped, "gene_vocabulary": match.describe(),
        "perturbed_genes_without_token": sorted(set(perturbed) & set(match.dropped.tolist())),
        "n_rankable_perturbations": int(per_pert["perturbation"].nunique()) if len(per_pert) else 0,
        "mean_perturbation_auroc": {k: float(x) for k, x in means.items()},
        "n_tests": int(len(registry)), "n_confirmatory": int(registry["confirmatory"].sum()) if len(registry) else 0,
        "verdict": verd.to_dict(),
    }
    tables = {"reference_recovery": rec, "de_targets": de, "perturbation_auroc": per_pert, "perturbation_comparisons": comps,
              "incremental": inc, "confound_r2": conf, "residualisation": resid, "nulls": nulls, "ablation": abl,
              "cssi_recovery": cssi_rec, "cssi_null_stress": cssi_null, "registry": registry, "claims": claims,
              "verdict": verd.table()}
    if tmp is not None:
        tmp.cleanup()
        return InterpretResult(Path(), tables, summary)
    for name, df in tables.items():
        if len(df):
            write_table(run.file(f"{name}.{table_format}"), df)
    write_json(run.file("summary.json"), summary)
    build_report(tables, summary).write(run.file("report.html"))
    log.info("report: %s", run.file("report.html"))
    return InterpretResult(run.path, tables, summary)


def _n_pos(rec: pd.DataFrame, ref: str, score: str) -> int:
    r = rec[(rec["reference"] == ref) & (rec["score"] == score)]
    return int(r["n_positive"].iloc[0]) if len(r) and pd.notna(r["n_positive"].iloc[0]) else 0


def _ablation(model, ctrl, genes, rec, de, best_att: EdgeScores, cfg: InterpretConfig) -> pd.DataFrame:
    """Head ablation with the perturbation AUROC of the tested attention score as the evaluation."""
    from .ablation import ablation_experiment

    heads = rec[rec["kind"].eq("attention") & ~rec["head"].isin(["mean", "max"])]
    ranking = (heads.groupby(["layer", "head"])["auroc"].mean().sort_values(ascending=False, na_position="last")
               .reset_index())
    head_ranking = [(int(r.layer), int(r.head)) for r in ranking.itertuples()]
    n_heads = len(head_ranking)
    ks = sorted({min(k, n_heads) for k in cfg.ablation_ks if k > 0})

    def evaluate(layer_attentions) -> float:
        s = next(x for x in attention_scores(layer_attentions, per_head=False) if x.name == best_att.name)
        pp = perturbation_auroc([s], de)
        return float(pp["auroc"].mean()) if len(pp) else float("nan")

    return ablation_experiment(model, ctrl, genes, head_ranking, evaluate=evaluate, ks=ks, n_random_seeds=cfg.ablation_seeds,
                               interventions=cfg.ablation_interventions,
                               batch_size=cfg.batch_size, random_state=cfg.random_state)


def _cssi(st: _Stages, model, ctrl, X, genes, corr, best_att, refs, eval_refs, tfs, cfg):
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
        return pd.DataFrame(), pd.DataFrame()

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
    return rec, null


def _register(reg, rec, comps, inc, nulls, abl, cssi_null, best: str, corr_name: str) -> None:
    from scipy import stats

    summaries = rec[rec["head"].isin(["mean", "max"]) | (rec["score"] == corr_name)]
    for r in summaries.itertuples():
        reg.add("reference recovery", f"{r.score} enriches {r.reference} edges among its top {r.fisher_top}",
                "Fisher exact (one-sided)", p=r.fisher_p, effect_size=r.fisher_odds_ratio, effect="odds ratio",
                n=r.n_candidates, confirmatory=r.score in (best, corr_name), claim="attention recovers reference networks"
                if r.score == best else "")
    for r in rec[~rec.index.isin(summaries.index)].itertuples():
        reg.add("reference recovery (per head)", f"{r.score} enriches {r.reference}", "Fisher exact (one-sided)",
                p=r.fisher_p, effect_size=r.fisher_odds_ratio, effect="odds ratio", n=r.n_candidates, confirmatory=False)
    for r in comps.itertuples():
        conf = r.a == best
        claim = ("attention beats correlation" if r.b == corr_name else "attention beats gene baselines") if conf else ""
        reg.add("perturbation-first", f"{r.a} ranks knock-out targets differently from {r.b}", "Wilcoxon signed-rank",
                p=r.p, effect_size=r.delta, effect="mean delta AUROC", statistic=r.statistic, n=r.n,
                confirmatory=conf and "out-degree" not in r.b, claim=claim)
    for r in inc[inc["features"] != "gene"].itertuples() if len(inc) else []:
        reg.add("incremental value", f"{r.features} ({r.model}, split by {r.split}) changes AUROC over gene features",
                "cluster bootstrap", p=r.delta_auroc_p, effect_size=r.delta_auroc, effect="delta AUROC", n=r.n_pairs,
                confirmatory=r.features == "gene + attention", claim="attention adds over gene features"
                if r.features == "gene + attention" else "")
    for r in nulls.itertuples() if len(nulls) else []:
        reg.add("confounds", f"{r.score} recovers {r.reference} beyond the {r.null} null", "empirical null",
                p=r.p_empirical, effect_size=r.z, effect="z", n=r.n_null, confirmatory=r.score == best,
                claim="attention signal is not a degree artefact" if r.score == best and "curveball" in r.null else "")
    if len(abl) and "intervention" in abl.columns:
        eff = _ablation_effects(abl)
        if eff is not None and len(eff) >= 1:
            d = eff["top"] - eff["random"]
            p = stats.wilcoxon(d).pvalue if len(d) >= 2 and np.any(d != 0) else float("nan")
            reg.add("causal ablation", "ablating top-ranked heads changes the perturbation AUROC more than random heads",
                    "Wilcoxon signed-rank over k", p=p, effect_size=float(d.mean()), effect="mean |delta| top - random",
                    n=len(d), claim="regulatory heads are causal")
    if len(cssi_null):
        for (ref, score), g in cssi_null[cssi_null["score"] != "pooled"].groupby(["reference", "score"]):
            pooled = cssi_null[(cssi_null["reference"] == ref) & (cssi_null["score"] == "pooled")]["auroc"].iloc[0]
            real = g[g["strata"] == "real"]["auroc"]
            shuffled = g[g["strata"] == "shuffled"]["auroc"].to_numpy()
            if len(real) and shuffled.size:
                gain = float(real.iloc[0] - pooled)
                p = (1 + np.sum(shuffled - pooled >= gain)) / (1 + shuffled.size)
                reg.add("CSSI", f"{score} |Spearman| on real strata beats pooled on {ref}", "shuffled-strata null",
                        p=p, effect_size=gain, effect="delta AUROC vs pooled", n=int(shuffled.size), confirmatory=False)


def _ablation_effects(abl: pd.DataFrame) -> pd.DataFrame | None:
    """Per k: mean |score - unablated score| of top-k and of random-k head ablations, min top-k fidelity."""
    base = abl[abl["intervention"].isin(["none", "baseline"])]["score"]
    if base.empty:
        return None
    b = float(base.iloc[0])
    a = abl.assign(effect=(abl["score"] - b).abs())
    top = a[a["intervention"] == "top"].groupby("k").agg(top=("effect", "mean"), fidelity=("fidelity_hidden", "min"))
    rnd = a[a["intervention"] == "random"].groupby("k").agg(random=("effect", "mean"))
    return top.join(rnd, how="inner")


def _verdict(verdict_fn, comps, inc, resid, nulls, abl, best):
    bc = comps[(comps["a"] == best) & comps["b"].str.startswith("baseline") & ~comps["b"].str.contains("out-degree")] \
        if len(comps) else None
    r = resid[resid["score"] == best]["retained_fraction"] if len(resid) else pd.Series(dtype=float)
    n = nulls[(nulls["score"] == best) & nulls["null"].str.contains("curveball")]["z"] if len(nulls) else pd.Series(dtype=float)
    eff = _ablation_effects(abl) if len(abl) and "intervention" in abl.columns else None
    return verdict_fn(
        bc, inc if len(inc) else None,
        float(r.min()) if len(r.dropna()) else None, float(n.min()) if len(n.dropna()) else None,
        float(eff["top"].mean()) if eff is not None and len(eff) else None,
        float(eff["random"].mean()) if eff is not None and len(eff) else None,
        float(eff["fidelity"].min()) if eff is not None and len(eff) else None,
    )
