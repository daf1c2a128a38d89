"""An audit's results back in the user's AnnData (scanpy's conventions): :func:`audit_to_adata`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

__all__ = ["audit_to_adata"]

#: Tables copied into ``adata.uns[key_added]`` when the audit computed them.
UNS_TABLES = ("accuracy", "attacks", "genes", "flips", "fewest_genes", "overview", "budget", "abstention", "strength",
              "label_noise", "robustness", "transfer", "defence", "labels_after")


def audit_to_adata(result, adata, groupby: str | None = None, key_added: str = "perturblab_audit"):
    """Write an :class:`~perturblab.audit.AuditResult` into ``adata`` (the AnnData audited) and return it.

    Keys (``K = key_added``, ``C`` = each classifier's name):

    - ``adata.uns[K]``: a dict of the audit's tables (``accuracy``, ``attacks``, ``genes``, ``flips``,
      ``fewest_genes``, ``overview`` and the optional evaluations' tables present), ``headline`` (one sentence per
      classifier), ``settings`` (the run's settings as JSON text) and ``obs_columns`` (the columns below: a resumed
      audit of the same AnnData leaves them out of its data checksum);
    - ``adata.obs[f"{K}_split"]``: ``"train"``, ``"test"`` or ``"dropped"`` (cells the split removed);
    - ``adata.obs[f"{K}_{C}_n_flipping_genes"]``: for every cell of an attacked cluster, the number of distinct
      genes whose modification alone (single-gene attack, any modification, model input) changes the cluster's
      answer; NaN for clusters that were not attacked (or without a single-gene attack);
    - ``adata.obs[f"{K}_{C}_n_real_flip_genes"]``: the same, counting only real flips (away from a correct call,
      :func:`perturblab.audit.findings.flips`);
    - ``adata.obs[f"{K}_{C}_label_after"]``: the cluster's answer after the strongest attack: of the attacks that
      changed it, the one that needed the fewest genes (ties: the first in the ``genes`` table), else the
      unchanged answer.

    Cluster-level results are written into every cell of the cluster (train cells included: they share the
    cluster's label); ``groupby`` (default: the audit's ``label_key``) names the ``obs`` column of the clusters.
    """
    from .._anndata import set_obs, update_uns
    from ..exceptions import InputError

    cfg = result.config
    key = groupby or cfg.label_key
    if key not in adata.obs.columns:
        from .._validation import check_obs_key

        check_obs_key(adata, key, "cluster")
    labels = adata.obs[key].astype(str).to_numpy()
    tables = {name: result.tables[name] for name in UNS_TABLES
              if isinstance(result.tables.get(name), pd.DataFrame) and len(result.tables[name])}
    update_uns(adata, key_added, {**tables, "headline": str(result.summary.get("headline", "")),
                                  "settings": json.dumps(cfg.to_dict(), default=str)})
    cells = getattr(result, "cells", {}) or {}
    split = pd.Series("dropped", index=adata.obs_names, dtype=object)
    for part in ("train", "test"):
        names = pd.Index(cells.get(part, []))
        if len(names) and not names.isin(adata.obs_names).all():
            raise InputError("the audit's cells are not all in this AnnData; pass the AnnData the audit ran on")
        split[names] = part
    adata.obs[f"{key_added}_split"] = pd.Categorical(split.to_numpy())
    attacks = result.tables.get("attacks", pd.DataFrame())
    genes = result.tables.get("genes", pd.DataFrame())
    flips = result.tables.get("flips", pd.DataFrame())
    for clf in cfg.classifiers:
        att = attacks[attacks["classifier"] == clf] if len(attacks) else attacks
        for cluster in sorted(set(att["cluster"])) if len(att) else []:
            mask = labels == str(cluster)
            if not mask.any():
                continue
            a = att[att["cluster"] == cluster]
            sg = a[(a["attack"] == "single_gene") & (a["space"] == "model_input")]
            g = genes[(genes["classifier"] == clf) & (genes["cluster"] == cluster)] if len(genes) else genes
            if len(sg):
                hits = g[(g["attack"] == "single_gene") & (g["space"] == "model_input")] if len(g) else g
                set_obs(adata, f"{key_added}_{clf}_n_flipping_genes", mask, float(_distinct(hits)))
                f = flips[(flips["classifier"] == clf) & (flips["cluster"] == cluster)] if len(flips) else flips
                real = f[(f["attack"] == "single_gene") & f["is_vulnerability"].astype(bool)] if len(f) else f
                set_obs(adata, f"{key_added}_{clf}_n_real_flip_genes", mask, float(_distinct(real)))
            set_obs(adata, f"{key_added}_{clf}_label_after", mask, _strongest(a, g))
    written = [c for c in adata.obs.columns if str(c).startswith(f"{key_added}_")]
    update_uns(adata, key_added, {"obs_columns": written})  # excluded from the data checksum of a resumed run
    return adata


def _distinct(table: pd.DataFrame) -> int:
    if table is None or not len(table):
        return 0
    return int(table["gene"].astype(str).str.split("__").explode().nunique())


def _strongest(att: pd.DataFrame, genes: pd.DataFrame) -> str:
    """The cluster's answer after the flip that needed the fewest genes, else its unchanged answer."""
    original = str(att["original_label"].iloc[0]) if len(att) else ""
    if genes is None or not len(genes) or "new_label" not in genes.columns:
        return original
    g = genes[genes["new_label"].astype(str) != genes["original_label"].astype(str)]
    if not len(g):
        return original
    size = g["gene"].astype(str).str.count("__") + 1
    best = int(np.argmin(size.to_numpy()))
    return str(g["new_label"].iloc[best])
