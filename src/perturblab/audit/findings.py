"""What the attacks found, read as a biologist would: which flips are real vulnerabilities, and which attack
needs the fewest genes.

:func:`flips` classifies every flip of the ``genes`` table (:func:`perturblab.attack.flip_taxonomy`): a cluster
the classifier already got wrong, a flip *to* the correct label, a flip within the same dataset label, a move
to an abstention ("Unknown"), or a real flip away from a correct call. Only the last counts as a vulnerability in
headlines. :func:`fewest_genes` gives, per classifier and cluster, the smallest number of genes each attack
needed for a real flip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["flips", "fewest_genes", "headline"]

#: Attacks whose rows in the ``genes`` table are flips (one row per flipping gene or gene combination).
_FLIP_ATTACKS = ("single_gene", "grid", "random_walk", "pgd", "fgsm")


def flips(genes: pd.DataFrame, contexts: dict) -> pd.DataFrame:
    """The ``genes`` table's flips with their category (``flip_category``, ``is_vulnerability``).

    CGD contributes one row per attack (its last modified gene carries the cluster's label after the attack);
    single-gene, grid, random-walk and white-box rows are flips already.
    """
    from ..attack.taxonomy import flip_taxonomy

    if genes.empty:
        return pd.DataFrame()
    rows = genes[genes["attack"].isin(_FLIP_ATTACKS)]
    cgd = genes[genes["attack"] == "cgd"]
    if len(cgd):
        cgd = cgd.groupby(["classifier", "cluster", "space"], sort=False).tail(1)
    table = pd.concat([rows, cgd], ignore_index=True)
    out = []
    for name, g in table.groupby("classifier", sort=False):
        ctx = contexts.get(name)
        out.append(flip_taxonomy(g, classifier=ctx.classifier if ctx is not None else None))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def fewest_genes(attacks: pd.DataFrame, flip_table: pd.DataFrame) -> pd.DataFrame:
    """Per classifier x cluster x space x attack: the smallest number of genes that made a real flip.

    Single-gene: 1 when a single gene makes a real flip; grid / random walk: the size of the smallest flipping
    combination; CGD: the number of genes it modified when its final label is a real flip; PGD / FGSM: the
    smallest budget ``k`` with a real flip. NaN: the attack ran but made no real flip. ``fewest`` marks the
    attack(s) needing the fewest genes (columns as :func:`perturblab.attack.compare.fewest_genes`, so that
    :func:`perturblab.attack.pl.fewest_genes` draws it).
    """
    if attacks.empty:
        return pd.DataFrame()
    keys = ["classifier", "cluster", "space", "attack"]
    ran = attacks[keys].drop_duplicates()
    real = flip_table[flip_table["is_vulnerability"].astype(bool)] if len(flip_table) else pd.DataFrame(columns=keys)
    sizes = {}
    if len(real):
        n_genes = real["gene"].astype(str).str.count("__") + 1
        sizes = real.assign(n_genes=n_genes).groupby(keys)["n_genes"].min().to_dict()
    cgd_sizes = attacks[attacks["attack"] == "cgd"].set_index(["classifier", "cluster", "space"])["n_found"]
    rows = []
    for clf, cluster, space, attack in ran.itertuples(index=False):
        size = sizes.get((clf, cluster, space, attack), np.nan)
        if attack == "cgd" and np.isfinite(size):
            size = float(cgd_sizes.get((clf, cluster, space), np.nan))
        rows.append({"classifier": clf, "cluster": cluster, "space": space, "attack": attack, "applicable": True,
                     "flipped": bool(np.isfinite(size)), "min_genes": float(size)})
    out = pd.DataFrame(rows)
    best = out.groupby(["classifier", "cluster", "space"])["min_genes"].transform("min")
    return out.assign(fewest=out["min_genes"].eq(best) & out["flipped"])


def headline(attacks: pd.DataFrame, flip_table: pd.DataFrame, classifier: str) -> str:
    """One sentence for a classifier, per attack, counting real flips away from a correct call only:
    "N of M cluster x modification pairs flipped by K distinct genes" (single gene, grid, random walk), or
    "N of M clusters flipped (genes needed: NK 4, B 12)" (CGD, PGD, FGSM)."""
    att = attacks[attacks["classifier"] == classifier]
    if att.empty:
        return f"{classifier}: no attack ran"
    real = (flip_table[(flip_table["classifier"] == classifier) & flip_table["is_vulnerability"].astype(bool)]
            if len(flip_table) else pd.DataFrame(columns=["attack", "cluster", "modification", "space", "gene"]))
    parts = []
    for attack, g in att.groupby("attack", sort=False):
        r = real[real["attack"] == attack]
        if attack in ("cgd", "pgd", "fgsm"):
            hit = g[g["cluster"].isin(r["cluster"])]
            col = "n_found" if attack == "cgd" else "min_genes"
            needed = ", ".join(f"{c} {int(v)}" for c, v in zip(hit["cluster"], hit[col]) if np.isfinite(v))
            parts.append(f"{attack!s}: {hit['cluster'].nunique()} of {g['cluster'].nunique()} clusters flipped away "
                         f"from a correct call" + (f" (genes needed: {needed})" if needed else ""))
            continue
        pairs = g[["cluster", "modification", "space"]].drop_duplicates()
        hit = r[["cluster", "modification", "space"]].drop_duplicates()
        genes = r["gene"].astype(str).str.split("__").explode().nunique() if len(r) else 0
        parts.append(f"{attack}: {len(hit)} of {len(pairs)} cluster x modification pairs flipped away from a correct "
                     f"call by {genes} distinct genes")
    return f"{classifier}: " + "; ".join(parts)
