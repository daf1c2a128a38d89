"""Max-change attack: the largest gene set that can ALL be modified without changing the label.

Follows adverSCarial's ``advMaxChange`` (R/advMaxChange.R): a greedy recursive
bisection. The candidate genes are split into even/odd-position halves, visited
in a random order; for each half ``h``:

- modify ``h`` alone; if the label stays the baseline's, modify ``kept + h``
  together; if that also keeps the label, ``h`` joins ``kept``;
- otherwise (either evaluation changed the label), split ``h`` again if it has
  more than ``max_split_size`` genes, else drop it.

Differences from adverSCarial: the half order is seeded (``random_state``; the
anchor uses R's unseeded ``sample``); the label is compared with the baseline
call, not the cluster's name; the second evaluation is skipped when ``kept`` is
empty (it would repeat the first); both evaluations of a half are scored in one
batch (the second one is wasted when the first changes the label; it still
counts in ``n_classifier_calls``); a half none of whose genes is in
``classifier.used_genes_`` joins ``kept`` without evaluation (provably a no-op), and the genes outside
``used_genes_`` are not written into the evaluated variants (the same answers, less copying).
A final evaluation of all kept genes together checks the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ._engine import AttackTarget
from ._fastpath import additive_calls, additive_stage
from .modifications import get_modification
from .single_gene import _Values, candidate_genes

__all__ = ["MaxChangeResult", "max_change_attack"]


@dataclass
class MaxChangeResult:
    """Result of :func:`max_change_attack`.

    ``genes``: the modifiable genes (in the order they were kept); ``check_label``: the
    cluster label with all of them modified together (equals ``baseline_label``).
    """

    genes: list[str]
    target: str
    modification: str
    baseline_label: str
    check_label: str
    n_candidates: int
    n_classifier_calls: int
    n_batched_calls: int
    wall_time_s: float

    @property
    def table(self) -> pd.DataFrame:
        """One row per kept gene: order, gene, target, modification."""
        return pd.DataFrame({"order": np.arange(1, len(self.genes) + 1), "gene": self.genes,
                             "target": self.target, "modification": self.modification})

    def to_adata(self, adata, groupby: str | None = None, key_added: str = "perturblab_max_change", *,
                 clusters=None):
        """Write this result into ``adata`` (the AnnData attacked) and return it.

        Keys: ``adata.uns[key_added]["table"]`` (the modifiable genes per cluster and modification, earlier rows of
        other clusters kept), ``["summary"]`` (one row per cluster and modification);
        ``adata.obs[f"{key_added}_n_genes"]``: for the cells of the attacked cluster, the number of genes that can
        be modified together without changing its answer (NaN elsewhere).
        """
        from .._anndata import set_obs, update_uns
        from ._adata import cluster_mask

        mask = cluster_mask(adata, groupby, clusters, self.target)
        update_uns(adata, key_added, {"table": self.table, "summary": pd.DataFrame([self.summary()])},
                   replace_on=("target", "modification"))
        set_obs(adata, f"{key_added}_n_genes", mask, float(len(self.genes)))
        return adata

    def summary(self) -> dict:
        """One-line summary (JSON-serialisable)."""
        return {"target": self.target, "modification": self.modification, "baseline_label": self.baseline_label,
                "n_genes_modifiable": len(self.genes), "n_candidates": self.n_candidates,
                "check_label": self.check_label, "n_classifier_calls": self.n_classifier_calls,
                "n_batched_calls": self.n_batched_calls, "wall_time_s": self.wall_time_s}


def max_change_attack(
    classifier,
    X,
    clusters=None,
    target: str | None = None,
    modification="perc99",
    *,
    genes=None,
    excluded_genes=(),
    gene_names=None,
    max_split_size: int = 1,
    random_state: int = 0,
    fixed_value: float = 3.0,
    fn=None,
    max_batch_values: int = 2**24,
    use_fast_path: bool = True,
    groupby: str | None = None,
    key_added: str | None = None,
) -> MaxChangeResult:
    """Grow the largest gene set whose joint modification keeps cluster ``target``'s label.

    Parameters
    ----------
    classifier, X, clusters, target, modification, genes, excluded_genes, gene_names
        As in :func:`~perturblab.attack.single_gene.single_gene_attack` (``X`` is the
        classifier's dense cells x genes model input, or an AnnData of raw counts with ``groupby``;
        a CSR AnnData stays sparse).
    max_split_size
        Halves of at most this many genes that change the label are dropped instead of
        split (adverSCarial default 1; its overview uses 100 for speed).
    random_state
        Seed of the half visiting order.
    use_fast_path
        Use the classifier's additive first stage when it has one (scType's scores, the MLP's first layer,
        CellTypist's decision scores; :func:`~perturblab.attack._fastpath.additive_stage`): the kept genes'
        summed change is carried along, so each evaluation costs the genes of the visited half only. Variants
        decided by near-tie cells are scored again by the classifier itself, so the answers equal the generic
        path's (``False``).
    groupby, key_added
        With an AnnData ``X``: the ``obs`` column of the clusters, and where the result goes back
        (:meth:`MaxChangeResult.to_adata`); ``key_added=None`` writes nothing.

    Returns
    -------
    MaxChangeResult

    Raises
    ------
    ValueError
        Unknown modification, unknown/empty cluster, absent genes, ``max_split_size < 1``.

    Examples
    --------
    Which of ten marker genes can all be switched off (1st percentile) in the B cells without changing the
    label scType gives them?

    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.ScTypeClassifier().fit(train)
    >>> panel = ["MS4A1", "CD79A", "CD79B", "SSR4", "CD74", "HLA-DRA", "NKG7", "GNLY", "CD3E", "LYZ"]
    >>> res = plab.attack.max_change_attack(clf, test, groupby="cell_type", target="B", modification="perc1",
    ...                                     genes=panel)
    >>> res.baseline_label, res.check_label, sorted(set(panel) - set(res.genes))  # label kept; genes left out
    ('Naive B cells', 'Naive B cells', ['MS4A1', 'SSR4'])

    The two genes left out are the two whose loss alone flips the label
    (:func:`~perturblab.attack.single_gene.single_gene_attack`).
    """
    from ._adata import attack_inputs

    t0 = time.perf_counter()
    if target is None:
        raise InputError("pass target=: the cluster to attack")
    X, clusters, adata_in = attack_inputs(classifier, X, clusters, groupby, sparse=True)
    if max_split_size < 1:
        raise InputError(f"max_split_size must be >= 1, got {max_split_size}")
    mod = get_modification(modification, fixed_value=fixed_value, fn=fn, random_state=random_state)
    tgt = AttackTarget(classifier, X, clusters, target, gene_names=gene_names, max_batch_values=max_batch_values)
    classifier = tgt.classifier
    idx = candidate_genes(tgt, genes, excluded_genes)
    values = _Values(tgt, mod, idx)
    used = tgt.used_gene_mask()
    # gene-wise values: genes outside used_genes_ change nothing and are not written (other modifications draw
    # their values per gene set, so they get the whole set)
    written = used if values.V is not None else np.ones_like(used)
    base = tgt.baseline().label
    rng = np.random.default_rng(random_state)
    kept: list[np.ndarray] = []
    stage = additive_stage(tgt) if use_fast_path and mod.columnwise else None
    kept_delta = np.zeros_like(stage.base) if stage is not None else np.zeros(0)

    def visit(h: np.ndarray) -> None:
        if not used[h].any():
            kept.append(h)
            return

        def item(i: int):  # variant 0: h alone; 1: the kept genes and h
            g = h if i == 0 else np.concatenate([*kept, h])
            g = g[written[g]]
            return g, values(g)

        n_variants = 2 if kept else 1
        if stage is None:
            calls = tgt.classify_many([item(i) for i in range(n_variants)])
        else:  # the kept genes' summed change is carried along: only h's genes are evaluated
            d = stage.delta(*item(0))
            calls = additive_calls(tgt, stage, [d, kept_delta + d][:n_variants], item)
        if all(c.label == base for c in calls):
            kept.append(h)
            if stage is not None:
                kept_delta[...] += d
        elif len(h) > max_split_size:
            bisect(h)

    def bisect(genes_: np.ndarray) -> None:
        halves = [genes_[0::2], genes_[1::2]]
        for k in rng.permutation(2):
            if len(halves[k]):
                visit(halves[k])

    bisect(idx)
    out = np.concatenate(kept) if kept else np.array([], dtype=np.intp)
    out_used = out[written[out]]
    check = tgt.classify(out_used, values(out_used)).label if len(out_used) else base
    res = MaxChangeResult(
        genes=tgt.genes[out].tolist(), target=tgt.target, modification=mod.name, baseline_label=base,
        check_label=check, n_candidates=len(idx), n_classifier_calls=tgt.n_calls,
        n_batched_calls=tgt.n_batched_calls, wall_time_s=time.perf_counter() - t0,
    )
    if key_added is not None:
        if adata_in is None:
            raise InputError("key_added writes into an AnnData: pass the AnnData as X with groupby=")
        res.to_adata(adata_in, groupby=groupby, key_added=key_added, clusters=None if groupby else clusters)
    return res
