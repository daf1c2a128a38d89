"""Evaluations that combine several classifiers or retrain them: transferability and a defence.

Both run in the main process after the attack units and persist one result per source
classifier (transfer) or per classifier (defence) in the unit store, so a resumed audit does
not redo them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..exceptions import InputError
from .units import Unit

if TYPE_CHECKING:
    from ..runs import StoredUnit

__all__ = ["transfer", "defence", "label_noise", "to_model_input"]


def _cached(store, unit: Unit, compute) -> pd.DataFrame:
    if store.done(unit.key):
        return store.load(unit.key).tables["table"]
    table = compute()
    store.save(unit.key, tables={"table": table})
    return table


def to_model_input(L: np.ndarray, clf, gene_idx) -> np.ndarray:
    """log1p expression of genes ``gene_idx`` -> ``clf``'s model input (scaled: fit-time z-score, clip 10)."""
    if clf.representation == "log1p":
        return L
    if clf.representation == "scaled":
        from ..classifiers._preprocess import CLIP

        z = (L - clf.scaler_.mean[gene_idx]) / clf.scaler_.std[gene_idx]
        return np.clip(z, -CLIP, CLIP)
    raise InputError(f"cannot transfer to a classifier with representation {clf.representation!r}")


def _to_log1p(V: np.ndarray, clf, gene_idx) -> np.ndarray:
    if clf.representation == "log1p":
        return V
    if clf.representation == "scaled":
        return V * clf.scaler_.std[gene_idx] + clf.scaler_.mean[gene_idx]
    raise InputError(f"cannot transfer from a classifier with representation {clf.representation!r}")


def transfer(config, contexts: dict, tables: dict, results: list[StoredUnit], store) -> pd.DataFrame:
    """Do perturbations found on one classifier (source) flip the others (targets)?

    - single-gene: each hit ``(cluster, modification, gene)`` of the source (model input) is
      applied to the target's own model input (the modification's statistics in the target's
      space: for perc1/perc99 on log1p vs scaled data this is the same perturbation of the
      log-normalised expression, the z-score being an increasing affine map per gene) and counts
      as transferred when the target's cluster label changes from its own baseline;
    - CGD: the source's attacked values of the modified genes are mapped back to log1p
      expression (scaled sources: ``z * std + mean`` with the source's fit-time statistics) and
      into the target's representation; transferred when the target's label changes.

    Returns
    -------
    pandas.DataFrame
        source, target, attack, n_source (perturbations that flipped the source), n_transferred,
        rate (NaN when the source had none).
    """
    rows = []
    genes_t = tables.get("genes", pd.DataFrame())
    for src in config.classifiers:
        unit = Unit("transfer", src, space="model_input")
        rows.append(_cached(store, unit, lambda src=src: _transfer_from(src, config, contexts, genes_t, results)))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _transfer_from(src, config, contexts, genes_t, results) -> pd.DataFrame:
    from ..attack import AttackTarget, single_gene_attack

    out = []
    hits = genes_t[(genes_t.get("classifier") == src) & (genes_t.get("attack") == "single_gene")
                   & (genes_t.get("space") == "model_input")] if len(genes_t) else pd.DataFrame()
    cgd = [u for u in results if u.key["kind"] == "attack" and u.key["attack"] == "cgd"
           and u.key["classifier"] == src and u.key["space"] == "model_input" and u.summary.get("success")]
    sctx = contexts[src]
    for tgt_name, tctx in contexts.items():
        if tgt_name == src:
            continue
        clf = tctx.classifier
        n_tr = 0
        for (cluster, mod), g in (hits.groupby(["cluster", "modification"]) if len(hits) else []):
            genes = [x for x in g["gene"].astype(str) if "__" not in x]
            res = single_gene_attack(clf, tctx.X, tctx.clusters, str(cluster), mod, mode="exhaustive", genes=genes,
                                     random_state=config.seed)
            n_tr += len(res.table)
        out.append({"source": src, "target": tgt_name, "attack": "single_gene", "n_source": len(hits),
                    "n_transferred": n_tr})
        n_cgd = 0
        for u in cgd:
            V = u.tables.get("cgd_values")
            if V is None or not len(V.columns):
                continue
            cluster = u.key["cluster"]
            sgenes = np.asarray(sctx.classifier.genes_).astype(str)
            tgenes = np.asarray(clf.genes_).astype(str)
            si = np.flatnonzero(np.isin(sgenes, V.columns))
            order = pd.Index(sgenes[si])
            ti = pd.Index(tgenes).get_indexer(order)
            L = _to_log1p(V[order].to_numpy(np.float64), sctx.classifier, si)
            tgt = AttackTarget(clf, tctx.X, tctx.clusters, cluster)
            base = tgt.baseline()
            call = tgt.classify(ti, to_model_input(L, clf, ti).astype(np.float32))
            n_cgd += int(tgt.is_flip(call, base))
        out.append({"source": src, "target": tgt_name, "attack": "cgd", "n_source": len(cgd), "n_transferred": n_cgd})
    df = pd.DataFrame(out, columns=["source", "target", "attack", "n_source", "n_transferred"])
    df["rate"] = np.where(df["n_source"] > 0, df["n_transferred"] / df["n_source"].clip(lower=1), np.nan)
    return df


