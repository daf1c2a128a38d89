"""Which attack needs the fewest genes? Single-gene, CGD and white-box attacks side by side.

For one classifier and each cluster, :func:`fewest_genes` runs

- the **single-gene** attack (exhaustive, each modification of ``modifications``): 1 gene when any
  gene flips the cluster alone;
- **CGD** (:func:`~perturblab.attack.cgd.cgd_attack`, native class scores, majority stop rule,
  ``alpha = epsilon = cgd_step``) over ``cgd_genes`` (default: the 500 first
  :func:`~perturblab.attack.signature.signature_genes` of ``X``): the number of genes it modified
  when the cluster flipped;
- for differentiable classifiers, **PGD** / **FGSM** (:func:`~perturblab.attack.whitebox.budget_curve`):
  the smallest ``k`` of ``ks`` (at any amplitude of ``amplitudes``) that flips the cluster;

and reports one row per cluster x attack: ``min_genes`` (NaN when the attack did not flip the cluster
within its budget) and ``fewest`` (True for the attack(s) with the smallest ``min_genes`` of that
cluster). A flip is the cluster's majority answer changing (adverSCarial's definition); classify
flips with :func:`perturblab.attack.taxonomy.flip_taxonomy` before counting them as vulnerabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..classifiers.base import is_differentiable, majority_vote
from .cgd import cgd_attack
from .signature import signature_genes
from .single_gene import single_gene_attack

__all__ = ["fewest_genes"]

COLUMNS = ["classifier", "cluster", "attack", "applicable", "flipped", "min_genes", "max_genes_tried",
           "original_label", "new_label", "detail"]


def _single_gene_rows(clf, X, clusters, t, name, modifications, genes, mode):
    hits, base, new, tried = [], None, None, 0
    for m in modifications:
        r = single_gene_attack(clf, X, clusters, t, m, mode=mode, genes=genes)
        base, tried = r.baseline_label, max(tried, r.n_genes)
        if len(r.table):
            hits.append(f"{m}: {len(r.table)} ({', '.join(r.table['gene'].head(5))})")
            new = new or str(r.table["new_label"].iloc[0])
    return {"classifier": name, "cluster": t, "attack": "single_gene", "applicable": True, "flipped": bool(hits),
            "min_genes": 1.0 if hits else np.nan, "max_genes_tried": 1, "original_label": base,
            "new_label": new or base, "detail": "; ".join(hits) or f"no single gene of {tried} ({mode})"}


def _cgd_row(clf, X, clusters, t, name, genes, step):
    r = cgd_attack(clf, X, clusters, t, genes, alpha=step, epsilon=step)
    s = r.summary.iloc[0]
    return {"classifier": name, "cluster": t, "attack": "cgd", "applicable": True, "flipped": bool(r.flipped),
            "min_genes": float(len(r.modified_genes)) if r.flipped else np.nan, "max_genes_tried": len(genes),
            "original_label": majority_vote(r.labels_before).label, "new_label": r.new_label,
            "detail": f"alpha = epsilon = {step}, {len(r.modified_genes)} genes modified of "
                      f"{int(s['n_genes_visited'])} visited ({r.score_kind} scores)"}


def fewest_genes(
    classifier,
    X,
    clusters,
    targets: Sequence[str] | None = None,
    *,
    name: str | None = None,
    modifications: Sequence[str] = ("perc1", "perc99"),
    single_gene_mode: str = "exhaustive",
    single_gene_genes=None,
    cgd_genes=None,
    cgd_step: float = 1.0,
    ks: Sequence[int] = (1, 2, 5, 10, 20, 50),
    amplitudes: Sequence[float] = (1.0,),
    whitebox_methods: Sequence[str] = ("pgd",),
    whitebox_genes=None,
    budget_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Smallest number of genes each attack needs to flip each cluster (see the module docstring).

    Parameters
    ----------
    classifier
        A fitted per-cell classifier (:mod:`perturblab.classifiers`).
    X
        Dense cells x genes model input (``classifier.preprocess(adata)``).
    clusters, targets
        Cluster label per cell; the clusters to attack (default: all, in order of appearance).
    name
        Classifier name in the table (default: its class name).
    modifications, single_gene_mode, single_gene_genes
        Single-gene attack settings (``single_gene_genes``: candidate genes, default all).
    cgd_genes, cgd_step
        CGD gene order (default: 500 first signature genes of ``X``) and ``alpha = epsilon``.
    ks, amplitudes, whitebox_methods, whitebox_genes
        White-box budgets tried and candidate genes (default all; differentiable classifiers only). Give
        the same genes to all three attacks (``single_gene_genes``, ``cgd_genes``, ``whitebox_genes``)
        to compare them on equal terms.
    budget_table
        A :func:`~perturblab.attack.whitebox.budget_curve` table already computed for this classifier
        (its rows for ``name``), used instead of running the white-box attacks again.

    Returns
    -------
    pandas.DataFrame
        One row per cluster x attack: classifier, cluster, attack (single_gene | cgd | pgd | fgsm),
        applicable (False: white-box on a non-differentiable classifier), flipped, min_genes (NaN: no
        flip within the budget), max_genes_tried, original_label, new_label, detail, fewest.

    Examples
    --------
    scType's B cells under the single-gene, CGD and PGD attacks (``pd.concat`` the tables of several classifiers
    to compare them):

    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.ScTypeClassifier().fit(train)
    >>> X = clf.preprocess(test)
    >>> panel = ["MS4A1", "CD79A", "CD79B", "SSR4", "CD74", "HLA-DRA", "NKG7", "GNLY", "CD3E", "LYZ"]
    >>> tab = plab.attack.fewest_genes(clf, X, test.obs["cell_type"], ["B"], name="scType",
    ...                                single_gene_genes=panel, cgd_genes=panel, ks=(1, 2))
    >>> print(tab[["attack", "flipped", "min_genes", "new_label"]].to_string(index=False))
         attack  flipped  min_genes      new_label
    single_gene     True        1.0    Pro-B cells
            cgd     True        1.0 Plasma B cells
            pgd     True        1.0    Pro-B cells
    >>> ax = plab.attack.pl.fewest_genes(tab)
    """
    name = name or type(classifier).__name__
    clusters = np.asarray(clusters).astype(str)
    targets = list(dict.fromkeys(clusters.tolist())) if targets is None else [str(t) for t in targets]
    if cgd_genes is None:
        genes = np.asarray(classifier.genes_).astype(str)
        cgd_genes = signature_genes(X, clusters, genes)["gene"].to_numpy()[:500]
    diff = is_differentiable(classifier)
    if diff and budget_table is None and len(whitebox_methods):
        from .whitebox import budget_curve

        budget_table = budget_curve(classifier, X, clusters, targets, ks=ks, amplitudes=amplitudes,
                                    methods=whitebox_methods, genes=whitebox_genes, name=name)
    rows = []
    for t in targets:
        rows.append(_single_gene_rows(classifier, X, clusters, t, name, modifications, single_gene_genes,
                                      single_gene_mode))
        rows.append(_cgd_row(classifier, X, clusters, t, name, list(cgd_genes), cgd_step))
        for method in whitebox_methods:
            row = {"classifier": name, "cluster": t, "attack": method, "applicable": diff, "flipped": False,
                   "min_genes": np.nan, "max_genes_tried": max(ks) if len(ks) else 0, "original_label": None,
                   "new_label": None, "detail": "not differentiable" if not diff else ""}
            if diff and budget_table is not None:  # diff with methods: budget_table is set above
                sub = budget_table[(budget_table["cluster"] == t) & (budget_table["method"] == method)]
                if "classifier" in sub:
                    sub = sub[sub["classifier"] == name]
                hit = sub[sub["flipped"]].sort_values(["k", "amplitude"], kind="stable")
                row["original_label"] = str(sub["original_label"].iloc[0]) if len(sub) else None
                if len(hit):
                    h = hit.iloc[0]
                    row.update(flipped=True, min_genes=float(h["n_genes"]), new_label=str(h["new_label"]),
                               detail=f"k = {int(h['k'])}, amplitude {h['amplitude']:g}: {h['genes']}")
                else:
                    row.update(new_label=row["original_label"],
                               detail=f"no flip up to k = {int(sub['k'].max()) if len(sub) else 0}")
            rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    best = df.groupby(["classifier", "cluster"])["min_genes"].transform("min")
    df["fewest"] = df["min_genes"].notna() & (df["min_genes"] == best)
    return df
