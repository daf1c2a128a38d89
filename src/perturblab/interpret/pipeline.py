"""The main interpretability run: every analysis on one model and one perturbation dataset, resumable.

:func:`run_interpretation` extracts attention from control cells, runs the registered analyses
(reference recovery, perturbation-first evaluation, gene baselines, incremental value, confounds
and nulls, causal head ablation, CSSI), fills the statistics registry, applies the four-criterion
verdict and writes tables (Parquet), JSON and the HTML report into ``out_dir``. Each finished stage
is persisted atomically; a rerun with the same ``out_dir`` loads finished stages instead of
recomputing them (delete a file to recompute that stage).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import _atomic_target, read_table, write_json, write_table
from .baselines import baseline_scores, gene_features
from .confounds import confound_r2, degree_preserving_null, label_shuffle_null, residualise
from .cssi import cssi_null_stress, cssi_scores, leiden_strata, stratified_matrices
from .edges import EdgeScores, attention_scores, correlation_scores, log_normalise
from .incremental import build_pairs, incremental_value
from .perturbation import compare_scores, de_targets, perturbation_auroc
from .references import Reference, load_reference, load_tf_list, reference_recovery

__all__ = ["InterpretConfig", "InterpretResult", "run_interpretation", "select_genes"]


@dataclass
class InterpretConfig:
    """Settings of :func:`run_interpretation` (defaults follow Kendiukhov 2026 where it gives them).

    Attributes
    ----------
    perturbation_key, control
        ``obs`` column of the knocked-out gene and its control value.
    n_cells, n_genes
        Control cells used for extraction (sampled with ``random_state``) and genes (highly variable genes
        of the control cells, perturbed genes forced in; all genes when there are fewer).
    references
        Reference networks (:data:`~perturblab.interpret.references.REFERENCE_NAMES`).
    batch_size, device
        Extraction batch size and torch device.
    n_label_null, n_degree_null, n_boot
        Label-shuffle and curveball null sizes, bootstrap resamples.
    ablation_ks, ablation_seeds, ablation_interventions
        Head counts ablated (capped at the number of heads), random-head seeds and the interventions run
        (see :func:`~perturblab.interpret.ablation.ablation_experiment`).
    strata_key, leiden_resolution, n_neighbors, cssi_min_cells, cssi_null_repeats
        CSSI strata: an ``obs`` column, else Leiden on the model's cell embeddings.
    random_state
        Seed of every random choice.
    """

    perturbation_key: str = "perturbation"
    control: str = "control"
    n_cells: int = 2000
    n_genes: int = 2000
    references: tuple[str, ...] = ("trrust", "dorothea", "collectri", "string")
    batch_size: int = 16
    device: str | None = None
    n_label_null: int = 1000
    n_degree_null: int = 200
    n_boot: int = 1000
    ablation_ks: tuple[int, ...] = (5, 10, 20, 50)
    ablation_seeds: int = 3
    ablation_interventions: tuple[str, ...] = ("top", "bottom", "random", "layer", "uniform", "mlp")
    strata_key: str | None = None
    leiden_resolution: float = 1.0
    n_neighbors: int = 15
    cssi_min_cells: int = 20
    cssi_null_repeats: int = 10
    random_state: int = 0


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
    """Load a finished stage from ``out_dir`` or compute and persist it atomically."""

    def __init__(self, out_dir: Path, log=print):
        self.dir = out_dir
        self.log = log

    def table(self, name: str, compute) -> pd.DataFrame:
        path = self.dir / f"{name}.parquet"
        if path.exists():
            self.log(f"[resume] {name}: loaded {path.name}")
            return read_table(path)
        self.log(f"[stage] {name}")
        df = compute()
        write_table(path, df)
        return df

    def arrays(self, name: str, compute) -> dict[str, np.ndarray]:
        path = self.dir / f"{name}.npz"
        if path.exists():
            self.log(f"[resume] {name}: loaded {path.name}")
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        self.log(f"[stage] {name}")
        arrays = compute()
        path, tmp = _atomic_target(path)
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
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


def run_interpretation(model, adata, out_dir: str | os.PathLike, config: InterpretConfig | None = None,
                       references: dict[str, Reference] | None = None, tfs=None, log=print) -> InterpretResult:
    """Run every registered analysis and write tables, ``summary.json`` and ``report.html``.

    Parameters
    ----------
    model
        A :class:`~perturblab.interpret.models.GeneTokenModel` adapter (own / Geneformer / scGPT).
    adata
        Cells x genes **raw counts** of a perturbation screen with ``obs[config.perturbation_key]``
        (control cells labelled ``config.control``), e.g. :func:`perturblab.datasets.papalexi2021`.
    out_dir
        Output folder (created); finished stages there are reused.
    references, tfs
        Reference networks and the TF list; default: loaded through :mod:`perturblab.datasets`
        (``config.references`` and Lambert 2018).

    Returns
    -------
    InterpretResult
    """
    from .._validation import check_counts, check_obs_key
    from .report import build_report
    from .stats import Registry, verdict

    cfg = config or InterpretConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    st = _Stages(out, log)
    check_obs_key(adata, cfg.perturbation_key, "perturbation")
    if cfg.strata_key is not None:
        check_obs_key(adata, cfg.strata_key, "CSSI stratum")
    check_counts(adata.X, "adata.X")
    labels = adata.obs[cfg.perturbation_key].astype(str).to_numpy()
    is_ctrl = labels == cfg.control
    if is_ctrl.sum() < 20:
        raise ValueError(f"{int(is_ctrl.sum())} control cells labelled {cfg.control!r} in obs[{cfg.perturbation_key!r}]; need >= 20")
    rng = np.random.default_rng(cfg.random_state)
    ctrl_idx = np.flatnonzero(is_ctrl)
    if ctrl_idx.size > cfg.n_cells:
        ctrl_idx = np.sort(rng.choice(ctrl_idx, cfg.n_cells, replace=False))
    ctrl = adata[ctrl_idx].copy()
    perturbed = sorted(set(labels[~is_ctrl]))
    genes = select_genes(ctrl, cfg.n_genes, forced=perturbed)
    # ctrl keeps every gene (library sizes, model tokenizers); X is the log-normalised gene subset
    X = log_normalise(ctrl[:, genes].X, library_size=np.asarray(ctrl.X.sum(axis=1)).ravel())
    if references is None:
        references = {n: load_reference(n) for n in cfg.references}
    if tfs is None:
        tfs = load_tf_list()
    refs = list(references.values())
    directed = [r for r in refs if r.directed]
    write_json(out / "config.json", {**asdict(cfg), "n_control_cells_used": int(ctrl.n_obs), "n_genes_used": int(genes.size),
                                     "model": type(model).__name__, "n_layers": model.n_layers, "n_heads": model.n_heads})

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
    if len(att_means):
        best = att_means.idxmax()
    else:  # no rankable perturbation with DE targets: fall back to reference recovery
        r = rec[rec["kind"].eq("attention") & rec["head"].isin(["mean", "max"])]
        best = r.groupby("score")["auroc"].mean().idxmax()
    best_att = next(s for s in att_summary if s.name == best)
    log(f"attention score under test: {best} (best mean perturbation AUROC; selection favours attention)")

    def _comparisons():
        rows = []
        if per_pert.empty:
            return pd.DataFrame(columns=["a", "b", "n", "delta", "ci_low", "ci_high", "p"])
        for b in [corr.name, *[s.name for s in base]]:
            rows.append(compare_scores(per_pert, best, b, n_boot=cfg.n_boot, random_state=cfg.random_state))
        for b in [s.name for s in base]:
            rows.append(compare_scores(per_pert, corr.name, b, n_boot=cfg.n_boot, random_state=cfg.random_state))
        return pd.DataFrame(rows)

    comps = st.table("perturbation_comparisons", _comparisons)

    # 6. incremental value
    pairs = build_pairs(de, feats, {"attention": best_att, "correlation": corr})
    rankable = pairs["perturbation"].nunique()
    if rankable >= 2 and pairs["is_target"].any() and not pairs["is_target"].all():
        inc = st.table("incremental", lambda: incremental_value(pairs, n_boot=cfg.n_boot, random_state=cfg.random_state))
    else:
        log(f"incremental value skipped: {rankable} rankable perturbation(s) with DE targets (need >= 2)")
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
    write_table(out / "registry.parquet", registry)
    write_table(out / "claims.parquet", claims)
    verd = _verdict(verdict, comps, inc, resid, nulls, abl, best)
    write_table(out / "verdict.parquet", verd.table())
    summary = {
        "model": type(model).__name__, "attention_score_tested": best, "n_control_cells": int(ctrl.n_obs),
        "n_genes": int(genes.size), "n_rankable_perturbations": int(per_pert["perturbation"].nunique()) if len(per_pert) else 0,
        "mean_perturbation_auroc": {k: float(x) for k, x in means.items()},
        "n_tests": int(len(registry)), "n_confirmatory": int(registry["confirmatory"].sum()) if len(registry) else 0,
        "verdict": verd.to_dict(),
    }
    write_json(out / "summary.json", summary)
    tables = {"reference_recovery": rec, "de_targets": de, "perturbation_auroc": per_pert, "perturbation_comparisons": comps,
              "incremental": inc, "confound_r2": conf, "residualisation": resid, "nulls": nulls, "ablation": abl,
              "cssi_recovery": cssi_rec, "cssi_null_stress": cssi_null, "registry": registry, "claims": claims,
              "verdict": verd.table()}
    build_report(tables, summary).write(out / "report.html")
    log(f"report: {out / 'report.html'}")
    return InterpretResult(out, tables, summary)


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
        log(f"CSSI skipped: no stratum has {cfg.cssi_min_cells} cells (sizes {sizes.to_dict()})")
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