def defence(config, contexts: dict, train, test, tables: dict, store) -> pd.DataFrame:
    """Adversarial training: augment the training half with attacked cells, retrain, measure the gain.

    For a classifier with single-gene hits (model input), every hit ``(cluster, modification,
    gene)`` is replayed on the *training* cells of that cluster in raw counts (the modification's
    statistics computed on the training counts), the modified copies keep their true label and
    are added to the training half; the classifier is refitted (same seed) and the same
    single-gene attacks are run again on the test half. Differs from adverSCarial's experimental
    ``advTraining`` (CGD-like augmentation): single-gene hits are replayed instead. scType is
    unsupervised (its markers do not learn from labels), so its gain can only come from the new
    scaling statistics.

    Returns
    -------
    pandas.DataFrame
        classifier, n_augmented_cells, accuracy/macro_f1 before and after, hits before and
        after (same attacks), hits_removed; ``note`` when nothing could be augmented.
    """
    rows = []
    genes_t = tables.get("genes", pd.DataFrame())
    attacks = tables.get("attacks", pd.DataFrame())
    acc = tables["accuracy"].set_index("classifier")
    from ..runs import progress

    with progress.task("defence (adversarial training)", total=len(config.trainable())) as bar:
        for name in config.trainable():  # fitted classifiers the user passed cannot be retrained
            unit = Unit("defence", name, space="model_input")
            rows.append(_cached(store, unit, lambda name=name: _defend(name, config, contexts, train, test, genes_t,
                                                                        attacks, acc)))
            bar.advance()
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _defend(name, config, contexts, train, test, genes_t, attacks, acc) -> pd.DataFrame:
    import anndata as ad
    import scipy.sparse as sp

    from ..attack import single_gene_attack
    from ..attack.modifications import get_modification
    from ..classifiers import evaluate_classifier, fit_classifier

    sel = (attacks["classifier"] == name) & (attacks["attack"] == "single_gene") & (attacks["space"] == "model_input")
    sg = attacks[sel]
    hits = genes_t[(genes_t["classifier"] == name) & (genes_t["attack"] == "single_gene")
                   & (genes_t["space"] == "model_input")] if len(genes_t) else pd.DataFrame()
    row = {"classifier": name, "accuracy_before": acc.loc[name, "accuracy"],
           "macro_f1_before": acc.loc[name, "macro_f1"], "hits_before": int(sg["n_found"].sum()),
           "n_augmented_cells": 0}
    if hits.empty:
        return pd.DataFrame([{**row, "accuracy_after": row["accuracy_before"], "macro_f1_after": row["macro_f1_before"],
                              "hits_after": row["hits_before"], "hits_removed": 0,
                              "note": "no single-gene hit: nothing to augment"}])
    C = train.X.toarray() if sp.issparse(train.X) else np.asarray(train.X)
    C = np.asarray(C, dtype=np.float32)
    labels = train.obs[config.label_key].astype(str).to_numpy()
    pos = {g: i for i, g in enumerate(train.var_names.astype(str))}
    blocks = []
    for _, h in hits.iterrows():
        mask = labels == h["cluster"]
        if not mask.any():
            continue
        idx = np.array([pos[g] for g in str(h["gene"]).split("__")])
        B = C[mask].copy()
        B[:, idx] = get_modification(h["modification"], random_state=config.seed).values(C, mask, idx)
        blocks.append((B, labels[mask]))
    Xa = np.vstack([C] + [b for b, _ in blocks])
    ya = np.concatenate([labels] + [lab for _, lab in blocks])
    aug = ad.AnnData(sp.csr_matrix(Xa), var=train.var[[]].copy())
    aug.obs[config.label_key] = ya
    aug.obs_names = [f"cell{i}" for i in range(aug.n_obs)]
    clf, _ = fit_classifier(config.registry_name(name), aug, config.label_key, random_state=config.seed,
                            **config.classifier_kwargs(name))
    ev = evaluate_classifier(clf, test, config.label_key, name=name).iloc[0]
    X = clf.preprocess(test)
    y = contexts[name].clusters
    after = 0
    for _, u in sg.iterrows():
        res = single_gene_attack(clf, X, y, u["cluster"], u["modification"], mode=u["mode"], random_state=config.seed)
        after += len(res.table)
    return pd.DataFrame([{**row, "n_augmented_cells": int(len(ya) - len(labels)), "accuracy_after": ev["accuracy"],
                          "macro_f1_after": ev["macro_f1"], "hits_after": after,
                          "hits_removed": row["hits_before"] - after, "note": ""}])


def label_noise(config, contexts: dict, train, test, clusters, store) -> pd.DataFrame:
    """Reference corruption: each classifier retrained with ``config.noise_rates`` of its training labels changed
    (uniformly at random, and to the most similar cell type), then its accuracy and single-gene vulnerability on
    the clean test half (:func:`perturblab.attack.label_noise_sweep`; real flips counted by the flip taxonomy).

    The single-gene attacks run on the attacked clusters' marker panel (``config.strength_genes`` top markers of
    each, restricted to the classifier's genes), so that slow classifiers stay affordable. One persisted result per
    classifier (a resumed audit does not redo it).

    Returns
    -------
    pandas.DataFrame
        :attr:`~perturblab.attack.LabelNoiseResult.summary` rows of every classifier.
    """
    from ..attack.label_noise import label_noise_sweep
    from ..classifiers import make_classifier
    from ..runs import progress
    from .units import marker_panel

    rows = []
    with progress.task("label noise (retraining)", total=len(config.trainable())) as bar:
        for name in config.trainable():  # fitted classifiers the user passed cannot be retrained
            unit = Unit("label_noise", name, space="model_input")

            def compute(name=name):
                kwargs = config.classifier_kwargs(name)
                reg = config.registry_name(name)
                res = label_noise_sweep(lambda: make_classifier(reg, random_state=config.seed, **kwargs), train, test,
                                        config.label_key,
                                        rates=config.noise_rates, modes=config.noise_modes, targets=clusters,
                                        modifications=config.modifications,
                                        attack_genes=marker_panel(contexts[name], config.strength_genes),
                                        random_state=config.seed, name=name)
                return res.summary

            rows.append(_cached(store, unit, compute))
            bar.advance()
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
